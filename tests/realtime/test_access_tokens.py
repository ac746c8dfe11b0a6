"""A connect's token is refused exactly when simplejwt's ``AccessToken`` refuses it, with the same code
(``config.realtime.access_tokens`` checks it without simplejwt's per-call setup, issue 34)."""

import time
from datetime import timedelta

import jwt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jwt.algorithms import HMACAlgorithm
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from config.realtime import access_tokens, auth

KEY = token_backend.signing_key


def access(**claims) -> AccessToken:
    token = AccessToken()
    token["user_id"] = "7"
    for name, value in claims.items():
        token[name] = value
    return token


def signed(payload: dict, key: str = KEY, algorithm: str = "HS256", headers: dict | None = None) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def without(claim: str) -> str:
    payload = dict(access().payload)
    del payload[claim]
    return signed(payload)


def simplejwt_verdict(token: str) -> str | dict:
    try:
        return AccessToken(token).payload
    except ExpiredTokenError:
        return "expired"
    except TokenError:
        return "invalid"


def our_verdict(token: str) -> str | dict:
    try:
        return access_tokens.access_payload(token)
    except access_tokens.TokenExpiredError:
        return "expired"
    except access_tokens.TokenInvalidError:
        return "invalid"


def tokens() -> dict[str, str]:
    good = str(access())
    head, body, signature = good.split(".")
    expired = access()
    expired.set_exp(lifetime=timedelta(seconds=-5))
    now = int(time.time())
    return {
        "valid": good,
        "expired": str(expired),
        "a refresh token": str(RefreshToken()),
        "no type": without("token_type"),
        "no jti": without("jti"),
        "no exp": without("exp"),
        "exp not a number": signed({**access().payload, "exp": "soon"}),
        "not valid before a minute from now": signed({**access().payload, "nbf": now + 60}),
        "another key": signed(access().payload, key="another key of thirty-two bytes or more"),
        "HS512 with our key": signed(access().payload, algorithm="HS512"),
        "alg none": signed(access().payload, key="", algorithm="none"),
        "a critical header": signed(access().payload, headers={"crit": ["exp"], "exp": 1}),
        "junk in the signature": f"{head}.{body}.{signature[:-2]}!!",
        "padded signature": f"{head}.{body}.{signature}=",
        "two segments": f"{head}.{body}",
        "garbage": "garbage",
        "empty": "",
    }


@pytest.mark.parametrize("case", list(tokens()))
def test_a_token_gets_simplejwts_verdict(case):
    token = tokens()[case]
    expected = simplejwt_verdict(token)
    assert our_verdict(token) == expected
    if case not in ("valid", "padded signature"):  # PyJWT takes a padded segment
        assert expected in ("expired", "invalid"), f"{case}: simplejwt took it"


@pytest.mark.parametrize(
    ("case", "code"),
    [("expired", "TOKEN_EXPIRED"), ("a refresh token", "TOKEN_INVALID"), ("another key", "TOKEN_INVALID")],
)
def test_a_refused_token_has_the_contracts_code(case, code):
    with pytest.raises(auth.Refused) as refused:
        auth.decode_token(tokens()[case])
    assert refused.value.error_args["data"]["code"] == code


def test_the_signing_key_is_checked_once_not_per_token(monkeypatch):
    token = str(access())
    access_tokens.access_payload(token)  # the verifier is built
    checks = []
    original = HMACAlgorithm.prepare_key
    monkeypatch.setattr(HMACAlgorithm, "prepare_key", lambda self, key: checks.append(key) or original(self, key))
    assert auth.decode_token(token)[0] == 7
    assert checks == []


SEGMENT_BYTES = st.lists(st.sampled_from(list(b"AZaz09-_=+/.! \x00\xff")), max_size=12).map(bytes)
PADDED = st.tuples(SEGMENT_BYTES, st.integers(0, 5)).map(lambda p: p[0] + b"=" * p[1])


@settings(max_examples=400, deadline=None)
@given(segment=PADDED)
@example(segment=b"AAAAAAAA====")
@example(segment=b"eyJ9!")
def test_a_segment_decodes_as_pyjwt_decodes_it(segment):
    def outcome(decode):
        try:
            return decode(segment, "header")
        except jwt.DecodeError as exc:
            return str(exc)

    assert outcome(access_tokens._PyJWS._decode_base64url_segment) == outcome(jwt.PyJWS._decode_base64url_segment)
