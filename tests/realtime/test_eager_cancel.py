"""A cancellation of the reading task that comes between a handler's eager step and the task's
turn to finish it (``config.realtime.eager``) is the handler's, as it would be in a Task's step.

The handler's first step runs in ``data_received``; when it suspends, it is handed to the
reading task, which runs it on at its next turn. A cancellation in between (the handler's own
``asyncio.timeout`` whose deadline has passed, a stop) finds the reading task waiting for a frame
that has come: it must reach the handler, not end the connection or lose the handler.
"""

import asyncio
from typing import Any

from config.realtime.primitives import Mailbox
from config.realtime.reading import WebSocketReader
from tests.live import run


class _Logger:
    def info(self, *args: Any) -> None:
        pass

    def exception(self, *args: Any) -> None:
        raise AssertionError("no handler error expected")


class _Server:
    ping_interval = ping_timeout = 5.0
    max_http_buffer_size = 100
    async_handlers = False
    logger = _Logger()

    def __init__(self, handler: Any) -> None:
        self.handlers = {"message": handler}


class _Protocol:
    """What ``_read`` uses of ``WebSocketProtocol``: a text taken at once while the reader waits
    with nothing queued (``take_text``), else queued for it."""

    texts_wanted = True
    take_text: Any = None

    def __init__(self) -> None:
        self.queue = Mailbox()

    def data_received(self, text: str | None) -> None:
        item: Any = text
        if text is not None and self.take_text is not None and self.queue.empty() and self.queue.awaited():
            item = self.take_text(text)
        if item is not None or text is None:
            self.queue.put_nowait(item)

    async def asgi_receive(self) -> Any:
        return await self.queue.get()


class _WebSocket:
    def __init__(self, protocol: _Protocol) -> None:
        self.asgi_receive = protocol.asgi_receive
        self.protocol = protocol

    async def wait(self) -> Any:
        return await self.asgi_receive()


class _Reader(WebSocketReader):
    sid = "s1"

    def __init__(self, handler: Any) -> None:
        self.server = _Server(handler)


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

        protocol = _Protocol()
        reading = asyncio.ensure_future(_Reader(handler)._read(_WebSocket(protocol)))
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

        protocol = _Protocol()
        reading = asyncio.ensure_future(_Reader(handler)._read(_WebSocket(protocol)))
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(protocol.data_received, "42[1]")
        await asyncio.sleep(0.05)
        protocol.data_received(None)
        await asyncio.wait_for(reading, 1)
        return seen

    assert run(scenario(), timeout=5) == ["cancelled"]
