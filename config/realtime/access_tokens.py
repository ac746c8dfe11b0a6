"""The access token of a connect, checked as simplejwt's ``AccessToken`` checks it, without its per-call setup.

``AccessToken(token)`` builds a ``Token``, reads the clock as a ``datetime``, and has PyJWT check the
signing key again on every call (is it PEM, DER, an SSH key, a JWK?): about a hundred µs a connect
(issue 34). Here PyJWT verifies the token with simplejwt's backend's key and options, the key
checked once; then simplejwt's ``Token.verify`` rules: an ``exp``, a ``jti``, the ``access`` type.
Access tokens have no blacklist in simplejwt (only refresh and sliding tokens do).
``tests/realtime/test_access_tokens.py`` holds this to ``AccessToken``'s verdict, token by token.
"""

import binascii
from functools import cache
from typing import Any, NoReturn

import jwt
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_decode, base64url_encode
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken


class TokenExpiredError(Exception):
    """The token's ``exp`` has passed."""


class TokenInvalidError(Exception):
    """Not an access token of this service: its signature, format, type or claims."""


class _CheckedKeyHMAC(HMACAlgorithm):
    """An HMAC algorithm whose key PyJWT checked once: ``prepare_key`` passes that key through.

    Any other key (none is ever given) is checked as PyJWT would.
    """

    def __init__(self, hash_alg: Any, key: bytes) -> None:
        super().__init__(hash_alg)
        self.key = super().prepare_key(key)

    def prepare_key(self, key: str | bytes) -> bytes:
        return key if key is self.key else super().prepare_key(key)


_BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class _PyJWS(jwt.PyJWS):
    """PyJWT's JWS, its segments' alphabet checked in C (the rest of a token's check, for a
    generator over every byte in Python: a third of it). The same checks, in the same order."""

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        padding = 0
        stripped = segment
        while stripped.endswith(b"="):
            stripped = stripped[:-1]
            padding += 1
            if padding > 2:
                raise jwt.DecodeError(f"Invalid {name} padding")
        if padding and len(segment) % 4 != 0:
            raise jwt.DecodeError(f"Invalid {name} padding")
        # Deleting the alphabet's bytes leaves what is not in it.
        if len(stripped) % 4 == 1 or stripped.translate(None, _BASE64URL):
            raise jwt.DecodeError(f"Invalid {name} padding")
        try:
            decoded = base64url_decode(stripped)
        except (TypeError, binascii.Error) as err:
            raise jwt.DecodeError(f"Invalid {name} padding") from err
        if base64url_encode(decoded) != stripped:
            raise jwt.DecodeError(f"Invalid {name} padding")
        return decoded


class _Verifier:
    """simplejwt's backend's decode (key, algorithm, audience, issuer, leeway), its key checked once."""

    def __init__(self) -> None:
        try:  # simplejwt builds its backend on this import: an algorithm it does not know fails it
            from rest_framework_simplejwt.state import token_backend
        except TokenBackendError as exc:
            _refuse(f"ALGORITHM {api_settings.ALGORITHM!r}: {exc}")
        algorithm = token_backend.algorithm
        if not algorithm.startswith("HS"):
            _refuse(f"ALGORITHM must be HS256, HS384 or HS512, not {algorithm!r}")
        if token_backend.jwks_client is not None:
            _refuse("JWK_URL must be unset: the key is SIGNING_KEY")
        hashing = jwt.PyJWS().get_algorithm_by_name(algorithm)
        try:
            self.algorithm = _CheckedKeyHMAC(hashing.hash_alg, token_backend.prepared_signing_key)
        except jwt.InvalidKeyError as exc:  # an asymmetric key (PEM, SSH) given as an HMAC secret
            _refuse(f"SIGNING_KEY is no {algorithm} secret ({exc})")
        except TypeError:  # None, or not text: PyJWT's force_bytes says nothing of the setting
            _refuse(f"SIGNING_KEY must be a string, not {type(token_backend.prepared_signing_key).__name__}")
        # A key shorter than the hash (RFC 7518 3.2) is guessed offline from any one token, and
        # then every account's token is forged: PyJWT only warns, at each token it signs.
        if short := self.algorithm.check_key_length(self.algorithm.key):
            _refuse(f"SIGNING_KEY is too short: {short}")
        self.algorithms = [algorithm]
        self.decoder = jwt.PyJWT({"verify_aud": token_backend.audience is not None})
        # The PyJWS under PyJWT knows this one algorithm, whose key was checked already.
        self.decoder._jws = _PyJWS(algorithms=[])
        self.decoder._jws.register_algorithm(algorithm, self.algorithm)
        self.audience, self.issuer = token_backend.audience, token_backend.issuer
        self.leeway = token_backend.get_leeway()

    def payload(self, token: str) -> dict[str, Any]:
        try:
            return self.decoder.decode(
                token,
                self.algorithm.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError from exc
        except jwt.InvalidTokenError as exc:
            raise TokenInvalidError from exc


@cache
def _verifier() -> _Verifier:
    return _Verifier()


def _refuse(problem: str) -> NoReturn:
    raise ImproperlyConfigured(f"SIMPLE_JWT: socket connects check access tokens with an HMAC key only: {problem}")


def refuse_unusable_settings() -> None:
    """Raise ``ImproperlyConfigured`` naming the setting, when SIMPLE_JWT is one this check cannot
    use (an RS*/ES* algorithm, a JWKS URL, an asymmetric key): at a server's start, not at its
    first connect, where it refused every socket with a traceback while REST logins worked."""
    _verifier()


def access_payload(token: str) -> dict[str, Any]:
    """The claims of a valid access token; raises ``TokenExpiredError`` or ``TokenInvalidError``."""
    payload = _verifier().payload(token)
    # simplejwt's ``Token.verify``: PyJWT checked ``exp`` when present; a token must have one.
    if "exp" not in payload:
        raise TokenInvalidError("no exp")
    if api_settings.JTI_CLAIM is not None and api_settings.JTI_CLAIM not in payload:
        raise TokenInvalidError("no jti")
    type_claim = api_settings.TOKEN_TYPE_CLAIM
    if type_claim is not None and payload.get(type_claim) != AccessToken.token_type:
        raise TokenInvalidError("not an access token")
    return payload
