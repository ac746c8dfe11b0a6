"""engineio's websocket transport, reading each frame without a Task and a ``wait_for`` of its own.

python-engineio 4 waits for every incoming frame as
``asyncio.wait_for(asyncio.ensure_future(ws.wait()), ping_interval + ping_timeout)``: a Task, a
timer, a waiter future and one more pass of the event loop before each frame is handled, to
bound how long a socket may stay silent. Here the loop awaits the frame itself; the bound is one
timer per connection (``IdleBound``) that, when it fires, looks at when the current wait began
and either ends the wait or re-arms itself: at most one timer per ``ping_interval +
ping_timeout`` per socket, whatever the rate of frames.

Everything else is engineio's, in its order: the upgrade handshake (probe, UPGRADE), a frame
over ``max_http_buffer_size`` or a failed read ends the connection, a silent wait longer than
the bound ends it, the writer task, then the close with ``TRANSPORT_CLOSE``. Frames are still
handled one at a time, in order (engineio's own semantics, ``async_handlers=False`` under
python-socketio); how long one takes is the Socket.IO server's choice (``config.realtime.server``).
While this loop waits with nothing queued, the protocol gives an event packet's handler its first
step itself (``config.realtime.eager``); one that suspends comes here as a ``Suspended``, to finish
before the next frame.

Mixed into engineio's ``AsyncSocket`` by ``config.realtime.engine.Socket``; written so that it
could replace the loop in ``engineio.async_socket.AsyncSocket._websocket_handler`` upstream.
"""

import asyncio
import contextlib
import logging
from typing import Any

from engineio import exceptions, packet

from config.realtime.eager import EagerFrames, Suspended
from config.realtime.frames import frame_of

# A timer may run a little before its time (uvloop counts in milliseconds).
_EARLY = 0.005

logger = logging.getLogger(__name__)
_failures_logged = False


def _framing_failed(sid: str) -> None:
    """A writer that failed on a live connection: a fault of ours (framing, encoding), not the
    client's. An ERROR with its traceback once a process (a fault of every packet must not write a
    line each); DEBUG after. The connection is closed either way, as engineio closes it."""
    global _failures_logged
    if _failures_logged:
        logger.debug("%s: writing to the websocket failed again", sid, exc_info=True)
        return
    _failures_logged = True
    logger.exception("%s: writing to the websocket failed, connection closed (further failures at DEBUG)", sid)


class IdleBound:
    """Ends the reading task's wait for a frame once that wait has lasted ``limit`` seconds.

    The reader marks each wait (``since = loop.time()``) and its end (``since = None``); only
    the timer, when it fires, compares. ``close`` cancels the timer (and with it the cycle
    between this object and the timer's handle).
    """

    __slots__ = ("expired", "limit", "loop", "since", "task", "timer")

    def __init__(self, limit: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.limit = limit
        self.since: float | None = self.loop.time()
        self.expired = False
        self.timer: asyncio.TimerHandle | None = self.loop.call_at(self.since + limit, self._check)

    def _check(self) -> None:
        since, now = self.since, self.loop.time()
        if since is not None and now + _EARLY >= since + self.limit:
            self.expired = True
            self.timer = None
            self.task.cancel()  # type: ignore[union-attr]
        else:
            self.timer = self.loop.call_at((now if since is None else since) + self.limit, self._check)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class WebSocketReader:
    """``AsyncSocket._websocket_handler``, its read loop without a Task per frame."""

    async def _websocket_handler(self, ws: Any) -> None:
        """Engine.IO handler for websocket transport."""
        if self.connected:
            # the socket was already connected, so this is an upgrade
            if not await self._upgrade(ws):
                return
        else:
            self.connected = True
            self.upgraded = True
        writer_task = asyncio.ensure_future(self._writer(ws))
        self.server.logger.info("%s: Upgrade to websocket successful", self.sid)
        await self._read(ws)
        await self.queue.put(None)  # unlock the writer task so it can exit
        await writer_task
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _frame(self, ws: Any) -> Any:
        data = await ws.wait()
        if type(data) is not Suspended and data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    async def _upgrade(self, ws: Any) -> bool:
        """engineio's upgrade handshake, as it is: whether the socket is upgraded."""
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            pkt = await self._frame(ws)
        except OSError:
            return False
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.PING or decoded_pkt.data != "probe":
            self.server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return False
        await ws.send(packet.Packet(packet.PONG, data="probe").encode())
        await self.queue.put(packet.Packet(packet.NOOP))  # end poll
        try:
            pkt = await self._frame(ws)
        except OSError:
            self.upgrading = False
            return False
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.UPGRADE:
            self.upgraded = False
            self.server.logger.info(
                "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.", self.sid, pkt
            )
            self.upgrading = False
            return False
        self.upgraded = True
        self.upgrading = False
        return True

    async def _writer(self, ws: Any) -> None:
        """engineio's websocket writer, each packet framed and written straight to the connection
        where it can take it (``write_frame``: a ping, an ack queued behind another packet), not
        through the ASGI ``send`` and websockets' framing; else that ``send``, which waits, in order."""
        while True:
            try:
                packets = await self.poll()
            except exceptions.QueueEmpty:
                break
            if not packets:
                break  # empty packet list returned -> connection closed
            try:
                for pkt in packets:
                    encoded = pkt.encode()
                    write = self.write_frame  # the websocket's, while the product's protocol serves it
                    if write is None or not write(frame_of(encoded)):  # None: another server (daphne)
                        await self._unless_stuck(ws, ws.send(encoded))
            except (OSError, asyncio.CancelledError):  # the connection went (ClientDisconnected), or the socket
                break
            except Exception:  # engineio's bare ``except`` ended the writer here, silent whatever the failure
                if not self._connection_gone(ws):
                    _framing_failed(self.sid)
                break
        with contextlib.suppress(TimeoutError):
            await self._unless_stuck(ws, ws.close())

    def _connection_gone(self, ws: Any) -> bool:
        """Whether the socket or its connection closed already: a send that fails then (uvicorn's
        RuntimeError for a send after the close) is the close's doing, not a fault."""
        protocol = getattr(ws, "protocol", None)
        return bool(
            self.closed
            or self.closing
            or (protocol is not None and (protocol.close_sent or protocol.transport.is_closing()))
        )

    async def _unless_stuck(self, ws: Any, send: Any) -> None:
        """uvicorn's ``send``, which waits while the connection is not writable: a client that stopped
        reading held the connection for good (its buffers, this writer, the handler), its socket closed
        long before by the send-queue bound or the ping timeout. Past ``ping_interval + ping_timeout``
        (the client could not have answered a ping meanwhile) the connection is aborted: ``TimeoutError``."""
        protocol = getattr(ws, "protocol", None)  # ``engine.WebSocket``'s, when the product's protocol serves it
        if protocol is None:
            await send
            return
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                await send
        except TimeoutError:
            protocol.transport.abort()
            raise

    async def _finish(self, suspended: Suspended) -> None:
        """A handler ``EagerFrames`` started, to its end (what ``_message`` does with its outcome)."""
        try:
            await suspended
        except asyncio.CancelledError:
            pass
        except Exception:
            self.server.logger.exception("message async handler error")

    async def _message(self, data: str) -> None:
        """A ``MESSAGE`` carrying a Socket.IO packet, to the server's handler: what ``receive``
        does with it (engineio decodes such a packet to this same text: a payload starting with
        a digit is never JSON to it), without its ``Packet``, its log call and the two layers of
        ``_trigger_event`` (a closure and an ``iscoroutinefunction`` check a frame)."""
        handler = self.server.handlers.get("message")
        if handler is None:
            return
        try:
            await handler(self.sid, data)
        except asyncio.CancelledError:  # engineio's run_async_handler swallows it too
            pass
        except Exception:
            self.server.logger.exception("message async handler error")

    async def _read(self, ws: Any) -> None:
        """Receive frames until the client goes, a read fails or the socket stays silent too long."""
        idle = IdleBound(self.server.ping_interval + self.server.ping_timeout)
        loop = idle.loop
        # The protocol hands event packets to the handler itself while this loop waits (``eager``).
        protocol = getattr(ws, "protocol", None)  # ``engine.WebSocket``'s, when the product's protocol serves it
        server = self.server
        eager = getattr(protocol, "texts_wanted", False) and "message" in server.handlers and not server.async_handlers
        take = EagerFrames(self.sid, server, idle) if eager else None
        if eager:
            protocol.take_text = take
        try:
            while True:
                idle.since = loop.time()
                try:
                    p = await self._frame(ws)
                except asyncio.CancelledError as exc:
                    if idle.expired:
                        idle.task.uncancel()  # type: ignore[union-attr]
                        break
                    # Cancelled after a handler's eager step handed it over, before this task took
                    # it: the cancellation is the handler's (its own timeout, a stop), as it would
                    # have been in a Task's step; else engineio ends the connection.
                    p = take.handed if take is not None else None
                    if p is None:
                        break
                    p.thrown = exc
                except Exception:
                    break
                idle.since = None
                if p is None:
                    break  # connection closed by client
                if type(p) is Suspended:
                    if take.claim(p):  # type: ignore[union-attr]  # a Suspended comes only from ``take``
                        await self._finish(p)
                    continue
                if type(p) is str and p[:1] == "4" and p[1:2].isdigit() and not self.server.async_handlers:
                    await self._message(p[1:])
                    continue
                pkt = packet.Packet(encoded_packet=p)
                try:
                    await self.receive(pkt)
                except exceptions.UnknownPacketError:
                    pass
                except exceptions.SocketIsClosedError:
                    self.server.logger.info("Receive error -- socket is closed")
                    break
                except Exception:  # logged, and the socket reads on (engineio's choice)
                    self.server.logger.exception("Unknown receive error")
        finally:
            idle.close()
            if eager:
                protocol.take_text = None  # no reference left to this loop
