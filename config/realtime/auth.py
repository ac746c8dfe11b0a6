"""Who is connecting: the access token of a connect, and the address it came from.

No I/O: decoding a JWT checks its signature and expiry only. Whether the user may use a
namespace is the namespace's question (``namespace.BaseNamespace``), asked of the database.
"""

import binascii
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import socketio
from jwt.utils import base64url_decode
from rest_framework_simplejwt import state as simplejwt_state
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken


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
    plain = _plain_access(token)
    if plain is not None:
        return plain
    try:
        access = AccessToken(token)
    except ExpiredTokenError as exc:
        raise Refused("TOKEN_EXPIRED", "The access token has expired") from exc
    except TokenError as exc:
        raise Refused("TOKEN_INVALID", "The access token is not valid") from exc
    try:
        return int(access[jwt_settings.USER_ID_CLAIM]), float(access["exp"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused("TOKEN_INVALID", "The access token carries no user") from exc


# What a token simplejwt mints for this project holds: anything else takes the library's path.
_HEADER_KEYS = frozenset({"alg", "typ"})
_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_keys: dict[tuple[str, object], bytes | None] = {}


def _hmac_key(backend: Any) -> bytes | None:
    """The key the library would verify with, when the backend is a plain HMAC one (else ``None``)."""
    cache_key = (backend.algorithm, backend.signing_key)
    if cache_key not in _keys:
        key = None
        if backend.algorithm in _HASHES and backend.audience is None and backend.issuer is None:
            with contextlib.suppress(Exception):  # a key PyJWT refuses: the library path says so
                key = jwt.algorithms.HMACAlgorithm(_HASHES[backend.algorithm]).prepare_key(backend.prepared_signing_key)
        _keys[cache_key] = key
    return _keys[cache_key]


def _plain_access(token: str) -> tuple[int, float] | None:
    """``(user_id, expires_at)`` of an access token the library would accept, checked without it;
    ``None`` for any other token, which then goes through simplejwt and PyJWT (and their answer).

    PyJWT and simplejwt cost ~50 µs a token (options merged, the key prepared, claims checked one
    by one), a twentieth of a connect's CPU in a reconnect storm. This accepts only what they
    accept: the configured HMAC algorithm, the header ``{alg, typ: JWT}``, a good signature, and
    exactly the claims simplejwt mints (type, exp, iat, jti, the user), each well typed, ``exp``
    more than a second ahead and ``iat`` not ahead. It refuses nothing itself.
    """
    backend = simplejwt_state.token_backend
    key = _hmac_key(backend)
    if key is None or token.count(".") != 2:
        return None
    try:
        signing_input, signature = token.encode("ascii").rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
        header = json.loads(base64url_decode(header_segment))
        if not isinstance(header, dict) or header.get("alg") != backend.algorithm or not header.keys() <= _HEADER_KEYS:
            return None
        if header.get("typ", "JWT") != "JWT":
            return None
        expected = hmac.new(key, signing_input, _HASHES[backend.algorithm]).digest()
        if not hmac.compare_digest(expected, base64url_decode(signature)):
            return None
        claims = json.loads(base64url_decode(payload_segment))
    except (ValueError, TypeError, binascii.Error):
        return None
    user_claim, type_claim, jti_claim = (
        jwt_settings.USER_ID_CLAIM,
        jwt_settings.TOKEN_TYPE_CLAIM,
        jwt_settings.JTI_CLAIM,
    )
    if not isinstance(claims, dict) or claims.keys() != {type_claim, "exp", "iat", jti_claim, user_claim}:
        return None
    exp, iat, now = claims["exp"], claims["iat"], time.time()
    if type(exp) is not int or type(iat) is not int or not iat <= now < exp - 1 - backend.get_leeway().total_seconds():
        return None
    if claims[type_claim] != AccessToken.token_type or not isinstance(claims[jti_claim], str):
        return None
    user_id = claims[user_claim]
    if type(user_id) not in (int, str):
        return None
    try:
        return int(user_id), float(exp)
    except ValueError:
        return None


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
