"""python-engineio's server, less what it keeps per connection for nothing.

Two reference cycles per connection, found with ``gc.DEBUG_SAVEALL`` under connection
churn (docs/performance.md, "Memory under churn"); both kept a closed connection's
whole protocol stack (uvicorn's protocol, the websockets state machine, buffers)
alive until a full collection:

- ``translate_request`` (its ASGI driver) defines a class per request; the class's
  ``read`` closes over the request's ASGI ``receive``, and a class is always a cycle.
  The environ (and so the class) lives as long as the connection, long enough to
  reach the oldest GC generation, where the tuned collector seldom looks (the body
  reader is ``config.realtime.environ``'s).
- ``WebSocket.wait`` raises ``OSError`` when the client goes; the exception's
  traceback holds the frames that hold the task that holds the exception.

And costs of idle memory: each socket's send queue is an ``asyncio.Queue`` (about
3 KiB, empty nearly all the time); here it is a ``primitives.Mailbox``, and the socket's
waits for its next ping and for a packet to write are on timers (``config.realtime.waits``).
And of idle CPU: the server looks for unanswered pings in one pass a ``ping_timeout``, not a
wake-up per socket (``waits.SweptTimeouts``).

What one connection may make the server hold is bounded here too (contract 10.1): a
socket's send queue (packets and characters; past either the connection is dropped as a
transport error and counted in ``homeservices_connection_bounds_total``), and what a
long-polling POST may carry (at most ``Payload.max_decode_packets`` packets, readable):
anything else is answered 400 with one WARNING line, never a traceback.

A ``MESSAGE`` to a websocket goes out at once where nothing can be ahead of it
(``config.realtime.outbound``); the queue keeps the rest, their order and the bounds.

All replaced in a subclass (python-socketio's ``_engineio_server_class`` hook), not
patched into the library: the same names, the same behaviour.
"""

import logging
from typing import Any

import engineio
from django.conf import settings
from engineio import async_socket, exceptions, payload
from engineio.async_drivers import asgi

from config import metrics
from config.realtime.auth import client_address
from config.realtime.environ import forget_headers, translate_request
from config.realtime.library_logs import FURTHER, clients_doing_logged_once
from config.realtime.outbound import WritesNow
from config.realtime.primitives import Mailbox
from config.realtime.reading import WebSocketReader
from config.realtime.waits import SweptTimeouts, TimedWaits
from config.realtime.websocket_protocol import WebSocketProtocol

logger = logging.getLogger(__name__)


class WebSocket(asgi.WebSocket):
    protocol: WebSocketProtocol | None = None  # the connection's, when it is the product's

    async def __call__(self, environ: dict[str, Any]) -> str:
        """While the websocket lasts, its socket may write frames straight to it (``outbound``), and
        its protocol hands it text messages as they are (``WebSocketProtocol.reads_texts``).

        engineio's body is inlined, not awaited through ``super()``: this call lasts as long as
        the connection, and a frame more on its stack is ~0.3 KiB a socket (issue 34)."""
        socket = getattr(self.handler, "__self__", None)
        protocol = getattr(environ["asgi.send"], "__self__", None)
        if not (isinstance(socket, Socket) and isinstance(protocol, WebSocketProtocol)):
            return await super().__call__(environ)
        forget_headers(environ)
        socket.write_frame = protocol.write_frame
        protocol.texts_wanted = True  # ``wait`` takes a text message as the protocol's ``str``
        self.protocol = protocol  # the read loop gives it a taker of event frames (``eager``)
        try:
            self.asgi_receive = environ["asgi.receive"]
            self.asgi_send = environ["asgi.send"]
            await self.asgi_send({"type": "websocket.accept"})
            if not socket.connected and protocol.plain_frames and protocol.writable.is_set():
                socket.write_queued()  # not an upgrade: its OPEN goes with the response, in one write
            await self.handler(self)
            return ""  # engineio's: send nothing as response
        finally:
            socket.write_frame = self.protocol = None  # the connection is over: no reference left to it

    async def wait(self) -> Any:
        """The next message, or ``None`` once the client has gone (engineio's "connection closed").

        During an upgrade engineio reads packets outside its receive loop and expects
        ``OSError`` for a client that went away; there the old behaviour stays (no task
        is involved, so no cycle).
        """
        event = await self.asgi_receive()
        if type(event) is not dict:
            return event  # a text the protocol read itself (``reads_texts``), or a handler it started (``eager``)
        if event["type"] != "websocket.receive":
            if getattr(getattr(self.handler, "__self__", None), "upgrading", False):
                raise OSError("the client went away during the upgrade")
            return None
        if event.get("bytes") is not None:
            return event["bytes"]
        return event.get("text")


def _chars(item: Any) -> int:
    data = getattr(item, "data", None)
    return len(data) if isinstance(data, (str, bytes)) else 0


class SendQueue(Mailbox):
    """A socket's send queue that also counts the characters of the packets waiting in it."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def put_nowait(self, item: Any) -> None:
        waiting = self.qsize()
        super().put_nowait(item)
        if self.qsize() > waiting:  # not handed straight to a waiting getter
            self.chars += _chars(item)

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        self.chars -= _chars(item)
        return item

    def clear(self) -> None:
        """Forget every packet waiting (a dropped connection's): nobody will read them."""
        while self._items:
            self.get_nowait()
            self.task_done()


class UnreadablePayload(exceptions.EngineIOError):
    """A long-polling POST engineio cannot decode: too many packets, not UTF-8, a broken packet."""


class Socket(WebSocketReader, WritesNow, TimedWaits, async_socket.AsyncSocket):
    """engineio's socket with a bounded send queue, a POST that refuses what it cannot read, a
    websocket read loop without a Task per frame (``config.realtime.reading``) and a packet
    written at once where nothing is ahead of it (``config.realtime.outbound``)."""

    async def send(self, pkt: Any) -> None:
        if self.dropped or self.write_now(pkt):
            return
        queue, server = self.queue, self.server
        if queue.qsize() >= server.send_queue_packets:
            server.drop_soon(self, "send_queue_packets")
        elif queue.chars >= server.send_queue_chars:
            server.drop_soon(self, "send_queue_bytes")
        else:
            await super().send(pkt)

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        length = int(environ.get("CONTENT_LENGTH", "0"))
        if length > self.server.max_http_buffer_size:
            raise exceptions.ContentTooLongError()
        body = await environ["wsgi.input"].read(length)
        try:
            packets = payload.Payload(encoded_payload=body.decode("utf-8")).packets
        except (ValueError, KeyError, IndexError) as exc:  # UnicodeDecodeError and binascii.Error are ValueErrors
            logger.warning(
                "engine.io POST refused (400), session closed: %s (%s, %d bytes)",
                exc,
                client_address(environ),
                len(body),
            )
            # engineio answers 400 and, the socket being closed already, removes it. Dropped here,
            # not by drop_soon: the request under way must see the socket closed.
            metrics.CONNECTION_BOUNDS.labels("unreadable_post").inc()
            await self.server.drop(self, self.server.reason.TRANSPORT_ERROR, forget=False)
            raise UnreadablePayload() from None
        for pkt in packets:
            await self.receive(pkt)


class EngineServer(SweptTimeouts, engineio.AsyncServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger.addFilter(clients_doing_logged_once)  # a client's doing: one WARNING, then counted
        # engineio picks its ASGI request and websocket classes from this table.
        self._async = {**self._async, "translate_request": translate_request, "websocket": WebSocket}
        conf = settings.SOCKETIO
        self.send_queue_packets: int = conf["SEND_QUEUE_PACKETS"]
        self.send_queue_chars: int = conf["SEND_QUEUE_BYTES"]
        self.sessions_per_address: int = conf["SESSIONS_PER_ADDRESS"]
        self._dropping: set[Any] = set()  # tasks of drops under way (held until done)
        self._address_of: dict[str, str] = {}  # sid -> the client address it counts against
        self._sessions_at: dict[str, int] = {}  # client address -> sessions open from it

    def create_queue(self, *args: Any, **kwargs: Any) -> SendQueue:
        return SendQueue()

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """engineio's connect and disconnect, bracketed by the count of sessions per address.

        A connect past ``SESSIONS_PER_ADDRESS`` is refused before the application hears of
        it (engineio answers 401, as for any refused connection).
        """
        if event == "connect":
            sid, environ = args[0], args[1]
            address = client_address(environ)
            if self._sessions_at.get(address, 0) >= self.sessions_per_address:
                metrics.CONNECTION_BOUNDS.labels("sessions_per_address").inc()
                return "Too many sessions from this address"
            # engineio built an ``AsyncSocket`` a moment ago (it names the class itself): from
            # here on it is ours, before the application sees it or it sends anything but OPEN.
            socket = self.sockets.get(sid)
            if socket is not None and type(socket) is async_socket.AsyncSocket:
                socket.__class__ = Socket
            self._count(sid, address)
            accepted = await super()._trigger_event(event, *args, **kwargs)
            if accepted is not None and accepted is not True:  # refused: no disconnect will follow
                self._uncount(sid)
            return accepted
        if event == "disconnect":
            self._uncount(args[0])
        return await super()._trigger_event(event, *args, **kwargs)

    def _log_error_once(self, message: str, message_key: str) -> None:
        """engineio's refusals of a request (an unknown or closed session, a bad transport or
        origin) are the client's doing, not the server's: a WARNING the first time, not an ERROR;
        then counted by engineio's key (a few, fixed), not logged (``library_logs``: an INFO line
        would not show)."""
        if message_key not in self.log_message_keys:
            self.logger.warning("%s%s", message, FURTHER)
            self.log_message_keys.add(message_key)
        else:
            metrics.child(metrics.CLIENT_CAUSED_WARNINGS, message_key).inc()

    def _count(self, sid: str, address: str) -> None:
        self._address_of[sid] = address
        self._sessions_at[address] = self._sessions_at.get(address, 0) + 1

    def _uncount(self, sid: str) -> None:
        address = self._address_of.pop(sid, None)
        if address is None:
            return
        left = self._sessions_at[address] - 1
        if left:
            self._sessions_at[address] = left
        else:
            del self._sessions_at[address]

    async def drop(self, socket: Any, reason: Any, forget: bool = True) -> None:
        """Close ``socket`` now, without waiting for its queue to be read (nobody may read it).

        What was queued is forgotten; a long-poll or websocket writer waiting on the queue is
        woken and ends; the application's disconnect handlers run with ``reason``. The socket
        leaves ``sockets`` at once unless ``forget`` is false (a request of its own is under
        way, and engineio removes it at the request's end).
        """
        socket.dropped = True
        socket.queue.clear()
        await socket.close(wait=False, abort=True, reason=reason)
        socket.queue.clear()  # what the disconnect handlers queued meanwhile
        socket.queue.put_nowait(None)  # ends a waiting poll (an empty answer) or the websocket writer
        if forget and self.sockets.get(socket.sid) is socket:
            # A closed socket left in ``sockets`` makes engineio's POST handler raise KeyError.
            del self.sockets[socket.sid]

    def drop_soon(self, socket: Any, bound: str, reason: Any = None) -> None:
        """Drop ``socket`` for passing ``bound``, counted, in a task of its own (callers are in
        the middle of a send or a timer); ``reason`` defaults to a transport error."""
        if socket.dropped or socket.closing or socket.closed:
            return
        socket.dropped = True  # nothing more is queued from now on
        metrics.CONNECTION_BOUNDS.labels(bound).inc()
        if bound.startswith("send_queue"):
            logger.warning("connection %s closed: its send queue passed the %s bound", socket.sid, bound)
        task = self.start_background_task(self.drop, socket, reason or self.reason.TRANSPORT_ERROR)
        self._dropping.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._dropping.discard)
