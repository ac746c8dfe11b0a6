"""``config.realtime.deadlines``: one timer for many deadlines of one timeout (the no-namespace bound)."""

import asyncio

from config.realtime.deadlines import Deadlines


def test_deadlines_expire_in_order_once_each_unless_cancelled():
    async def scenario() -> None:
        expired: list[tuple[str, float]] = []
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(lambda: 0.05, lambda key: expired.append((key, loop.time())))
        start = loop.time()
        deadlines.set("a")
        deadlines.set("b")
        await asyncio.sleep(0.02)
        deadlines.set("c")
        deadlines.set("a")  # already waiting: keeps its deadline
        deadlines.cancel("b")
        assert "a" in deadlines and "b" not in deadlines and len(deadlines) == 2
        async with asyncio.timeout(2):
            while len(expired) < 2:
                await asyncio.sleep(0.01)
        assert [key for key, _ in expired] == ["a", "c"]
        assert expired[0][1] - start >= 0.05 and expired[1][1] - start >= 0.07
        assert len(deadlines) == 0
        deadlines.set("a")  # set again after expiring: a new deadline, a new timer
        async with asyncio.timeout(2):
            while len(expired) < 3:
                await asyncio.sleep(0.01)
        assert expired[2][0] == "a"

    asyncio.run(scenario())


def test_deadlines_set_on_a_new_loop_still_expire():
    """A loop that ended with the timer pending (a test's server, a restarted one) leaves no
    handle that keeps the next loop's deadlines from ever being swept."""
    expired: list[str] = []
    deadlines = Deadlines(lambda: 0.05, expired.append)

    async def first() -> None:
        deadlines.set("old")  # the loop ends before it is due

    async def second() -> None:
        deadlines.set("new")
        async with asyncio.timeout(2):
            while "new" not in expired:
                await asyncio.sleep(0.01)

    asyncio.run(first())
    asyncio.run(second())
    assert "new" in expired
