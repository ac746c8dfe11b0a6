"""The process's python-socketio ``AsyncServer``."""

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import socketio
from django.conf import settings
from engineio import packet as eio_packet
from socketio import packet

from config.errors import ERROR_CODES
from config.realtime import catalogue, engine, recovery, recovery_store
from config.realtime.auth import token_from, user_of
from config.realtime.codec import OrjsonCodec, PacketCodec
from config.realtime.inbound import ACK_WANTED, screen
from config.realtime.manager import ChannelLayerManager
from config.realtime.offsets import carried, is_offset
from config.realtime.origins import cors_origins

if TYPE_CHECKING:  # the namespace emits through this module's server
    from config.realtime.namespace import BaseNamespace

logger = logging.getLogger(__name__)
# Disconnects after which a session is kept for recovery (as Node keeps them): not the
# client's own, not a kick by the server (unless the whole process is stopping).
INVOLUNTARY = {
    socketio.AsyncServer.reason.TRANSPORT_CLOSE,
    socketio.AsyncServer.reason.TRANSPORT_ERROR,
    socketio.AsyncServer.reason.PING_TIMEOUT,
}
# A recovered socket drops live events its replay already carried for this long: one logged
# before the log was read may be published (and arrive) a few milliseconds after the replay.
REPLAY_OVERLAP_SECONDS = 5.0
# An Engine.IO session whose namespace connects were refused this many times is closed: a
# client that asks again after a refusal does so a few times, not as fast as it can send.
CONNECT_REFUSALS_PER_SESSION = 10
_REFUSED = "homeservices.connects_refused"
# The Socket.IO packet kinds a client sends: CONNECT, DISCONNECT, EVENT, ACK (never binary).
_DISPATCHED = frozenset("0123")  # the count, kept in the session's environ


@dataclass
class Joining:
    """A CONNECT in progress under recovery: what it may restore, and packets held meanwhile."""

    pid: str
    since: str | None = None  # the log's end before the socket joined any room
    saved: recovery_store.SavedSession | None = None
    offset: str | None = None  # replay after this


class Server(socketio.AsyncServer):
    """``AsyncServer`` that screens client events before dispatch (see ``inbound``).

    ``_handle_event`` is python-socketio's single entry for client EVENT packets
    (plain and binary); overriding it is the narrowest place to refuse reserved
    names and malformed packets so that they still get an answer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(json=OrjsonCodec, **kwargs)
        self.recovery = recovery.build()
        self._joining: dict[tuple[str, str], Joining] = {}
        self._held: dict[str, list[Any]] = {}  # eio_sid -> packets held while a CONNECT completes
        # eio_sid -> (namespace, offset replayed to, until when): see REPLAY_OVERLAP_SECONDS
        self._replayed: dict[str, tuple[str, str, float]] = {}
        # eio_sid -> the timer that closes the session unless it has joined a namespace by then
        self._bare: dict[str, asyncio.TimerHandle] = {}
        # Socket.IO packets decode leniently (refusals get answers); Engine.IO keeps the strict codec.
        self.packet_class.json = PacketCodec
        self._kept: set[tuple[str, str]] = set()  # (sid, namespace) saved for recovery by a stopping process

    def _engineio_server_class(self) -> type[engine.EngineServer]:
        return engine.EngineServer

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        await super()._handle_event(eio_sid, namespace, id, screen(data))

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        # Runs in the event's own task: the namespace reads whether an ack was asked for (one answer).
        ACK_WANTED.set(id is not None)
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """python-socketio's dispatch of one Socket.IO packet, for the four kinds a client of
        this product sends. Binary packets are refused: python-socketio keeps a pending binary
        packet's attachments without a bound (a client could make the process hold any amount),
        and no event of the catalogue carries binary. A packet of another kind or that does
        not decode (a traceback in python-socketio) closes the session with one warning."""
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
        await super()._handle_eio_disconnect(eio_sid, reason)
        timer = self._bare.pop(eio_sid, None)
        if timer is not None:
            timer.cancel()

    def _expect_namespace(self, eio_sid: str) -> None:
        """Close the session ``NO_NAMESPACE_TIMEOUT`` from now unless it is in a namespace by then."""
        if eio_sid not in self._bare:
            loop = asyncio.get_running_loop()
            self._bare[eio_sid] = loop.call_later(_conf["NO_NAMESPACE_TIMEOUT"], self._close_if_bare, eio_sid)

    def _in_a_namespace(self, eio_sid: str) -> bool:
        return any(self.manager.sid_from_eio_sid(eio_sid, n) is not None for n in list(self.manager.get_namespaces()))

    def _close_if_bare(self, eio_sid: str) -> None:
        self._bare.pop(eio_sid, None)
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed or self._in_a_namespace(eio_sid):
            return
        self.eio.drop_soon(socket, "no_namespace", self.reason.SERVER_DISCONNECT)

    # ------------------------------------------------------------ connection state recovery
    # The protocol of socket.io 4.6+ (``recovery`` holds the log and the sessions): the
    # CONNECT answer carries a private ``pid``; a client that comes back with ``auth.pid``
    # of a session dropped within the window (and the same user) gets the old sid, its
    # rooms and every logged event it missed, in order, before the CONNECT answer. Live
    # packets to the connection are held until then and sent after it, minus any the
    # replay already carried.

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        await self._connect_namespace(eio_sid, namespace, data)
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is None:  # refused, whatever the reason
            self._count_refusal(eio_sid)

    async def _connect_namespace(self, eio_sid: str, namespace: str, data: Any) -> None:
        handler = self.namespace_handlers.get(namespace)
        # The cheap checks first (namespace registered, the server not stopping, the address's
        # limit): a refused connect costs no Redis call, no token check and no query.
        admit = getattr(handler, "admit_connect", None)
        if admit is not None:
            try:
                admit(self.environ.get(eio_sid, {}))
            except socketio.exceptions.ConnectionRefusedError as exc:
                packet_ = self.packet_class(packet.CONNECT_ERROR, data=exc.error_args, namespace=namespace)
                await self._send_packet(eio_sid, packet_)
                return
        if handler is None or self.recovery is None or token_from(data, self.environ.get(eio_sid, {})) is None:
            # Unregistered (python-socketio's "Unable to connect"), or no token (AUTH_REQUIRED):
            # nothing to recover, no Redis call.
            await super()._handle_connect(eio_sid, namespace, data)
            return
        joining = self._joining[(eio_sid, namespace)] = Joining(pid=secrets.token_urlsafe(16))
        self._held.setdefault(eio_sid, [])
        try:
            await self._find_session(eio_sid, namespace, joining, data)
            await super()._handle_connect(eio_sid, namespace, data)
        finally:
            self._joining.pop((eio_sid, namespace), None)
            self.manager.reused_sids.pop(eio_sid, None)
            await self._release(eio_sid, namespace, None)

    def _count_refusal(self, eio_sid: str) -> None:
        """Past ``CONNECT_REFUSALS_PER_SESSION`` refused connects, the session is closed (answered no more)."""
        environ = self.environ.get(eio_sid)
        socket = self.eio.sockets.get(eio_sid)
        if environ is None or socket is None:
            return
        environ[_REFUSED] = refused = environ.get(_REFUSED, 0) + 1
        if refused >= CONNECT_REFUSALS_PER_SESSION:
            self.eio.drop_soon(socket, "connects_refused", self.reason.SERVER_DISCONNECT)

    async def _find_session(self, eio_sid: str, namespace: str, joining: Joining, auth: Any) -> None:
        """Look (without taking) for the session a connect asks to recover.

        Keyed by the user the token names and the pid: another user's token finds nothing.
        The session is only taken once the connect handler has accepted (``_answer_connect``),
        so a refused attempt leaves it for a later one.
        """
        joining.since = await self.recovery.tail(namespace)
        if not isinstance(auth, dict) or "pid" not in auth:
            return
        uid = user_of(auth, self.environ.get(eio_sid, {}))
        saved = await self.recovery.peek(uid, auth["pid"]) if uid is not None else None
        if (
            saved is None
            or saved.namespace != namespace
            or self.manager.is_connected(saved.sid, namespace)
            or saved.sid in self.manager.reused_sids.values()  # another connect is recovering it now
        ):
            return  # unknown, expired, or its sid is live again: a fresh session
        offset = auth.get("offset")
        joining.saved = saved
        # Never from before the session's own offset: an old offset would make us read (and
        # send) what this session already had, as often as the client cares to reconnect.
        joining.offset = recovery_store.later(offset, saved.offset) if is_offset(offset) else saved.offset
        joining.pid = auth["pid"]
        self.manager.reused_sids[eio_sid] = saved.sid

    async def _answer_connect(self, eio_sid: str, pkt: Any, joining: Joining) -> None:
        """The connect handler accepted: restore and replay if recovering, then answer ``{sid, pid}``."""
        namespace, sid = pkt.namespace or "/", pkt.data["sid"]
        session = await self.get_session(sid, namespace=namespace)
        saved, last = joining.saved, None
        if saved is not None and saved.sid == sid and session.get("uid") == saved.uid:
            last = await self._restore(eio_sid, namespace, sid, joining)
        if last is None:  # a fresh session
            joining.pid = secrets.token_urlsafe(16)
        session["pid"], session["since"] = joining.pid, last or joining.since or "0-0"
        await super()._send_packet(
            eio_sid, self.packet_class(packet.CONNECT, {"sid": sid, "pid": joining.pid}, namespace)
        )
        await self._release(eio_sid, namespace, last)

    async def _restore(self, eio_sid: str, namespace: str, sid: str, joining: Joining) -> str | None:
        """Take the session, rejoin the rooms the user may join now, replay what reaches them.

        Returns the offset replayed to, or ``None`` when the session cannot be recovered.
        """
        saved = await self.recovery.take(joining.saved.uid, joining.pid)
        if saved is None:  # taken meanwhile by another connect of the same user and pid
            return None
        handler = self.namespace_handlers.get(namespace)
        restorable = getattr(handler, "restorable_rooms", None)
        try:
            rejoin, visible = await restorable(sid, saved.rooms) if restorable is not None else ([], [])
        except Exception as exc:  # the database is away: a fresh session rather than rights unchecked
            logger.warning("recovery: rooms could not be re-authorised (%s)", exc)
            return None
        joined = set(self.manager.get_rooms(sid, namespace))
        rejoined = [room for room in rejoin if room not in joined]
        for room in rejoined:
            self.manager.basic_enter_room(sid, namespace, room)
        # Listen to the rooms before reading the log: an event logged after the read is published
        # after it too, so it arrives live (held, then released) instead of falling in between.
        await self.manager.listening(namespace, [*rejoined, sid])
        missed = await self.recovery.missed(namespace, joining.offset)
        if missed is None:  # the log lost events after the offset, or the gap is past the cap
            for room in rejoined:
                self.manager.basic_leave_room(sid, namespace, room)
            return None
        reachable = set(self.manager.get_rooms(sid, namespace)) | set(visible)
        last = joining.offset
        for offset, entry in missed:
            if entry.reaches(sid, reachable):
                replay = self.packet_class(packet.EVENT, namespace=namespace, data=[entry.event, *entry.data, offset])
                await super()._send_packet(eio_sid, replay)
            last = offset
        return last

    async def _release(self, eio_sid: str, namespace: str, replayed_to: str | None) -> None:
        """Send what was held, in order, minus events of ``namespace`` the replay already carried."""
        held = self._held.pop(eio_sid, None)
        if replayed_to is not None:
            self._replayed[eio_sid] = (namespace, replayed_to, time.monotonic() + REPLAY_OVERLAP_SECONDS)
        for item in held or ():
            if replayed_to is not None and carried(item, namespace, replayed_to):
                continue
            if isinstance(item, eio_packet.Packet):
                await super()._send_eio_packet(eio_sid, item)
            else:
                await super()._send_packet(eio_sid, item)

    def _replayed_already(self, eio_sid: str, item: Any) -> bool:
        """A live event the socket's recent replay carried (logged before the read, published after)."""
        namespace, replayed_to, until = self._replayed[eio_sid]
        if time.monotonic() > until:
            del self._replayed[eio_sid]
            return False
        return carried(item, namespace, replayed_to)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        joining = self._joining.get((eio_sid, pkt.namespace or "/"))
        if joining is not None and pkt.packet_type == packet.CONNECT:
            await self._answer_connect(eio_sid, pkt, joining)
        elif eio_sid in self._held:
            self._held[eio_sid].append(pkt)
        elif eio_sid not in self._replayed or not self._replayed_already(eio_sid, pkt):
            await super()._send_packet(eio_sid, pkt)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid in self._held:
            self._held[eio_sid].append(eio_pkt)
        elif eio_sid not in self._replayed or not self._replayed_already(eio_sid, eio_pkt):
            await super()._send_eio_packet(eio_sid, eio_pkt)

    async def _handle_disconnect(self, eio_sid: str, namespace: str | None, reason: Any = None) -> None:
        namespace = namespace or "/"
        self._replayed.pop(eio_sid, None)
        if self.recovery is not None and (reason in INVOLUNTARY or self.manager.stopping):
            await self._keep_session(eio_sid, namespace)
        await super()._handle_disconnect(eio_sid, namespace, reason)
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not (socket.closing or socket.closed) and not self._in_a_namespace(eio_sid):
            self._expect_namespace(eio_sid)  # left its last namespace: the session is bare again

    async def _keep_session(self, eio_sid: str, namespace: str) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or (sid, namespace) in self._kept or not self.manager.is_connected(sid, namespace):
            return
        kept = await self._kept_session(sid, namespace)
        if kept is not None:
            await self.recovery.save(*kept)

    async def _kept_session(self, sid: str, namespace: str) -> tuple[int, str, recovery_store.SavedSession] | None:
        """What recovery keeps of a connected socket: (user, pid, session); ``None`` if nothing."""
        try:
            session = await self.get_session(sid, namespace=namespace)
        except KeyError:  # its Engine.IO session is gone already
            return None
        if "pid" not in session or "uid" not in session:
            return None
        rooms = [room for room in self.manager.get_rooms(sid, namespace) if room not in (None, sid)]
        return (
            session["uid"],
            session["pid"],
            recovery_store.SavedSession(sid, namespace, session["uid"], rooms, session["since"]),
        )

    async def keep_all_sessions(self) -> int:
        """A stopping process saves every socket's session for recovery, all at once (the store
        batches them into pipelines), before any socket closes; returns how many were kept.
        Their disconnects then save nothing again."""
        found = []
        for namespace in list(self.manager.rooms):
            for sid, _ in list(self.manager.get_participants(namespace, None)):
                kept = await self._kept_session(sid, namespace)
                if kept is not None:
                    found.append(((sid, namespace), kept))
        results = await asyncio.gather(*(self.recovery.save(*kept) for _, kept in found))
        self._kept.update(key for (key, _), saved in zip(found, results, strict=True) if saved)
        level = logging.INFO if len(self._kept) == len(found) else logging.WARNING
        logger.log(level, "stopping: %d of %d sessions kept for recovery", len(self._kept), len(found))
        return len(self._kept)

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
    logger=False,
    engineio_logger=False,
)


_documented: list[str] = []


def documented_namespaces() -> list[str]:
    """The namespaces registered through ``register_namespace``, in order: the ones the event
    catalogue, the AsyncAPI document and the TypeScript package describe (a test's own
    namespace, attached to ``sio`` directly, is not one of them)."""
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
