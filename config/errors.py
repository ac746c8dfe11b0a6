"""One error type, one shape: the contract's ``{code, message, details?}``.

Services raise these; the DRF exception handler and the Socket.IO base
namespace both turn them into the contract's error.
"""

import math
from typing import Any


class DomainError(Exception):
    code = "INTERNAL_ERROR"
    http_status = 500
    default_message = "Something went wrong"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class ValidationError(DomainError):
    code = "VALIDATION_ERROR"
    http_status = 400
    default_message = "Invalid input"


class NotFound(DomainError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "Not found"


class Forbidden(DomainError):
    code = "FORBIDDEN"
    http_status = 403
    default_message = "You are not allowed to do this"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"
    http_status = 409
    default_message = "This change is not allowed in the booking's current status"


class Conflict(DomainError):
    code = "CONFLICT"
    http_status = 409
    default_message = "Conflicting change"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests; slow down"

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retryAfter": self.retry_after}


class TokenExpired(DomainError):
    code = "TOKEN_EXPIRED"
    http_status = 401
    default_message = "The access token has expired"


class TokenInvalid(DomainError):
    code = "TOKEN_INVALID"
    http_status = 401
    default_message = "The token is not valid"


class Unavailable(DomainError):
    """A dependency (database, channel layer) is down, or the process is overloaded or stopping."""

    code = "UNAVAILABLE"
    http_status = 503
    default_message = "The service is briefly unavailable; retry with backoff"
    default_retry_after = 1

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after or self.default_retry_after))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retryAfter": self.retry_after}


# Every code a client can receive, in the order the classes are declared (the AsyncAPI enum).
ERROR_CODES = tuple(dict.fromkeys(cls.code for cls in (DomainError, *DomainError.__subclasses__())))
