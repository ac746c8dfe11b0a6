"""What a periodic loop writes into the log while the database or Redis is away: one WARNING when
its rounds start failing and one INFO line when one goes through again (``outages.OutageLog``), not
a line (or a traceback) every round for as long as the outage lasts; a bug is an ERROR every round.

The outages are real: a throwaway PostgreSQL (``own_postgres``) and a redis-server of the test's own,
stopped (refused) or paused with SIGSTOP (hung), and started again."""

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import dj_database_url
import pytest
from django.db import connections

from config.realtime import clock, manager
from config.realtime.orm import db
from config.realtime.recovery import Recovery
from config.realtime.recovery_store import RedisStore
from tests.config.test_lanes import _start_redis
from tests.live import Client, ServerProcess, free_port, run, running, token_for, wait_for_log, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_faults import own_postgres  # noqa: F401 - fixture

ALIAS = "outage_logs"
ROUND = 0.05  # a round every 50 ms: an outage of a second is twenty failed rounds


def our_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """This thread's lines from the project's realtime loggers (a live server of another test may
    still run in its own thread)."""
    here = threading.get_ident()
    return [r for r in caplog.records if r.name.startswith("config.realtime") and r.thread == here]


def assert_one_outage(lines: list[logging.LogRecord], what: str, away: str, error: str) -> None:
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO], [r.getMessage() for r in lines]
    warning, back = lines
    assert warning.exc_info is None and back.exc_info is None
    assert warning.getMessage().startswith(f"{what}: {away} unavailable ({error}"), warning.getMessage()
    assert warning.getMessage().endswith("retried every round, said again when back")
    assert back.getMessage().startswith(f"{what}: {away} back after "), back.getMessage()


def test_a_clock_says_a_database_outage_once_and_once_when_it_is_back(
    own_postgres,  # noqa: F811
    django_db_blocker,
    monkeypatch,
    caplog,
):
    database = connections.configure_settings({"default": dj_database_url.parse(own_postgres["url"])})["default"]
    monkeypatch.setitem(connections.settings, ALIAS, database)
    ticks: list[bool] = []  # each tick: whether its query went through

    def query() -> None:
        ticks.append(False)
        with connections[ALIAS].cursor() as cursor:  # closed after each call (orm.db): a fresh connect
            cursor.execute("SELECT 1")
        ticks[-1] = True

    async def scenario() -> int:
        async with running(clock.every(ROUND, db(query), "the test clock")):
            await wait_until(lambda: any(ticks), what="a tick that reached the database")
            await asyncio.to_thread(own_postgres["stop"])
            tried = len(ticks)
            await wait_until(lambda: len(ticks) >= tried + 10, what="ten ticks against the stopped database")
            failed = ticks[tried:].count(False)
            await asyncio.to_thread(own_postgres["start"])
            done = len(ticks)
            await wait_until(lambda: ticks[done:].count(True) >= 3, what="ticks once it is back")
            return failed

    with django_db_blocker.unblock(), caplog.at_level(logging.INFO, logger="config.realtime"):
        failed = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert failed >= 9
    assert_one_outage(our_lines(caplog), "the test clock", "database", "OperationalError")


def test_a_clock_tick_that_is_a_bug_is_an_error_every_time(caplog):
    ticks: list[int] = []

    async def tick() -> None:
        ticks.append(1)
        raise RuntimeError("a bug in the tick")

    async def scenario() -> None:
        async with running(clock.every(ROUND, tick, "the test clock")):
            await wait_until(lambda: len(ticks) >= 3, what="three failed ticks")

    with caplog.at_level(logging.INFO, logger="config.realtime"):
        asyncio.run(asyncio.wait_for(scenario(), 30))
    lines = our_lines(caplog)
    assert len(lines) >= 3
    assert all(r.levelno == logging.ERROR and r.exc_info and r.exc_info[0] is RuntimeError for r in lines)
    assert {r.getMessage() for r in lines} == {"the test clock failed"}


@pytest.fixture
def own_redis() -> Iterator[subprocess.Popen]:
    """A redis-server of the test's own (``.args`` holds its port), shut down whatever the test did to it."""
    port = free_port()
    redis = _start_redis(port)
    yield redis
    with contextlib.suppress(ProcessLookupError):
        os.kill(redis.pid, signal.SIGCONT)
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], timeout=10, capture_output=True)
    redis.terminate()
    redis.wait(10)


@pytest.mark.parametrize("outage", ["refused", "hung"])
def test_the_recovery_trim_says_a_redis_outage_once(outage, own_redis, monkeypatch, caplog):
    """The manager's trim of the recovery log, against a Redis that is stopped (every trim refused)
    or paused (every trim past its timeout), then back."""
    redis = own_redis
    port = int(redis.args[redis.args.index("--port") + 1])
    store = RedisStore(f"redis://127.0.0.1:{port}/0", "outage-logs:recovery", 100, 60)
    recovery = Recovery(store, 100)
    trims: list[bool] = []
    trim = recovery.trim

    async def counted(namespaces: list[str]) -> None:
        trims.append(False)
        await trim(namespaces)
        trims[-1] = True

    monkeypatch.setattr(recovery, "trim", counted)
    monkeypatch.setattr(manager, "TRIM_SECONDS", ROUND)
    server = SimpleNamespace(server=SimpleNamespace(recovery=recovery, namespace_handlers={"/customer": None}))

    def away() -> None:
        if outage == "hung":
            os.kill(redis.pid, signal.SIGSTOP)
        else:
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], timeout=10, capture_output=True)
            redis.wait(10)

    def back() -> subprocess.Popen:
        if outage == "hung":
            os.kill(redis.pid, signal.SIGCONT)
            return redis
        return _start_redis(port)

    async def scenario() -> int:
        try:
            async with running(manager.ChannelLayerManager.trim_recovery_log(server)):
                await wait_until(lambda: any(trims), what="a trim that went through")
                await asyncio.to_thread(away)
                tried = len(trims)
                # Hung: each trim waits STORE_TIMEOUT (0.5 s); refused: each fails at once.
                await wait_until(lambda: trims[tried:].count(False) >= 4, timeout=15, what="four failed trims")
                failed = trims[tried:].count(False)
                await asyncio.to_thread(back)
                done = len(trims)
                await wait_until(lambda: trims[done:].count(True) >= 3, timeout=15, what="trims once it is back")
                return failed
        finally:
            await store.close()

    with caplog.at_level(logging.INFO, logger="config.realtime"):
        failed = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert failed >= 4
    error = "TimeoutError" if outage == "hung" else "ConnectionError"
    assert_one_outage(our_lines(caplog), "trimming the recovery log", "Redis", error)


STAFF = """
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
user = get_user_model().objects.create_user("outage-ops", password="tangerine-kettle-42", is_staff=True)
print(AccessToken.for_user(user))
"""
LOOPS = {  # every periodic loop of a server process that reads the database, each round
    "DISPATCH_SWEEP_INTERVAL": "0.1",
    "SAFETY_SWEEP_INTERVAL": "0.1",
    "TRACE_PRUNE_INTERVAL": "0.1",
    "RELAY_RECONCILE_INTERVAL": "0.1",
    "ACCESS_RECHECK_SECONDS": "1",  # its least
    "DASHBOARD_PUSH_INTERVAL": "0.1",
    "PRESENCE_HEARTBEAT": "0.1",
    "DB_POOL_TIMEOUT": "0.5",
}


@pytest.mark.redis
def test_a_server_says_a_database_outage_once_per_loop(own_postgres, cluster_env):  # noqa: F811
    """A server process with a staff socket on /admin (the dashboard's figures, the access recheck)
    and every clock ticking ten times a second, through three seconds without its database: each
    loop says it once and once when it is back. The dashboard's push was an ERROR with its traceback
    every tick, the access recheck a warning every period, each clock a warning every tick."""
    env = {**cluster_env, "DATABASE_URL": own_postgres["url"], **LOOPS}
    manage = [sys.executable, "manage.py"]
    migrated = subprocess.run(
        [*manage, "migrate", "--noinput"], env={**os.environ, **env}, capture_output=True, text=True, timeout=180
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    made = subprocess.run(
        [*manage, "shell", "-c", STAFF], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr[-2000:]
    token = made.stdout.strip().splitlines()[-1]
    server = ServerProcess(env).start()

    async def scenario() -> None:
        staff = await Client(server.url, "/admin").connect(token)
        await staff.wait_for("dashboard:stats_update")  # its figures pushed: the loops run
        await asyncio.to_thread(own_postgres["stop"])
        await asyncio.sleep(3)  # thirty ticks of each clock, three rechecks
        await asyncio.to_thread(own_postgres["start"])
        await asyncio.to_thread(wait_for_log, server, "computing dashboard stats: database back after", 15)
        await asyncio.to_thread(wait_for_log, server, "periodic access recheck: database back after", 15)
        await staff.close()

    try:
        run(scenario())
    finally:
        server.stop()
    log = server.output()
    ours = [line for line in log.splitlines() if line[:4].isdigit() and "psycopg.pool" not in line]
    assert not [line for line in ours if " ERROR " in line or "Traceback" in line], log[-3000:]
    for loop in ("computing dashboard stats", "periodic access recheck", "the booking clock", "the safety clock"):
        said = [line for line in ours if f" {loop}: " in line]
        assert len(said) == 2, "\n".join(said)
        assert " WARNING " in said[0] and "database unavailable" in said[0], said
        assert " INFO " in said[1] and "database back after" in said[1], said


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.server_errors(r"channel layer unavailable")
def test_a_redis_outage_fails_no_heartbeat(cluster_env, partner, own_redis):  # noqa: F811
    """The heartbeat's publish of a server with a partner online (its keeper written, its list
    published ten times a second) through a Redis the test stops and starts: the list is queued on
    the broker lane, which says once that the layer is away and once that it is back; the heartbeat
    says nothing (no round of it fails), nor does any other loop but the recovery log's trim."""
    port = int(own_redis.args[own_redis.args.index("--port") + 1])
    env = {**cluster_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "PRESENCE_HEARTBEAT": "0.1"}
    server = ServerProcess(env).start()

    async def scenario() -> None:
        driver = await Client(server.url, "/partner").connect(token_for(partner.user))
        await asyncio.to_thread(subprocess.run, ["redis-cli", "-p", str(port), "shutdown", "nosave"], timeout=10)
        await asyncio.to_thread(wait_for_log, server, "channel layer unavailable")
        await asyncio.sleep(2)  # twenty heartbeats
        await asyncio.to_thread(_start_redis, port)  # shut down by ``own_redis``
        await asyncio.to_thread(wait_for_log, server, "cross-process delivery resumed")
        await asyncio.sleep(0.5)
        assert driver.sio.connected
        await driver.close()

    try:
        run(scenario())
    finally:
        server.stop()
    lines = [line for line in server.output().splitlines() if line[:4].isdigit()]
    assert [line for line in lines if "presence" in line] == []
    assert sum("channel layer unavailable" in line for line in lines) == 1, lines
    assert sum("cross-process delivery resumed" in line for line in lines) == 1, lines
