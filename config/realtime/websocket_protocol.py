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
- **Idle memory.** uvicorn's protocol sets 38 attributes on each connection; past 29 CPython
  (3.11, 3.12) stops sharing one key table among a class's instances and gives each a dict of
  its own (~1.6 KiB). The names uvicorn sets once in ``__init__`` and ``connection_made``
  live in ``__slots__`` here (8 bytes each), so the rest share the class's keys (~0.3 KiB).
  The receive queue and the "writable" event are the lean ones of
  ``config.realtime.primitives`` (asyncio's cost ~4 KiB a socket). The handshake's
  request headers are emptied once the handshake is over (the ASGI scope has its own
  copy, and websockets' parser keeps the request for the connection's life), and its
  response is let go once sent.
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
  after its close. The handshake's response is taken the same way (``send``), so a websocket's
  Engine.IO OPEN goes out with it (``config.realtime.frames`` holds the frames' bytes and writes).

- **An event handled in the read.** While the application waits for a text with none queued,
  ``take_text`` (``config.realtime.eager``) takes it in ``data_received``: no queue hop, no wake-up
  of the reading task, no paused and resumed read; what it hands back is queued as a text would be.

Use: ``uvicorn --ws config.realtime.websocket_protocol:WebSocketProtocol --ws-ping-interval 0``
(as ``make serve`` does: Engine.IO's heartbeat finds dead peers, uvicorn's own pings would double it).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State
from websockets.speedups import apply_mask

from config.realtime.eager import EAGER_PER_READ
from config.realtime.frames import Held, uncorking
from config.realtime.primitives import Flag, Mailbox


class PerConnectionLog(logging.LoggerAdapter):
    """A logger whose INFO lines are DEBUG: what happens once per connection, not per event."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)

    @property
    def level(self) -> int:  # uvicorn reads it to decide on its TRACE lines
        return self.logger.level


_per_connection = PerConnectionLog(logging.getLogger("uvicorn.error"), {})


# What one connection's frames may take in one loop round (asyncio's and uvloop's high-water mark):
# "writable" turns false only when they are written, at the round's end, so a client that never
# reads made the server buffer a whole round's packets past every bound (12 MB for 3,000 packets of
# 4 KB, tests/realtime/test_held.py). Past it the frames go engineio's way, where the send-queue
# bounds count them.
CORKED_MAX = 64 * 1024

_FINAL_TEXT = 0x81  # FIN, no reserved bit, opcode TEXT
_MASKED = 0x80


class WebSocketProtocol(WebSocketsSansIOProtocol):
    # uvicorn's names, set once per connection: slots, so that fewer than 30 stay in the instance
    # dict (tests/realtime/test_leaks.py counts them on a live connection).
    __slots__ = (
        "app",
        "app_state",
        "asgi_version",
        "client",
        "close_timeout",
        "config",
        "conn",
        "connections",
        "default_headers",
        "loop",
        "ping_interval",
        "ping_timeout",
        "root_path",
        "scheme",
        "server",
        "tasks",
        "transport",
        "uncorking",  # ours, set once too
    )
    plain_frames = False  # set once the handshake is over: no extension transforms this connection's frames
    texts_wanted = False  # set by the application that reads this connection: it takes a text message as a ``str``
    reads_texts = False  # this protocol reads the client's final text frames itself (``_read_texts``)
    unread = b""  # the start of a frame not complete yet (a ``bytearray`` that grows with each read)
    wanted = 0  # how long ``unread`` must grow before a frame in it may be complete
    corked: list[bytes] | None = None  # frames taken this loop round, not written yet (``write_frame``)
    corked_bytes = 0  # their size (``CORKED_MAX``)
    # The application's, while it waits for a text with none queued: it takes one at once (``eager``).
    take_text: Callable[[str], Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _per_connection  # type: ignore[assignment]
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        # Its loop's writer of corked frames, found once (a weak dictionary's lookup was about a µs
        # of every relayed update's delivery); created in its loop, as uvicorn's own loop is
        # (get_running_loop: a protocol built outside a running loop is a bug, said at once).
        self.uncorking = uncorking(asyncio.get_running_loop())

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        event.headers.clear()  # copied into the scope by now; the response is built

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's response went out (a hook off the send path).
        super().start_keepalive()
        self.response = None  # type: ignore[assignment]  # uvicorn reads it only before it goes out
        self.plain_frames = not self.conn.extensions
        # Only from a frame boundary: nothing of the client's may be in the library's buffer.
        self.reads_texts = self.plain_frames and self.texts_wanted and not self.conn.reader.buffer

    def data_received(self, data: bytes) -> None:
        if self.reads_texts:
            if self.unread:
                # Appended, not rebuilt, and parsed again only once it may hold the frame: a
                # large frame arriving in small reads costs its length once, not once a read.
                self.unread += data
                if len(self.unread) < self.wanted:
                    return
                data, self.unread = self.unread, b""
            self._read_texts(data)
        else:
            super().data_received(data)

    def _read_texts(self, data: bytes) -> None:
        """Frames in ``data``, in order: a final masked text frame within the size bound is
        unmasked, decoded and queued here, as the ``str`` it carries (what uvicorn queues as a
        ``websocket.receive`` event, without websockets' parser, its ``Frame`` and the event's
        dict); any other complete frame (a control frame, binary, a fragment, bad UTF-8) is fed
        alone to the library, which takes it as it would have. A frame the library may refuse
        only on its header (too large, unmasked) or that it leaves the connection not open
        after: the library reads everything from there on."""
        at, end, eager = 0, len(data), 0
        while end - at >= 2:
            first, second = data[at], data[at + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(data[at + 2 : at + 4]), 4
            elif length == 127:
                length, head = int.from_bytes(data[at + 2 : at + 10]), 10
            if not second & _MASKED or (end - at >= head and length > (self.conn.max_message_size or length)):
                break  # the library's to refuse
            start = at + head + 4
            if end < start + length:  # the rest of the frame (or of its header) comes in a later read
                self.unread = bytearray(data[at:])
                self.wanted = start - at + (length if end - at >= head else 0)  # the header's, if that is all we know
                return
            text = None
            # Inside a fragmented message a text frame is a protocol error: the library's to refuse.
            if first == _FINAL_TEXT and self.conn.current_size is None:
                with contextlib.suppress(UnicodeDecodeError):
                    text = apply_mask(data[start : start + length], data[at + head : start]).decode()
            if text is None:
                super().data_received(data[at : start + length])
                at = start + length
                if self.conn.state is not State.OPEN or self.conn.reader.buffer:
                    break
                continue
            if not self.close_sent:  # past the application's close, uvicorn drops messages too
                item: Any = text
                queue = self.queue
                if self.take_text is not None and eager < EAGER_PER_READ and queue.empty() and queue.awaited():
                    eager += 1
                    item = self.take_text(text)
                if item is not None:
                    queue.put_nowait(item)
                    if not self.read_paused:
                        self.read_paused = True
                        self.transport.pause_reading()
            at = start + length
        else:
            self.unread, self.wanted = (bytearray(data[at:]), 2) if at < end else (b"", 0)
            return
        self.unread = b""
        self.reads_texts = False  # for good: the library reads from here on
        if at < end:
            super().data_received(data[at:])

    def handle_ping(self) -> None:
        # uvicorn writes each pong whatever its write buffer holds, and the send-queue bounds do
        # not count pongs: a client that pings and never reads made the server hold them all. It
        # is sent none while it does not read (its own ping timeout then ends the connection).
        pong = b"".join(self.conn.data_to_send())
        if self.writable.is_set():
            self.transport.write(pong)

    def write_frame(self, frame: bytes) -> bool:
        """Write a frame of ``frame_of`` now, if the connection is open, writable and plain, and this
        round's frames are under ``CORKED_MAX``; ``False``: send it through the ASGI ``send`` (which
        writes this round's frames first, then waits, or fails, as it should)."""
        if (
            not self.plain_frames
            or not self.writable.is_set()
            or self.close_sent
            or self.transport.is_closing()
            or self.corked_bytes > CORKED_MAX
        ):
            return False
        if self.corked is None:
            self.corked = [frame]
            self.uncorking.add(self, asyncio.get_running_loop())
        else:
            self.corked.append(frame)
        self.corked_bytes += len(frame)
        return True

    def uncork(self) -> None:
        """Write the frames taken this round, unless the connection closed meanwhile."""
        corked, self.corked, self.corked_bytes = self.corked, None, 0
        if corked and not self.close_sent and not self.transport.is_closing():
            self.transport.write(corked[0] if len(corked) == 1 else b"".join(corked))

    async def send(self, message: Any) -> None:
        self.uncork()  # what write_frame took goes before, whatever this is (data, or the close)
        if message["type"] != "websocket.accept" or self.handshake_complete:
            await super().send(message)
            return
        # uvicorn's accept, its response taken as the connection's first frames are: the frames the
        # application writes in this round (Engine.IO's OPEN, ``engine.WebSocket``) go in the same
        # write, one system call of a connect's three (a fifth of a connect storm's loop time).
        transport = self.transport
        self.transport = held = Held(transport)  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
        if held.data:
            self.corked = held.data
            self.uncorking.add(self, asyncio.get_running_loop())

    def shutdown(self) -> None:
        self.uncork()  # before the close frame of a server that stops
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        with contextlib.suppress(Exception):  # best effort: the connection is gone either way
            self.conn.receive_eof()
            self.conn.parser.close()
