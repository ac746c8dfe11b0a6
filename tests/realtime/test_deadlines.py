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
