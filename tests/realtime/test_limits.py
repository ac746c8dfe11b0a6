"""The rate limiter's shared leases, against the real Redis."""

import asyncio
import os

import pytest

from config.errors import RateLimited
from config.realtime.limits import RateLimiter

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _needs_redis() -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("leases are taken from Redis (set REDIS_URL); .ci/run runs them")


def admitted(limiter: RateLimiter, user_id: int, hits: int) -> int:
    count = 0
    for _ in range(hits):
        try:
            limiter.hit(user_id, "default")
        except RateLimited:
            continue
        count += 1
    return count


async def settled(limiter: RateLimiter) -> None:
    async with asyncio.timeout(5):
        while limiter._tasks:
            await asyncio.gather(*limiter._tasks)


def test_events_admitted_on_credit_before_redis_answers_do_not_cost_the_rest_of_the_window(settings):
    """Redis slower than the user's events: the credit is paid back and the user still gets the whole limit."""
    settings.RATE_LIMITS = {"default": (8, 3600.0)}

    async def scenario() -> tuple[int, int, int]:
        limiter = RateLimiter()
        user_id = int.from_bytes(os.urandom(4), "big")  # a window key of its own in the shared Redis
        # No await between hits: every lease request is still on its way, as with a slow Redis.
        before_any_answer = admitted(limiter, user_id, 8)
        await settled(limiter)
        after_answers = admitted(limiter, user_id, 8)
        await settled(limiter)
        return before_any_answer, after_answers, admitted(limiter, user_id, 1)

    before, after, past_the_limit = asyncio.run(scenario())
    # The lease taken on trust (2) plus one lease of credit (2); the other 4 once Redis has answered.
    assert (before, after, past_the_limit) == (4, 4, 0)


def test_two_limiters_share_one_count_in_redis(settings):
    """Two limiters (as two processes hold; tests/realtime/test_faults.py runs real ones) spend leases of
    the one count in Redis: together they admit the limit, give or take a lease."""
    settings.RATE_LIMITS = {"default": (20, 3600.0)}

    async def scenario() -> list[int]:
        first, second = RateLimiter(), RateLimiter()
        user_id = int.from_bytes(os.urandom(4), "big")
        counts = [0, 0]
        for _ in range(20):
            for index, limiter in enumerate((first, second)):
                counts[index] += admitted(limiter, user_id, 1)
                await settled(limiter)
        return counts

    counts = asyncio.run(scenario())
    assert 20 <= sum(counts) <= 20 + 5 and min(counts) >= 5, counts


def test_a_large_limit_is_shared_by_many_processes(settings):
    """Connects per address (600 a minute) over 8 processes: each admits its own, none is starved
    because the first few took the whole count as leases before spending any of it."""
    settings.RATE_LIMITS = {"default": (600, 3600.0)}

    async def scenario() -> list[int]:
        processes = [RateLimiter() for _ in range(8)]
        address = f"address:{os.urandom(4).hex()}"
        counts = []
        for limiter in processes:
            counts.append(admitted(limiter, address, 40))
            await settled(limiter)
        return counts

    assert asyncio.run(scenario()) == [40] * 8


def test_with_redis_unreachable_limits_count_per_process(settings, caplog):
    """Redis refusing: each process admits about the limit on its own (fails open per process, never
    refuses everyone), says so once, and refuses past it."""
    from tests.live import free_port

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.RATE_LIMITS = {"default": (8, 3600.0)}

    async def scenario() -> tuple[int, int]:
        limiter = RateLimiter()
        user_id = int.from_bytes(os.urandom(4), "big")
        first = admitted(limiter, user_id, 8)
        await settled(limiter)
        return first, admitted(limiter, user_id, 20)

    first, later = asyncio.run(scenario())
    assert 8 <= first + later <= 10, (first, later)  # the local limit, give or take a lease
    assert later < 20  # and past it, refused
    assert "rate limits counted per process for now" in caplog.text


def test_a_refusal_says_when_the_window_ends_and_finished_windows_are_forgotten(settings, monkeypatch):
    """``retryAfter`` is the time left in the window (whole seconds, rounded up); the sweep drops
    windows that are over and keeps the current ones. (cosmic-ray: 33 mutants of these lines
    survived the suite before.)"""
    import time as clock

    settings.REDIS_URL = ""  # counted in this process
    settings.RATE_LIMITS = {"default": (2, 100.0), "typing": (2, 100.0)}
    limiter = RateLimiter()
    now = 1_000_037.25  # 37.25 s into a 100 s window
    monkeypatch.setattr(clock, "time", lambda: now)
    limiter.hit(1, "default")
    limiter.hit(1, "default")
    with pytest.raises(RateLimited) as refused:
        limiter.hit(1, "default")
    assert refused.value.retry_after == 63  # 62.75 s left

    limiter.hit(2, "typing")
    limiter.hit(4, "default")
    limiter.hit(4, "default")
    now += 100  # the next window: the first ones are over
    limiter.hit(4, "default")  # admitted again before any sweep: a window is read by its index
    limiter.hit(3, "default")
    limiter.sweep()
    assert set(limiter.windows) == {(3, "default"), (4, "default")}
    limiter.hit(1, "default")  # a new window admits again


def test_a_windows_shared_count_expires_with_the_window(settings):
    """Redis keeps each window's count only a little longer than the window (keys do not pile up)."""
    import redis

    settings.RATE_LIMITS = {"default": (8, 30.0)}
    user_id = int.from_bytes(os.urandom(4), "big")

    async def scenario() -> None:
        limiter = RateLimiter()
        limiter.hit(user_id, "default")
        await settled(limiter)

    asyncio.run(scenario())
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    [key] = client.keys(f"*:rl:default:{user_id}:*")
    assert 30 < client.ttl(key) <= 35


def test_a_windows_first_hits_ask_redis_nothing_and_its_first_lease_counts_them(settings):
    """Connects per user (30 a minute, leases of 8): the first three of a window make no Redis call;
    the fourth asks for the lease they were admitted on, and half spent, the next one: Redis counts both."""
    import redis

    settings.RATE_LIMITS = {"default": (30, 3600.0)}
    user_id = int.from_bytes(os.urandom(4), "big")
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        limiter = RateLimiter()
        assert admitted(limiter, user_id, 3) == 3
        await settled(limiter)
        before = client.keys(f"*:rl:default:{user_id}:*")
        assert admitted(limiter, user_id, 1) == 1
        await settled(limiter)
        return before, [client.get(key) for key in client.keys(f"*:rl:default:{user_id}:*")]

    before, after = asyncio.run(scenario())
    assert (before, after) == ([], [b"16"])
