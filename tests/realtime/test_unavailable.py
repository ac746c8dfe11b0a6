"""Answered, not hung: a connect that cannot read its user within ``CONNECT_TIMEOUT``, a connect
to a process that is stopping, and a REST request that finds the database pool empty for
``DB_POOL_TIMEOUT`` are each refused ``UNAVAILABLE`` in time, and the server serves again after.

The database is held for real: the test takes an ``ACCESS EXCLUSIVE`` lock on the users' table
in a transaction of its own, so every query that reads a user waits (holding its pooled
connection) until the test lets go. PostgreSQL only (SQLite's locks are the whole file's).
"""

import asyncio
import contextlib
import http.client
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import psycopg
import pytest
import socketio
from django.db import connection

from tests.live import Client, ServerProcess, database_url, run, token_for, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

SLACK = 2.0  # a loaded CI machine's scheduling, on top of the bound under test


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("holding the database needs PostgreSQL (set DATABASE_URL); .ci/run runs them")


def dsn() -> str:
    return database_url().replace("postgres://", "postgresql://", 1)


@contextlib.contextmanager
def users_locked() -> Iterator[None]:
    """Every query that reads ``auth_user`` waits until the block ends."""
    with psycopg.connect(dsn()) as holder:
        holder.execute("LOCK TABLE auth_user IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            holder.rollback()


def waiting_on_the_lock(application_name: str) -> int:
    """How many of the server's queries wait for the lock (they hold their pooled connection)."""
    with psycopg.connect(dsn(), autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            [application_name],
        ).fetchone()
    return row[0]


def test_a_connect_that_cannot_read_its_user_within_connect_timeout_is_refused_unavailable(
    cluster_env,  # noqa: F811
    customer,
):
    timeout = 1.0
    server = ServerProcess({**cluster_env, "CONNECT_TIMEOUT": str(timeout)}).start()
    token = token_for(customer)

    async def scenario() -> None:
        with users_locked():
            late = Client(server.url, "/customer")
            started = time.monotonic()
            with pytest.raises(socketio.exceptions.ConnectionError):
                await late.connect(token, timeout=timeout + SLACK + 3)
            took = time.monotonic() - started
            assert late.connect_error is not None, f"no answer, the client gave up after {took:.1f} s"
            assert late.connect_error["data"] == {"code": "UNAVAILABLE"}, late.connect_error
            assert timeout * 0.9 <= took <= timeout + SLACK, took  # at CONNECT_TIMEOUT, not before, not at ours
        back = await Client(server.url, "/customer").connect(token)  # the database answers: connects again
        await back.close()

    try:
        run(scenario())
    finally:
        server.stop()


def test_a_connect_to_a_stopping_process_is_refused_unavailable(cluster_env, customer, other_customer):  # noqa: F811
    """Between SIGTERM and the websockets' close the process still reads packets: a namespace
    connect then is refused ``UNAVAILABLE`` at once, before any query (the users' table is locked:
    a connect that went on to read its user would get no answer at all)."""
    name = "connect-while-stopping"
    server = ServerProcess({**cluster_env, "CONNECT_TIMEOUT": "30", "DB_APPLICATION_NAME": name}).start()

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket")
            frames: list[str] = []

            async def read() -> None:
                async for message in ws:
                    if message.data == "2":
                        await ws.send_str("3")
                    else:
                        frames.append(message.data)

            reader = asyncio.create_task(read())
            await wait_until(lambda: any(f.startswith("0{") for f in frames), what="the Engine.IO handshake")
            with users_locked():
                # A connect in flight keeps the stop's first half waiting for its query (about a second).
                held_client = Client(server.url, "/customer")
                held = asyncio.create_task(held_client.connect(token_for(other_customer), timeout=30))
                await wait_until(
                    lambda: waiting_on_the_lock(name) == 1, timeout=10, what="the held connect to wait on the lock"
                )
                server.proc.send_signal(signal.SIGTERM)

                async def accepting() -> bool:
                    async with http.get(server.url + "/readyz") as response:
                        body = await response.json()
                        return body.get("checks", body.get("details", {})).get("accepting", False)

                deadline = time.monotonic() + 5
                while await accepting():
                    assert time.monotonic() < deadline, "the process never said it was stopping"
                    await asyncio.sleep(0.02)
                await ws.send_str("40/customer," + json.dumps({"token": token_for(customer)}))
                await wait_until(
                    lambda: any(f.startswith(("40/customer,", "44/customer,")) for f in frames),
                    timeout=2,
                    what="an answer to the connect",
                )
                answer = next(f for f in frames if f.startswith(("40/customer,", "44/customer,")))
                assert answer.startswith("44/customer,"), answer
                assert json.loads(answer[len("44/customer,") :])["data"] == {"code": "UNAVAILABLE"}, answer
            held.cancel()
            with contextlib.suppress(BaseException):
                await held
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await ws.close()

    try:
        run(scenario())
        server.proc.wait(timeout=20)
    finally:
        server.stop()


def get(port: int, path: str, token: str | None = None, timeout: float = 30) -> tuple[int, dict[str, Any], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_an_exhausted_database_pool_answers_503_after_db_pool_timeout_and_recovers(cluster_env, customer):  # noqa: F811
    """``DB_POOL_SIZE=1``: a request whose query waits on the lock holds the pool's one
    connection; the next request waits ``DB_POOL_TIMEOUT`` for one, then gets 503 ``UNAVAILABLE``
    with ``Retry-After``. Once the lock goes both are served again."""
    name, pool_timeout = "pool-exhausted", 1.0
    env = {**cluster_env, "DB_POOL_SIZE": "1", "DB_POOL_TIMEOUT": str(pool_timeout), "DB_APPLICATION_NAME": name}
    server = ServerProcess(env).start()
    token = token_for(customer)

    async def scenario() -> None:
        with users_locked():
            holding = asyncio.create_task(asyncio.to_thread(get, server.port, "/api/bookings/", token))
            await wait_until(lambda: waiting_on_the_lock(name) == 1, timeout=10, what="the pool's one connection held")
            started = time.monotonic()
            status, headers, body = await asyncio.to_thread(get, server.port, "/api/services/")
            took = time.monotonic() - started
            assert status == 503, (status, body)
            assert body["code"] == "UNAVAILABLE" and body["retryAfter"] >= 1 and body["message"], body
            assert int(headers["retry-after"]) == body["retryAfter"], (headers, body)
            assert pool_timeout * 0.9 <= took <= pool_timeout + SLACK, took
            assert not holding.done()  # still held: the 503 was the pool's, not the query's
        status, _, body = await asyncio.wait_for(holding, SLACK + 5)
        assert status == 200, body  # the held request finishes once the lock goes
        status, _, body = await asyncio.to_thread(get, server.port, "/api/services/", None, SLACK + 5)
        assert status == 200 and isinstance(body, list | dict), body  # the pool serves again

    try:
        run(scenario())
    finally:
        server.stop()
