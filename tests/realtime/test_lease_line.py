"""The rate limiter's leases on their raw connection (``config.realtime.lease_line``), against a
Redis of the test's own: how many connections and commands a burst of leases costs, and a Redis
that stops answering (SIGSTOP) and comes back."""

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from config.realtime import limits
from config.realtime.limits import RateLimiter
from tests.live import free_port
from tests.realtime.test_limits import admitted

pytestmark = pytest.mark.redis


@pytest.fixture
def own_redis() -> Iterator[tuple[redis.Redis, subprocess.Popen]]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the lease line's tests")
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=5)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start within 5 s"
            time.sleep(0.05)
    yield client, proc
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)


async def settled(limiter: RateLimiter, close: bool = False) -> None:
    async with asyncio.timeout(5):
        while limiter._tasks:
            await asyncio.gather(*limiter._tasks)
    if close:  # before the test's loop ends (a server's limiter keeps its line as long as its loop)
        limiter._line().close()
        await asyncio.sleep(0)


def test_the_leases_of_a_moment_go_on_one_connection_in_one_write(own_redis, settings):
    """300 users' leases asked for in one loop round: one connection to Redis (redis-py's pool
    opened one per lease in flight, up to 16), one INCRBY and one EXPIRE a lease, in the URL's
    database. Each user's hit asks for the lease it was admitted on, and that one half spent,
    the next: two leases of 2 a window."""
    client, _ = own_redis
    port = client.connection_pool.connection_kwargs["port"]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/3"
    settings.RATE_LIMITS = {"default": (8, 3600.0)}  # leases of 2: the first hit asks for one
    connections_before = client.info("stats")["total_connections_received"]

    async def scenario() -> None:
        limiter = RateLimiter()
        assert [admitted(limiter, user, 1) for user in range(300)] == [1] * 300
        await settled(limiter, close=True)

    asyncio.run(scenario())
    assert client.info("stats")["total_connections_received"] - connections_before == 1
    calls = client.info("commandstats")
    assert (calls["cmdstat_incrby"]["calls"], calls["cmdstat_expire"]["calls"]) == (600, 600)
    in_db = redis.Redis(port=port, db=3)
    counts = {in_db.get(key) for key in in_db.keys("*:rl:default:*")}
    assert (len(in_db.keys("*:rl:default:*")), counts) == (300, {b"4"})


def test_a_paused_redis_fails_the_leases_in_time_and_the_line_reopens(own_redis, settings, monkeypatch, caplog):
    """Redis stops answering (SIGSTOP: no reset): a lease fails within ``REDIS_TIMEOUT`` (plus
    a margin), the limiter counts per process and says so once; once Redis answers again, leases
    are taken on a new connection, and the paused batch's late replies are not read as theirs."""
    client, proc = own_redis
    port = client.connection_pool.connection_kwargs["port"]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.RATE_LIMITS = {"default": (8, 3600.0)}
    monkeypatch.setattr(limits, "DOWN_FOR", 0.5)

    async def scenario() -> tuple[float, int, list[int]]:
        limiter = RateLimiter()
        assert admitted(limiter, 1, 1) == 1
        await settled(limiter)  # the line is open
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert admitted(limiter, 2, 1) == 1  # asks for its lease: Redis does not answer
            await settled(limiter)
            failed_in = time.monotonic() - started
            during = admitted(limiter, 2, 20)  # per process meanwhile: about the limit
        finally:
            proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(limits.DOWN_FOR)
        after = [admitted(limiter, user, 1) for user in (3, 4)]
        await settled(limiter, close=True)
        return failed_in, during, after

    failed_in, during, after = asyncio.run(scenario())
    assert limits.REDIS_TIMEOUT <= failed_in < limits.REDIS_TIMEOUT + 1.0, failed_in
    assert 6 <= during <= 8, during  # 8 a window for the user, one of them admitted before
    assert after == [1, 1]
    assert caplog.text.count("rate limits counted per process for now") == 1
    # user 2's paused lease may have reached Redis late; 3 and 4 got theirs, each read as its own reply
    totals = {key.split(b":")[-2]: client.get(key) for key in client.keys("*:rl:default:*")}
    assert totals[b"1"] == totals[b"3"] == totals[b"4"] == b"4", totals
