"""The server's frames without websockets' machinery: their bytes (``frame_of``), the writes of
a loop round, one per connection (``Uncorking``), and the handshake's response held to go with the
round's first frames (``Held``), for ``websocket_protocol.WebSocketProtocol``."""

import asyncio
import logging
import weakref
from typing import Any

logger = logging.getLogger("uvicorn.error")


def frame_of(data: str | bytes) -> bytes:
    """The frame a server sends ``data`` in (unmasked, uncompressed): the same for every connection.

    RFC 6455's header written here, not through websockets' ``Frame`` (its checks and its
    serializer cost more than the rest of a room emit's delivery); the same bytes
    (``tests/realtime/test_outbound.py`` compares them)."""
    if isinstance(data, str):
        payload, first = data.encode(), 0x81  # FIN, text
    else:
        payload, first = data, 0x82  # FIN, binary
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2) + payload
    return bytes((first, 127)) + length.to_bytes(8) + payload


class Uncorking:
    """A loop's connections with frames taken this round (``write_frame``), written by one
    callback at the round's end: not a ``call_soon`` each (a handle and a pass through the
    loop's ready queue for every recipient of a room emit)."""

    __slots__ = ("protocols",)

    def __init__(self) -> None:
        self.protocols: list[Any] = []  # websocket_protocol.WebSocketProtocol

    def add(self, protocol: Any, loop: asyncio.AbstractEventLoop) -> None:
        if not self.protocols:
            loop.call_soon(self.write_all)
        self.protocols.append(protocol)

    def write_all(self) -> None:
        protocols, self.protocols = self.protocols, []
        for protocol in protocols:
            try:
                protocol.uncork()
            except Exception:  # one transport's failure is no reason to hold the others' frames
                logger.exception("writing a connection's frames failed")


# Per loop (the tests run several), holding no reference to its loop: the entry goes with it.
_uncorking: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Uncorking] = weakref.WeakKeyDictionary()


def uncorking(loop: asyncio.AbstractEventLoop) -> Uncorking:
    found = _uncorking.get(loop)
    if found is None:
        found = _uncorking[loop] = Uncorking()
    return found


class Held:
    """The transport as uvicorn's accept sees it: what it writes is kept (``WebSocketProtocol.send``)."""

    __slots__ = ("data", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport, self.data = transport, []

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def write(self, data: bytes) -> None:
        self.data.append(data)
