"""The ORM queue's count (``OrmLoad.in_flight``: admission control, ``homeservices_orm_queue_depth``,
a stop's wait for the periodic work's calls) through a database that hangs and a stop's cutoff
(``orm.abandon_waits``): a call counts until its thread is done with it, not until its caller stops
waiting. Abandoned callers left their calls hung in every thread while the count said none.

The database hangs for real: every process of a throwaway PostgreSQL (``own_postgres``) is paused
with SIGSTOP while the calls are connected and in their statements."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import dj_database_url
import pytest
from django.db import connections
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from config.errors import Unavailable
from config.realtime import orm
from config.realtime.orm import OrmLoad, db, orm_in_flight
from tests.live import Client, ServerProcess, paused_postgres, run, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_faults import own_postgres  # noqa: F401 - fixture
from tests.realtime.test_shutdown_hung_database import PARTNER, SHUTDOWN_TIMEOUT

ALIAS = "orm_gauge"
THREADS = 2


def test_abandoned_calls_count_until_their_threads_are_done(own_postgres, django_db_blocker, monkeypatch):  # noqa: F811
    database = connections.configure_settings({"default": dj_database_url.parse(own_postgres["url"])})["default"]
    monkeypatch.setitem(connections.settings, ALIAS, database)
    in_statement: list[int] = []
    ran: list[int] = []

    def query(n: int) -> int:
        ran.append(n)
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")  # connected: the statement is what hangs
            in_statement.append(n)
            cursor.execute("SELECT pg_sleep(0.3)")
        return n

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="orm"))
        calls = [asyncio.ensure_future(db(query)(n)) for n in range(THREADS + 2)]  # two queued behind
        try:
            await wait_until(lambda: len(in_statement) == THREADS, what="both threads in a statement")
            with paused_postgres(own_postgres) as resume:  # their backends included
                await asyncio.sleep(0.5)  # past the statement: only the paused server holds them now
                assert orm_in_flight() == THREADS + 2
                orm.abandon_waits()
                results = await asyncio.gather(*calls, return_exceptions=True)
                assert all(isinstance(result, Unavailable) for result in results), results
                seen = [orm_in_flight()]  # the threads still hang in the database: so does the count
                await asyncio.sleep(0.5)
                seen.append(orm_in_flight())
                resume()
                await wait_until(lambda: orm_in_flight() == 0, timeout=10, what="the threads done")
            return seen
        finally:
            OrmLoad.abandoned_on = None

    with django_db_blocker.unblock():
        seen = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert seen == [THREADS, THREADS]  # the two queued calls were given up: they count no more
    assert sorted(ran) == list(range(THREADS))  # and never ran: nobody was left to read them
    assert asyncio.run(db(lambda: 3)()) == 3


def test_a_cancelled_caller_keeps_its_running_call_counted(own_postgres, django_db_blocker, monkeypatch):  # noqa: F811
    """Not only a stop: a caller that times out (a connect's bound) leaves the call in its thread."""
    database = connections.configure_settings({"default": dj_database_url.parse(own_postgres["url"])})["default"]
    monkeypatch.setitem(connections.settings, ALIAS, database)
    connected: list[int] = []

    def query() -> None:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            connected.append(1)
            cursor.execute("SELECT pg_sleep(0.3)")

    async def scenario() -> tuple[int, int]:
        call = asyncio.ensure_future(db(query)())
        await wait_until(lambda: connected, what="the call in its statement")
        with paused_postgres(own_postgres) as resume:  # its backend included
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(call, 0.7)
            during = orm_in_flight()
            resume()
            await wait_until(lambda: orm_in_flight() == 0, timeout=10, what="the thread done")
        return during, orm_in_flight()

    with django_db_blocker.unblock():
        assert asyncio.run(asyncio.wait_for(scenario(), 30)) == (1, 0)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_call_its_executor_refuses_counts_no_more():
    """An executor shut down (a stop's end) refuses the call: it never runs, and is not counted."""

    async def scenario() -> None:
        executor = ThreadPoolExecutor(1)
        asyncio.get_running_loop().set_default_executor(executor)
        executor.shutdown()
        before = OrmLoad.in_flight
        with pytest.raises(RuntimeError, match="after shutdown"):
            await db(lambda: None)()
        assert OrmLoad.in_flight == before

    asyncio.run(scenario())


def test_the_gauge_shows_what_a_stop_holds_on_a_hung_database(own_postgres, cluster_env, tmp_path):  # noqa: F811
    """A server stopping with its database hung (every process of it paused) and a partner's location
    buffered: the stop's writes (the location, the partner offline) wait in their threads, and the
    ORM queue gauge says so while the process stops. Its sampler was cancelled with the periodic work
    at the stop's start: the gauge kept the 0 it read before."""
    env = {
        **cluster_env,
        "DATABASE_URL": own_postgres["url"],
        "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "LOCATION_FLUSH_INTERVAL": "600",  # the location stays buffered until the stop
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),  # the gauge read from its file while the process stops
    }
    for args in (["migrate", "--noinput"], ["shell", "-c", PARTNER]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-2000:]
    server = ServerProcess(env).start()
    seen: list[float] = []

    def gauge() -> float:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(tmp_path))
        return registry.get_sample_value("homeservices_orm_queue_depth") or 0.0

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            body = {"username": "hung-partner", "password": "tangerine-kettle-42"}
            async with http.post(server.url + "/api/auth/token/", json=body) as response:
                token = (await response.json())["access"]
        partner = await Client(server.url, "/partner").connect(token)
        ack = await partner.call("location:update", {"latitude": 12.25, "longitude": 77.75})
        assert ack["ok"]
        await asyncio.sleep(1.5)  # a sample of the idle queue: 0
        seen.append(gauge())
        with paused_postgres(own_postgres):
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(3)  # the stop's writes hang; past the cutoff (5 s) the process ends
            seen.append(gauge())
            await asyncio.to_thread(server.proc.wait, 4 * SHUTDOWN_TIMEOUT)
        with contextlib.suppress(Exception):
            await partner.close()

    try:
        run(scenario(), timeout=120)
    finally:
        server.stop()
    assert seen[0] == 0, seen
    assert seen[1] >= 1, (seen, server.output()[-3000:])
