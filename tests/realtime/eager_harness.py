"""What ``config.realtime.eager`` and the read loop use of their surroundings, without a server:
engineio's server and socket, uvicorn's protocol and the websocket between them (``test_eager``,
``test_eager_cancel``)."""

import asyncio
from typing import Any

from config.realtime.primitives import Mailbox
from config.realtime.reading import WebSocketReader


class Idle:
    since: float | None = None


class Server:
    """engineio's server: the ``message`` handler, the bounds, a logger that keeps what it logs."""

    max_http_buffer_size = 100
    ping_interval = ping_timeout = 5.0
    async_handlers = False  # as python-socketio makes its engineio server

    def __init__(self, handler: Any) -> None:
        self.handlers = {"message": handler}
        self.logged: list[str] = []
        self.logger = type(
            "Logger", (), {"exception": lambda _, message: self.logged.append(message), "info": lambda *_: None}
        )()


class Protocol:
    """Just what ``_read`` uses of ``WebSocketProtocol``: ``texts_wanted``, ``take_text``, its queue."""

    texts_wanted = True
    take_text: Any = None

    def __init__(self) -> None:
        self.queue = Mailbox()

    async def asgi_receive(self) -> Any:
        return await self.queue.get()

    def data_received(self, text: str | None) -> None:
        """A read of one text frame (``None``: the client went), as ``_read_texts`` hands it on."""
        queue, item = self.queue, text
        if text is not None and self.take_text is not None and queue.empty() and queue.awaited():
            item = self.take_text(text)
        if item is not None or text is None:
            queue.put_nowait(item)


class Ws:
    """``engine.WebSocket``: the protocol it was given, and ``wait``."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol

    async def wait(self) -> Any:
        return await self.protocol.asgi_receive()


class Reader(WebSocketReader):
    """engineio's socket: its server, and ``receive`` for what is not a Socket.IO packet."""

    sid = "s1"

    def __init__(self, handler: Any) -> None:
        self.server = Server(handler)
        self.received: list[Any] = []

    async def receive(self, pkt: Any) -> None:
        self.received.append(pkt.data)


def reading(handler: Any) -> tuple[Reader, Protocol, "asyncio.Future[None]"]:
    """A read loop started on a fresh protocol, for ``handler``: (the socket, the protocol, the loop's task)."""
    reader, protocol = Reader(handler), Protocol()
    return reader, protocol, asyncio.ensure_future(reader._read(Ws(protocol)))
