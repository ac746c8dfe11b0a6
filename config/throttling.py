"""REST throttles (DRF's, sharing counts through Django's cache: Redis when ``REDIS_URL`` is set).

- ``auth``: login, token refresh, both sign-ups, logout, the password change and the admin's
  login, per client address (the peer's, or the one a trusted proxy reported:
  ``config.proxies``; never a header read here).
- ``login``: every password check (the API's login and password change, the admin's login),
  per username, before the password is hashed (contract 10.1): guessing one account's password
  from many addresses is as slow as from one.
- ``writes``: every unsafe method, per user (per address when anonymous).

``throttled`` puts the first two in front of a plain Django view (the admin's login form).
"""

import hashlib
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from config.errors import RateLimited

USERNAME_FIELD = "username"  # what the API's login and the admin's form call it


def client_address(request: Any) -> str:
    """The address ``config.proxies`` decided (the ASGI scope's client): Django's ``REMOTE_ADDR``."""
    return request.META.get("REMOTE_ADDR") or ""


class AddressThrottle(SimpleRateThrottle):
    def get_ident(self, request: Any) -> str:
        return client_address(request)


class AuthRateThrottle(AddressThrottle):
    """Per address even when a token came along: sign-up and login are what attackers hammer."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(SimpleRateThrottle):
    """Per username: the one a login names, else the signed-in user's (a password change)."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        username = _posted_username(request)
        if not username:
            user = getattr(request, "user", None)
            username = user.get_username() if user is not None and user.is_authenticated else ""
        if not username:
            return None  # no account named: nothing is checked but the address, throttled above
        # Hashed: a username of any length and alphabet makes a short, fixed cache key;
        # NFKC-normalised as Django's forms do (a fullwidth "admin" logs in as "admin") and
        # casefolded, so every spelling that reaches one account shares its count.
        name = unicodedata.normalize("NFKC", username.strip()).casefold()
        ident = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _posted_username(request: Any) -> str:
    data = getattr(request, "data", None)  # DRF's request: already parsed (strictly)
    if data is None:
        data = request.POST  # Django's form post (the admin's login)
    value = data.get(USERNAME_FIELD) if hasattr(data, "get") else None
    return value if isinstance(value, str) else ""


class WriteRateThrottle(AddressThrottle):
    scope = "writes"

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = request.user
        ident = f"user-{user.pk}" if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


PASSWORD_THROTTLES = (AuthRateThrottle, LoginRateThrottle)


def throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view`` with its POSTs throttled per address and per username, as the API's login is.

    Refused before the view runs (so before any password is hashed): 429 ``RATE_LIMITED`` with
    ``retryAfter`` and ``Retry-After``, the contract's error, as the API answers.
    """

    def throttled_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            waits = [t.wait() or 1 for t in (cls() for cls in PASSWORD_THROTTLES) if not t.allow_request(request, None)]
            if waits:
                refused = RateLimited("Too many sign-in attempts; retry later", retry_after=math.ceil(max(waits)))
                response = JsonResponse(refused.as_dict(), status=refused.http_status)
                response["Retry-After"] = str(refused.retry_after)
                return response
        return view(request, *args, **kwargs)

    return throttled_view
