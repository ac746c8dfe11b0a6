"""Forwarding headers only from the proxies the operator trusts, by address (contract 10.2).

The server runs as ``make serve`` runs it, with ``TRUSTED_PROXIES=127.0.0.1``; a client
connects from 127.0.0.2 (loopback too, but not a trusted proxy: a worker reached directly)
or from 127.0.0.1 (the proxy).
"""

import http.client
import json
import uuid

import pytest
import socketio

from config.proxies import TrustedProxies
from tests.factories import UserFactory
from tests.live import Client, ServerProcess, run, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

PROXY, STRANGER = "127.0.0.1", "127.0.0.2"


def request(server: ServerProcess, source: str, method: str, path: str, headers: dict, body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def login(server: ServerProcess, source: str, forwarded_for: str) -> int:
    body = json.dumps({"username": "nobody", "password": "wrong"}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
    return request(server, source, "POST", "/api/auth/token/", headers, body)[0]


def own_counts() -> dict[str, str]:
    """Throttle and limit counts of the server's own: the suite's other servers count the
    same loopback addresses (and the same usernames) in the same minute."""
    return {"SOCKETIO_CHANNEL_GROUP": f"test-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
def server(cluster_env):  # noqa: F811
    env = {
        **cluster_env,
        "TRUSTED_PROXIES": PROXY,
        "NUM_PROXIES": "1",  # the old knob: no longer read
        "METRICS_ALLOWED_NETWORKS": "10.1.2.3/32",
        "THROTTLE_AUTH": "3/min",
        "SOCKETIO_CORS_ORIGINS": "https://app.example",
        **own_counts(),
    }
    server = ServerProcess(env).start()
    yield server
    server.stop()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.server_errors("is not an accepted origin")  # Engine.IO's own line, the first refusal an ERROR
def test_forwarding_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(server):
    # /metrics' allow-list: the stranger cannot claim an allowed address.
    assert request(server, STRANGER, "GET", "/metrics", {"X-Forwarded-For": "10.1.2.3"})[0] == 403
    # The per-address throttle: rotating X-Forwarded-For does not rotate the stranger's address.
    statuses = [login(server, STRANGER, f"198.51.100.{i}") for i in range(4)]
    assert statuses[:3] == [401] * 3 and statuses[3] == 429, statuses
    # X-Forwarded-Proto: the stranger cannot make its plain HTTP pass for the https origin.
    origin = {"Origin": f"https://127.0.0.1:{server.port}", "X-Forwarded-Proto": "https"}
    assert request(server, STRANGER, "GET", "/socket.io/?EIO=4&transport=polling", origin)[0] == 400


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_with_no_trusted_proxies_x_forwarded_for_is_ignored_by_the_throttle_and_the_sockets_limits(
    cluster_env,  # noqa: F811
):
    """``TRUSTED_PROXIES`` unset (the default): not even a loopback peer is believed. A client
    rotating ``X-Forwarded-For`` stays its own address for the REST throttle, the connects per
    address and the Engine.IO sessions per address."""
    env = {
        **cluster_env,
        "TRUSTED_PROXIES": "",
        "THROTTLE_AUTH": "3/min",
        "RATE_CONNECT_ADDRESS": "3",
        "SOCKETIO_SESSIONS_PER_ADDRESS": "3",
        **own_counts(),
    }
    users = [UserFactory() for _ in range(4)]  # four users: none meets its own connect limit (30)
    server = ServerProcess(env).start()

    async def connect(user, forwarded_for: str) -> dict | None:
        client = Client(server.url, "/customer")
        try:
            await client.connect(token_for(user), headers={"X-Forwarded-For": forwarded_for})
        except socketio.exceptions.ConnectionError:
            return client.connect_error
        await client.close()
        return None

    async def connects() -> list:
        return [await connect(user, f"198.51.100.{i}") for i, user in enumerate(users)]

    try:
        statuses = [login(server, PROXY, f"203.0.113.{i}") for i in range(4)]
        assert statuses == [401, 401, 401, 429], statuses
        outcomes = run(connects())
        assert outcomes[:3] == [None] * 3, outcomes
        assert outcomes[3]["data"]["code"] == "RATE_LIMITED", outcomes
        # Engine.IO sessions, from another address (each handshake opens one, left open).
        handshakes = [
            request(server, STRANGER, "GET", "/socket.io/?EIO=4&transport=polling", {"X-Forwarded-For": f"192.0.2.{i}"})
            for i in range(4)
        ]
        assert [status for status, _ in handshakes] == [200, 200, 200, 401]
    finally:
        server.stop()


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_forwarding_headers_from_a_trusted_proxy_say_who_the_client_is(server):
    assert request(server, PROXY, "GET", "/metrics", {"X-Forwarded-For": "10.1.2.3"})[0] == 200
    assert request(server, PROXY, "GET", "/metrics", {"X-Forwarded-For": "203.0.113.5"})[0] == 403
    # Each client the proxy names has its own count: none is throttled for the others.
    assert [login(server, PROXY, f"192.0.2.{i}") for i in range(5)] == [401] * 5
    # A client that wrote its own X-Forwarded-For before the proxy appended the real one: the
    # proxy's (the rightmost entry) is the address.
    assert request(server, PROXY, "GET", "/metrics", {"X-Forwarded-For": "10.1.2.3, 203.0.113.5"})[0] == 403
    origin = {"Origin": f"https://127.0.0.1:{server.port}", "X-Forwarded-Proto": "https"}
    assert request(server, PROXY, "GET", "/socket.io/?EIO=4&transport=polling", origin)[0] == 200


def test_what_reaches_the_application_holds_no_forwarding_header_a_client_wrote():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    async def scenario(trusted, peer):
        headers = [(b"x-forwarded-for", b"10.1.2.3"), (b"x-forwarded-proto", b"https"), (b"forwarded", b"for=10.1.2.3")]
        scope = {"type": "http", "client": (peer, 5000), "scheme": "http", "headers": headers}
        await TrustedProxies(app, trusted)(scope, None, None)
        return seen[-1]

    import asyncio

    untrusted = asyncio.run(scenario([], "127.0.0.1"))
    assert untrusted["client"] == ("127.0.0.1", 5000) and untrusted["scheme"] == "http"
    assert untrusted["headers"] == [(b"x-forwarded-proto", b"http")]
    trusted = asyncio.run(scenario(["127.0.0.0/8"], "127.0.0.1"))
    assert trusted["client"][0] == "10.1.2.3" and trusted["scheme"] == "https"
    assert trusted["headers"] == [(b"x-forwarded-proto", b"https")]
