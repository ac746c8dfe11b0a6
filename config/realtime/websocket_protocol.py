"""uvicorn's websockets-sansio protocol, without what it keeps per connection for nothing.

- **The cycle that outlived each connection.** ``websockets``' sans-I/O
  ``ServerProtocol`` parses with a generator stored on the protocol
  (``self.parser = self.parse()``), and the suspended generator's frame refers back
  to the protocol: a reference cycle as old as the connection. Under the tuned
  collector (``config/realtime/tuning.py``) such old cycles wait for a full
  collection, and each one holds its connection's buffers and permessage-deflate
  state: under connection churn the process grew by ~25 KiB per closed connection
  (docs/performance.md). When the connection is lost: feed the protocol the end of
  the stream (``receive_eof``, the library's own idempotent API), which takes the
  parser to its last ``yield`` (websockets keeps it suspended there for good and
  never steps it after EOF), then close that generator. A closed generator holds no
  frame, so refcounting frees the connection at once.
- **Idle memory.** The receive queue and the "writable" event are the lean ones of
  ``config.realtime.primitives`` (asyncio's cost ~4 KiB a socket). The handshake's
  request and response headers are emptied once the handshake is over: the ASGI
  scope has its own copy, and websockets' parser keeps the request for the
  connection's life.
- **Logs that scale with events, not connections.** uvicorn logs each websocket's handshake
  at INFO (``"WebSocket /socket.io/..." [accepted]``): two lines a connection with the
  close, all formatted on the event loop, 42,000 lines for a churn of 21,000
  connections. The metrics count connections; these lines go to DEBUG.
- **A frame built once.** Without permessage-deflate (``make serve`` turns it off) a frame
  from the server is its header and the payload, the same bytes for every socket: a room
  emit builds it once (``frame_of``) and ``write_frame`` writes it to each connection that
  is open and writable, where uvicorn's ASGI ``send`` would take a ``websocket.send`` dict,
  encode the text and frame it again for each. A connection that negotiated an extension
  (a client offering permessage-deflate where the server allows it) is written as before.
- **One write a loop round.** Frames ``write_frame`` takes are written together at the end of
  the loop's round (one ``transport.write``, one system call into the kernel's loopback or NIC
  path): a chat message's ack and its ``message:sent`` go to the same socket in the same round.
  uvicorn's own writes of data or of a close (``send``, ``shutdown``) write them first, so
  nothing overtakes them and nothing follows a close frame; a connection that closes in that
  round (the peer's close, a keepalive timeout, a broken frame) drops them, as it would any frame
  after its close.

Use: ``uvicorn --ws config.realtime.websocket_protocol:WebSocketProtocol`` (as
``make serve`` does).
"""

import asyncio
import contextlib
import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request

from config.realtime.primitives import Flag, Mailbox


class PerConnectionLog(logging.LoggerAdapter):
    """A logger whose INFO lines are DEBUG: what happens once per connection, not per event."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)

    @property
    def level(self) -> int:  # uvicorn reads it to decide on its TRACE lines
        return self.logger.level


_per_connection = PerConnectionLog(logging.getLogger("uvicorn.error"), {})


def frame_of(data: str | bytes) -> bytes:
    """The frame a server sends ``data`` in (unmasked, uncompressed): the same for every connection."""
    if isinstance(data, str):
        return Frame(Opcode.TEXT, data.encode()).serialize(mask=False)
    return Frame(Opcode.BINARY, data).serialize(mask=False)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    plain_frames = False  # set once the handshake is over: no extension transforms this connection's frames
    corked: list[bytes] | None = None  # frames taken this loop round, not written yet (``write_frame``)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _per_connection  # type: ignore[assignment]
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        event.headers.clear()  # copied into the scope by now; the response is built

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's response went out (a hook off the send path).
        super().start_keepalive()
        self.response.headers.clear()
        self.plain_frames = not self.conn.extensions

    def write_frame(self, frame: bytes) -> bool:
        """Write a frame of ``frame_of`` now, if the connection is open, writable and plain;
        ``False``: send it through the ASGI ``send`` (which waits, or fails, as it should)."""
        if not self.plain_frames or not self.writable.is_set() or self.close_sent or self.transport.is_closing():
            return False
        if self.corked is None:
            self.corked = [frame]
            asyncio.get_running_loop().call_soon(self.uncork)
        else:
            self.corked.append(frame)
        return True

    def uncork(self) -> None:
        """Write the frames taken this round, unless the connection closed meanwhile."""
        corked, self.corked = self.corked, None
        if corked and not self.close_sent and not self.transport.is_closing():
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    async def send(self, message: Any) -> None:
        self.uncork()  # what write_frame took goes before, whatever this is (data, or the close)
        await super().send(message)

    def shutdown(self) -> None:
        self.uncork()  # before the close frame of a server that stops
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        with contextlib.suppress(Exception):  # best effort: the connection is gone either way
            self.conn.receive_eof()
            self.conn.parser.close()
