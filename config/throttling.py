"""REST throttles (DRF's, sharing counts through Django's cache: Redis when ``REDIS_URL`` is set).

- ``auth``: login, token refresh and both sign-ups, per client IP (the address the
  proxy reports in ``X-Forwarded-For`` when ``NUM_PROXIES`` says one is in front).
- ``writes``: every unsafe method, per user (per IP when anonymous).
"""

from typing import Any

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle


class AuthRateThrottle(SimpleRateThrottle):
    """Per IP even when a token came along: sign-up and login are what attackers hammer."""

    scope = "auth"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class WriteRateThrottle(SimpleRateThrottle):
    scope = "writes"

    def allow_request(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = request.user
        ident = f"user-{user.pk}" if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
