"""Overload answered outside the REST views: the admin's login form hashes a password too.

DRF's exception handler (``config.api``) answers ``Unavailable`` and a database that is away
(or whose pool stayed empty for ``DB_POOL_TIMEOUT``) in the API; this middleware answers
them anywhere else Django renders a page, so a login storm or a database blip costs the
admin a 503 with ``Retry-After``, never a 500. The hashing pool's refusal of an address past
its share (``RateLimited``, 429) is answered the same way.
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import RateLimited, Unavailable


class UnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            exception = Unavailable()
        if not isinstance(exception, (Unavailable, RateLimited)):
            return None
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(exception.as_dict(), status=exception.http_status)
        else:
            response = HttpResponse(exception.message, status=exception.http_status, content_type="text/plain")
        response["Retry-After"] = str(exception.retry_after)
        return response


class AnsweredUnavailable(logging.Filter):
    """Django logs every 5xx response as an ERROR. A 503 here is always chosen (overload, a
    dependency away, a process stopping) and already said with ``Retry-After``: a login storm
    would otherwise write thousands of ERROR lines, burying the real failures (500s) in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == Unavailable.http_status and record.levelno == logging.ERROR:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
