"""REST plumbing shared by every app: error body, pagination, validation helper."""

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import DomainError, Unavailable, ValidationError

logger = logging.getLogger(__name__)


class PageSize:
    """``pageSize`` as documented: a value that is not a page size is refused, not ignored."""

    page_size_query_param = "pageSize"
    max_page_size = 100

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:  # absent, or empty: the same (a form's unfilled field)
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                f"pageSize must be a whole number from 1 to {self.max_page_size}", details={"pageSize": ["invalid"]}
            )
        return int(raw)


class Pagination(PageSize, PageNumberPagination):
    """Numbered pages (``page``, ``pageSize``) with an exact ``count``: lists of one user's own rows."""

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = _described_page_size(super().get_schema_operation_parameters(view), self.max_page_size)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class NewestFirstCursor(PageSize, CursorPagination):
    """A cursor (``next`` and ``previous`` links) over the newest rows first, and no count.

    For lists that grow with the platform's whole history: every page costs one indexed read
    of ``pageSize`` rows at any depth and any table size, and a row added while someone pages
    moves nothing between their pages (numbered pages would need a count of the whole table,
    and an offset that reads every row before the page).
    """

    ordering = "-created_at"
    cursor_query_description = "The position to read from: take it from a response's next or previous link."

    def decode_cursor(self, request: Any) -> Any:
        if not request.query_params.get(self.cursor_query_param):
            return None  # an empty cursor is no cursor: the first page
        try:
            return super().decode_cursor(request)
        except drf_exceptions.NotFound as exc:
            raise ValidationError("cursor is not one this list gave", details={"cursor": ["invalid"]}) from exc

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return _described_page_size(super().get_schema_operation_parameters(view), self.max_page_size)


class ViewerPagination:
    """Numbered pages for a user's own rows; ``NewestFirstCursor`` for staff, who list everyone's.

    Both answers carry ``next``, ``previous`` and ``results``; only the numbered one has ``count``.
    A client that follows ``next`` works with either.
    """

    def __init__(self) -> None:
        self.own, self.everyone = Pagination(), NewestFirstCursor()
        self.chosen: Any = self.own

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        self.chosen, other = (self.everyone, self.own) if request.user.is_staff else (self.own, self.everyone)
        foreign = self.own.page_query_param if other is self.own else self.everyone.cursor_query_param
        # A position this list does not page by is refused, not ignored; an empty one is no
        # position, and page 1 is where a cursor list starts too.
        if request.query_params.get(foreign, "") not in ("", "1" if foreign == self.own.page_query_param else ""):
            raise ValidationError(
                f"{foreign} does not apply to this list: follow its next link", details={foreign: ["not applicable"]}
            )
        return self.chosen.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data: Any) -> Response:
        return self.chosen.get_paginated_response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        numbered = self.own.get_paginated_response_schema(schema)
        numbered["required"] = ["results"]
        numbered["properties"]["count"]["description"] = "Own lists only: staff lists page by cursor, uncounted."
        return numbered

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        by_cursor = [p for p in self.everyone.get_schema_operation_parameters(view) if p["name"] == "cursor"]
        for parameter in by_cursor:
            parameter["description"] = f"Staff lists: {parameter['description']}"
        return [*self.own.get_schema_operation_parameters(view), *by_cursor]


def _described_page_size(parameters: list[dict[str, Any]], maximum: int) -> list[dict[str, Any]]:
    for parameter in parameters:
        if parameter["name"] == PageSize.page_size_query_param:
            parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": maximum}
    return parameters


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate ``data`` with an input serializer, raising the contract's error.

    Used by REST views and socket handlers alike, so a payload is checked the
    same way whichever door it came through.
    """
    if not isinstance(data, dict):
        raise ValidationError("payload must be an object")
    serializer = serializer_class(data=data, **kwargs)
    if not serializer.is_valid():
        raise ValidationError(_first_error(serializer.errors), details=serializer.errors)
    return serializer.validated_data


def _first_error(errors: Any, field: str | None = None) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_error(value, None if key == "non_field_errors" else key)
    if isinstance(errors, list) and errors:
        return _first_error(errors[0], field)
    text = str(errors)
    return f"{field}: {text}" if field else text


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: "AUTH_REQUIRED",
    drf_exceptions.AuthenticationFailed: "TOKEN_INVALID",
    drf_exceptions.PermissionDenied: "FORBIDDEN",
    drf_exceptions.NotFound: "NOT_FOUND",
    drf_exceptions.ValidationError: "VALIDATION_ERROR",
    drf_exceptions.ParseError: "VALIDATION_ERROR",
    drf_exceptions.Throttled: "RATE_LIMITED",
    drf_exceptions.MethodNotAllowed: "METHOD_NOT_ALLOWED",
    drf_exceptions.UnsupportedMediaType: "VALIDATION_ERROR",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error leaves as ``{code, message, details?}``."""
    if isinstance(exc, DomainError):
        return with_retry_after(Response(exc.as_dict(), status=exc.http_status))
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return _unexpected(exc, context)
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "ERROR")
    if code == "TOKEN_INVALID" and "expired" in str(getattr(exc, "detail", "")).lower():
        code = "TOKEN_EXPIRED"
    body: dict[str, Any] = {"code": code}
    if isinstance(exc, drf_exceptions.ValidationError):
        body["message"] = _first_error(exc.detail)
        body["details"] = exc.detail
    elif isinstance(exc, drf_exceptions.Throttled):
        body["message"] = "Too many requests; slow down"
        body["retryAfter"] = max(1, math.ceil(exc.wait or 1))
    else:
        detail = getattr(exc, "detail", "")
        body["message"] = str(detail.get("detail", detail)) if isinstance(detail, dict) else str(detail)
    response.data = body
    return with_retry_after(response)


def with_retry_after(response: Any) -> Any:
    """429 and 503 say when to come back, in the header HTTP clients and proxies read too."""
    data = getattr(response, "data", None)
    if isinstance(data, dict) and "retryAfter" in data:
        response["Retry-After"] = str(data["retryAfter"])
    return response


def _unexpected(exc: Exception, context: dict[str, Any]) -> Response:
    """A failure no handler expected: the contract's body, never Django's HTML page."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable for %s: %s", _path(context), exc)
        return with_retry_after(Response(Unavailable().as_dict(), status=Unavailable.http_status))
    logger.error("unhandled error in %s", _path(context), exc_info=exc)
    return Response(DomainError().as_dict(), status=DomainError.http_status)


def _path(context: dict[str, Any]) -> str:
    request = context.get("request")
    return getattr(request, "path", "?")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: JSON under ``/api/`` (no route matched, e.g. a malformed id in the path)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "NOT_FOUND", "message": "Not found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: JSON under ``/api/`` (errors raised outside a DRF view), HTML elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(DomainError().as_dict(), status=DomainError.http_status)
    return defaults.server_error(request)


class IsStaff:
    """DRF permission: staff only (403 ``FORBIDDEN`` otherwise)."""

    message = "Staff only"

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return self.has_permission(request, view)
