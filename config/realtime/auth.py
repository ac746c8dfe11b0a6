"""Who is connecting: the access token of a connect, and the address it came from.

No I/O: decoding a JWT checks its signature, expiry and type only (``access_tokens``). Whether the user may use a
namespace is the namespace's question (``namespace.BaseNamespace``), asked of the database.
"""

from typing import Any

import socketio
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from config.realtime.access_tokens import TokenExpiredError, TokenInvalidError, access_payload


class Refused(socketio.exceptions.ConnectionRefusedError):
    """A refused connect: ``connect_error`` with ``message`` and ``data.code`` (and ``data.retryAfter``)."""

    def __init__(self, code: str, message: str, **data: Any) -> None:
        super().__init__(message, {"code": code, **data})


def token_from(auth: Any, environ: dict[str, Any]) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str) and auth["token"]:
        return auth["token"]
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def decode_token(token: str) -> tuple[int, float]:
    """``(user_id, expires_at)`` of a valid access token; raises ``Refused``."""
    try:
        access = access_payload(token)
    except TokenExpiredError as exc:
        raise Refused("TOKEN_EXPIRED", "The access token has expired") from exc
    except TokenInvalidError as exc:
        raise Refused("TOKEN_INVALID", "The access token is not valid") from exc
    try:
        return int(access[jwt_settings.USER_ID_CLAIM]), float(access["exp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("TOKEN_INVALID", "The access token carries no user") from exc


def user_of(auth: Any, environ: dict[str, Any]) -> int | None:
    """The user a connect's token names, if it is valid (``None`` otherwise)."""
    token = token_from(auth, environ)
    if token is None:
        return None
    try:
        return decode_token(token)[0]
    except Refused:
        return None


def client_address(meta: dict[str, Any]) -> str:
    """The client's address, as ``config.proxies`` decided it: the ASGI scope's ``client``.

    ``meta`` is a WSGI-style environ (Django's ``request.META``, or Engine.IO's environ, whose
    ``REMOTE_ADDR`` is a constant "127.0.0.1": its scope is read instead). No forwarding
    header is read here: the peer's address, or the one a trusted proxy reported.
    """
    scope = meta.get("asgi.scope")
    if scope is not None:
        client = scope.get("client")
        return str(client[0]) if client else ""
    return meta.get("REMOTE_ADDR", "")
