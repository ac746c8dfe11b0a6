"""A cancellation of the reading task that comes between a handler's eager step and the task's
turn to finish it (``config.realtime.eager``) is the handler's, as it would be in a Task's step.

The handler's first step runs in ``data_received``; when it suspends, it is handed to the
reading task, which runs it on at its next turn. A cancellation in between (the handler's own
``asyncio.timeout`` whose deadline has passed, a stop) finds the reading task waiting for a frame
that has come: it must reach the handler, not end the connection or lose the handler.
"""

import asyncio

from tests.live import run
from tests.realtime import eager_harness as harness


def test_a_handlers_own_expired_timeout_reaches_it_and_the_socket_reads_on():
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def handler(sid: str, data: str) -> None:
            if data == "2[1]":
                try:
                    async with asyncio.timeout(0):  # a deadline already past: its cancel comes next loop pass
                        await asyncio.sleep(1)
                    seen.append("not timed out")
                except TimeoutError:
                    seen.append("timed out")
            else:
                seen.append(data)

        reader, protocol, reading = harness.reading(handler)
        await asyncio.sleep(0)  # the reader waits for a frame
        loop = asyncio.get_running_loop()
        loop.call_soon(protocol.data_received, "42[1]")
        await asyncio.sleep(0.05)
        loop.call_soon(protocol.data_received, "42[2]")
        await asyncio.sleep(0.05)
        assert not reading.done(), "the connection ended on the handler's timeout"
        protocol.data_received(None)  # the client goes
        await asyncio.wait_for(reading, 1)
        assert not reading.cancelled() and reading.cancelling() == 0  # the handler's timeout uncancelled it
        assert reader.server.logged == []
        return seen

    assert run(scenario(), timeout=5) == ["timed out", "2[2]"]


def test_a_cancel_before_the_reader_takes_a_handler_cancels_the_handler_not_loses_it():
    async def scenario() -> list[str]:
        seen: list[str] = []
        reading: asyncio.Task[None]

        async def handler(sid: str, data: str) -> None:
            asyncio.get_running_loop().call_soon(reading.cancel)  # lands before the reader's turn
            try:
                await asyncio.sleep(1)
                seen.append("slept")
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        reader, protocol, reading = harness.reading(handler)
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(protocol.data_received, "42[1]")
        await asyncio.sleep(0.05)
        protocol.data_received(None)
        await asyncio.wait_for(reading, 1)
        assert reader.server.logged == []
        return seen

    assert run(scenario(), timeout=5) == ["cancelled"]


def test_a_handler_that_cancels_its_reading_task_in_its_first_step_runs_once():
    """The cancel lands in the eager step itself: the reading task's wait is cancelled before the
    handler is queued, so the handler is both taken by the cancellation and left in the queue. It
    is run to its end once; the copy in the queue is let go, not run again (a coroutine stepped
    after its end raises, which the loop would log as the handler's error)."""

    async def scenario() -> list[str]:
        seen: list[str] = []

        async def handler(sid: str, data: str) -> None:
            if data == "2[1]":
                asyncio.current_task().cancel()  # the reading task: the eager step runs on its behalf
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    seen.append("cancelled")
                    raise
            else:
                seen.append(data)

        reader, protocol, reading = harness.reading(handler)
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        loop.call_soon(protocol.data_received, "42[1]")
        await asyncio.sleep(0.05)
        loop.call_soon(protocol.data_received, "42[2]")
        await asyncio.sleep(0.05)
        protocol.data_received(None)
        await asyncio.wait_for(reading, 1)
        assert reader.server.logged == []
        return seen

    assert run(scenario(), timeout=5) == ["cancelled", "2[2]"]
