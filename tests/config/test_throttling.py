"""Every REST throttle scope (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``) answers 429 with the
contract's error past its rate, on a real server whose rate for that scope alone is lowered
(tests/settings.py reads ``THROTTLE_<SCOPE>`` from the environment). ``login`` has its own
tests (tests/config/test_logins.py); every other scope is here."""

import http.client
import json
import uuid
from typing import Any

import pytest

import config.settings as product
from tests.factories import UserFactory
from tests.live import ServerProcess, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

RATE = 3  # a minute

Answer = tuple[int, dict[str, str], Any]


def post(port: int, path: str, body: dict[str, Any], source: str, token: str | None = None) -> Answer:
    """POST ``body`` as JSON from the loopback address ``source`` (the throttles count per address)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    finally:
        conn.close()


# Per scope: a request it counts (who sends it, and what it answers below the rate), and the
# same request from someone the first one's count must not hold.
def auth_request(port: int, who: str) -> Answer:
    # Per address: a refresh with a token that is not one (401) from address ``who``.
    return post(port, "/api/auth/token/refresh/", {"refresh": "not-a-token"}, source=who)


def writes_request(port: int, who: str) -> Answer:
    # Per user: any unsafe method of a signed-in user, all from one address.
    return post(port, "/api/notifications/read-all/", {}, source="127.0.0.1", token=token_for(USERS[who]))


SCOPES = {
    "auth": (auth_request, 401, ("127.0.0.21", "127.0.0.22")),
    "writes": (writes_request, 200, ("first", "second")),
}
USERS: dict[str, Any] = {}


def test_every_scope_but_login_has_its_case_here():
    scopes = set(product.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    assert scopes - {"login"} == set(SCOPES), "a throttle scope without a test in tests/config/test_throttling.py"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_past_its_rate_each_scope_answers_429_with_the_contracts_error(scope, cluster_env):  # noqa: F811
    request, below, (counted, other) = SCOPES[scope]
    USERS.update(first=UserFactory(username=f"{scope}-first"), second=UserFactory(username=f"{scope}-second"))
    # This scope's rate lowered, the others left at the tests' 100000/min: only this one can refuse.
    # A cache prefix of its own (tests/settings.py keys the cache by the group): no count another
    # test left for the same address or user id can spend this one's.
    group = f"throttle-{scope}-{uuid.uuid4().hex[:8]}"
    env = {**cluster_env, f"THROTTLE_{scope.upper()}": f"{RATE}/min", "SOCKETIO_CHANNEL_GROUP": group}
    server = ServerProcess(env).start()
    try:
        answers = [request(server.port, counted) for _ in range(RATE + 1)]
        assert [status for status, _, _ in answers] == [below] * RATE + [429], answers
        _, headers, body = answers[-1]
        assert set(body) == {"code", "message", "retryAfter"}, body
        assert body["code"] == "RATE_LIMITED" and body["message"], body
        assert 1 <= body["retryAfter"] <= 60 and int(headers["retry-after"]) == body["retryAfter"], (headers, body)
        status, _, body = request(server.port, other)
        assert status == below, (status, body)  # counted per address or user: another is not held
    finally:
        server.stop()
