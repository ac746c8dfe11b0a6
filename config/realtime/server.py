"""The process's python-socketio ``AsyncServer``."""

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import socketio
from django.conf import settings
from django.utils.module_loading import import_string
from engineio import packet as eio_packet
from socketio import packet

from config.errors import ERROR_CODES
from config.realtime import catalogue, engine, recovery
from config.realtime.auth import token_from
from config.realtime.codec import OrjsonCodec, PacketCodec
from config.realtime.deadlines import Deadlines
from config.realtime.inbound import event_parts
from config.realtime.inline import InlineEvents
from config.realtime.keeping import INVOLUNTARY, Keeper
from config.realtime.manager import ChannelLayerManager
from config.realtime.origins import cors_origins
from config.realtime.recovering import Recoveries
from config.realtime.strays import StrayPackets

if TYPE_CHECKING:  # the namespace emits through this module's server
    from config.realtime.namespace import BaseNamespace

logger = logging.getLogger(__name__)
# An Engine.IO session refused this many times for one reason (its namespace connects; its packets for a
# namespace it is not in, since it last joined one: ``strays``) is closed: a client that asks again after a
# refusal does so a few times, not as fast as it can send.
REFUSALS_PER_SESSION = 10
# How long a session's close waits for a connect of it under way (its reads are bounded by
# CONNECT_TIMEOUT and the recovery breaker; this is the backstop).
CONNECT_WAIT_SECONDS = 10.0
# The Socket.IO packet kinds a client sends: CONNECT, DISCONNECT, EVENT, ACK (never binary).
_DISPATCHED = frozenset("0123")  # the count, kept in the session's environ


class Server(InlineEvents, StrayPackets, socketio.AsyncServer):
    """``AsyncServer`` that screens client packets before dispatch (``inbound``), runs lightweight
    events inline (``inline``), drops packets for a namespace the session is not in (``strays``),
    bounds what a session may hold, and holds a recovering connection's packets (``recovering``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(json=OrjsonCodec, **kwargs)
        self.recovery = recovery.build()  # the log and the saved sessions
        self.recovering = Recoveries(self)  # the connections recovering now (config.realtime.recovering)
        self.keeper = Keeper(self)  # what a dropped socket leaves for its recovery
        # eio_sid -> when the session is closed unless it has joined a namespace by then
        self._bare = Deadlines(lambda: _conf["NO_NAMESPACE_TIMEOUT"], self._close_if_bare)
        # eio_sid -> how many of its namespace connects are under way; and the Event set when the
        # last ends, made only for a close that waits for them (_handle_eio_disconnect)
        self._connecting: dict[str, int] = {}
        self._connects_ended: dict[str, asyncio.Event] = {}
        # Socket.IO packets decode leniently (refusals get answers); Engine.IO keeps the strict codec.
        self.packet_class.json = PacketCodec

    def _engineio_server_class(self) -> type[engine.EngineServer]:
        return engine.EngineServer

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """python-socketio's dispatch of one Socket.IO packet, for the four kinds a client of
        this product sends. Binary packets are refused: python-socketio keeps a pending binary
        packet's attachments without a bound (a client could make the process hold any amount),
        and no event of the catalogue carries binary. A packet of another kind or that does
        not decode (a traceback in python-socketio) closes the session with one warning."""
        if isinstance(data, str) and data[:1] == "2" and (parts := event_parts(data)) is not None:
            namespace, id, text = parts  # an EVENT in its common form: no Packet (``inbound.event_parts``)
            await self._handle_event(eio_sid, namespace, id, self.packet_class.json.loads(text))
            return
        pkt = None
        if isinstance(data, str) and data[:1] in _DISPATCHED:
            with contextlib.suppress(ValueError):
                pkt = self.packet_class(encoded_packet=data)
        if pkt is None:
            self._refuse_packet(eio_sid, data)
        elif pkt.packet_type == packet.EVENT:
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif pkt.packet_type == packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif pkt.packet_type == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        else:
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    def _refuse_packet(self, eio_sid: str, data: Any) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        kind = "binary" if not isinstance(data, str) or data[:1] in "56" else "unreadable"
        logger.warning(
            "connection %s closed: a %s Socket.IO packet (%d chars)", eio_sid, kind, len(data) if data else 0
        )
        self.eio.drop_soon(socket, f"{kind}_packet")

    # ------------------------------------------------------------ sessions that join no namespace
    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        self._expect_namespace(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        # A session closed while a connect of it runs (a long-polling client's CLOSE, or a stop,
        # in a request of its own) waits for the connect to end: python-socketio skips a socket
        # not connected yet, which the connect then connects, with rooms, presence and a replay
        # window nobody is behind. A websocket's packets are handled in order: never the case there.
        if eio_sid in self._connecting:
            ended = self._connects_ended.setdefault(eio_sid, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_WAIT_SECONDS):
                    await ended.wait()
            self._connects_ended.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)
        self._bare.cancel(eio_sid)

    def _expect_namespace(self, eio_sid: str) -> None:
        """Close the session ``NO_NAMESPACE_TIMEOUT`` from now unless it is in a namespace by then."""
        self._bare.set(eio_sid)

    def _in_a_namespace(self, eio_sid: str) -> bool:
        return any(self.manager.sid_from_eio_sid(eio_sid, n) is not None for n in list(self.manager.get_namespaces()))

    def _close_if_bare(self, eio_sid: str) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed or self._in_a_namespace(eio_sid):
            return
        self.eio.drop_soon(socket, "no_namespace", self.reason.SERVER_DISCONNECT)

    # ------------------------------------------------------------ connects, and recovery's hold on packets
    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        self._connecting[eio_sid] = self._connecting.get(eio_sid, 0) + 1
        try:
            await self._connect_namespace(eio_sid, namespace, data)
        finally:
            left = self._connecting[eio_sid] - 1
            if left:
                self._connecting[eio_sid] = left
            else:
                del self._connecting[eio_sid]
                ended = self._connects_ended.pop(eio_sid, None)
                if ended is not None:
                    ended.set()
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is None:  # refused, whatever the reason
            self._count_refusal_and_close_at_limit(eio_sid, "connects_refused")
        else:  # in a namespace: nothing to close (a deadline per connect was a check per socket 10 s on)
            self._bare.cancel(eio_sid)
            # What it had in flight when a socket of it went is settled: a connection whose sockets come
            # and go for hours is closed for ten strays of one absence, not of its lifetime (``strays``).
            self.environ.get(eio_sid, {}).pop("homeservices.strays", None)

    async def _connect_namespace(self, eio_sid: str, namespace: str, data: Any) -> None:
        handler = self.namespace_handlers.get(namespace)
        # The cheap checks first (registered, not stopping, the address's limit): a refused connect costs no Redis
        # call, token check or query. By attribute (``parts.AdmitsConnects``): isinstance walks a protocol's members.
        admit_connect = getattr(handler, "admit_connect", None)
        if admit_connect is not None:
            try:
                admit_connect(self.environ.get(eio_sid, {}))
            except socketio.exceptions.ConnectionRefusedError as exc:
                packet_ = self.packet_class(packet.CONNECT_ERROR, data=exc.error_args, namespace=namespace)
                await self._send_packet(eio_sid, packet_)
                return
        if handler is None or self.recovery is None or token_from(data, self.environ.get(eio_sid, {})) is None:
            # Unregistered (python-socketio's "Unable to connect"), or no token (AUTH_REQUIRED):
            # nothing to recover, no Redis call.
            await self.connect_plainly(eio_sid, namespace, data)
            return
        await self.recovering.connect(eio_sid, namespace, data)

    async def connect_plainly(self, eio_sid: str, namespace: str, data: Any) -> None:
        """python-socketio's connect: the namespace's connect handler, then the answer."""
        await super()._handle_connect(eio_sid, namespace, data)

    def _count_refusal_and_close_at_limit(self, eio_sid: str, bound: str) -> int:
        """Count a refusal of the session for ``bound``, and how many so far: at ``REFUSALS_PER_SESSION``
        the session is closed (answered no more) and counted under ``bound``."""
        environ = self.environ.get(eio_sid)
        socket = self.eio.sockets.get(eio_sid)
        if environ is None or socket is None:
            return 0
        key = f"homeservices.{bound}"  # kept in the session's environ, which goes with it
        environ[key] = refused = environ.get(key, 0) + 1
        if refused >= REFUSALS_PER_SESSION:
            self.eio.drop_soon(socket, bound, self.reason.SERVER_DISCONNECT)
        return refused

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        if not await self.recovering.intercept(eio_sid, pkt):
            await super()._send_packet(eio_sid, pkt)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if not await self.recovering.intercept(eio_sid, eio_pkt):
            await super()._send_eio_packet(eio_sid, eio_pkt)

    async def send_now(self, eio_sid: str, item: Any) -> None:
        """Send a packet (Socket.IO or Engine.IO) past recovery's hold: its answer, replay and release."""
        if isinstance(item, eio_packet.Packet):
            await super()._send_eio_packet(eio_sid, item)
        else:
            await super()._send_packet(eio_sid, item)

    async def _handle_disconnect(self, eio_sid: str, namespace: str | None, reason: Any = None) -> None:
        namespace = namespace or "/"
        self.recovering.disconnected(eio_sid, namespace)
        if self.recovery is not None and (reason in INVOLUNTARY or self.manager.stopping):
            await self.keeper.keep(eio_sid, namespace)
        await super()._handle_disconnect(eio_sid, namespace, reason)
        self._bare_again(eio_sid)

    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace, ignore_queue)
        if eio_sid is not None:  # the server's own disconnect (a revoked user, a flood): as the client's
            self._bare_again(eio_sid)

    def _bare_again(self, eio_sid: str) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not (socket.closing or socket.closed) and not self._in_a_namespace(eio_sid):
            self._expect_namespace(eio_sid)  # left its last namespace: the session is bare again

    def start(self) -> None:
        """Start the manager (its startup hooks, background tasks) now, not at the first connection.

        The ASGI lifespan calls this, so a process that no client reached yet still runs its
        periodic work (the dispatch sweep, presence, metrics gauges).
        """
        if not self.manager_initialized:
            self.manager_initialized = True
            self.manager.initialize()


_conf = settings.SOCKETIO

sio = Server(
    async_mode="asgi",
    client_manager=ChannelLayerManager(),
    cors_allowed_origins=cors_origins(_conf),
    ping_interval=_conf["PING_INTERVAL"],
    ping_timeout=_conf["PING_TIMEOUT"],
    max_http_buffer_size=_conf["MAX_HTTP_BUFFER_SIZE"],
    cookie={"name": _conf["SESSION_COOKIE"], "path": "/", "SameSite": "Lax", "HttpOnly": True}
    if _conf["SESSION_COOKIE"]
    else None,
    # The libraries' loggers as LOGGING configures them: given a logger, neither library sets its
    # level (to ERROR, for ``False``) nor adds a handler of its own (``config.realtime.library_logs``).
    logger=logging.getLogger("socketio.server"),
    engineio_logger=logging.getLogger("engineio.server"),
)


_documented: list[str] = []


def documented_namespaces() -> list[str]:
    """The namespaces registered through ``register_namespace``, in order: the ones the event
    catalogue, the AsyncAPI document and the TypeScript package describe (a test's own
    namespace, attached to ``sio`` directly, is not one of them).

    The composition root registers them; it is imported here, named by the settings (as
    daphne finds it), so that a process that never served sockets (WSGI, a shell, the
    generator) describes the same namespaces, and infrastructure still imports no app.
    """
    import_string(settings.ASGI_APPLICATION)
    return list(_documented)


def register_namespace(namespace: "BaseNamespace") -> None:
    """Attach a namespace once (the composition root calls this for each namespace it builds).

    Puts its parts' client events in the catalogue, and the ``error`` event every
    ``BaseNamespace`` sends.
    """
    if namespace.namespace in sio.namespace_handlers:
        return
    sio.register_namespace(namespace)
    _documented.append(namespace.namespace)
    names = (namespace.namespace,)
    catalogue.server_event(
        "error",
        namespaces=names,
        summary="A client event failed, or the socket is about to be disconnected (event: null)",
        volatile=True,
        payload=catalogue.obj(
            {
                "code": catalogue.enum(ERROR_CODES),
                "message": catalogue.STRING,
                "event": catalogue.nullable(catalogue.STRING),
            },
            {"retryAfter": catalogue.INTEGER, "details": {}},
        ),
    )
    for event in namespace.client_events.values():
        catalogue.client_event(
            event.name, namespaces=names, payload=event.payload, summary=event.summary, ack=event.ack
        )
