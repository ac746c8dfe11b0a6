"""Connection state recovery on the server's side: one object per recovering connection.

The protocol of socket.io 4.6+ (``config.realtime.recovery`` holds the log and the
sessions): the CONNECT answer carries a private ``pid``; a client that comes back with
``auth.pid`` of a session dropped within the window (and the same user) gets the old sid,
its rooms and every logged event it missed, in order, before the CONNECT answer. Live
packets to the connection are held until then and sent after it, minus any the replay
already carried.

A ``RecoveringConnection`` owns one connect's state from the peek of the saved session to
the end of its replay window; its steps, in order, are its methods top to bottom:
``peek`` (before the namespace's connect handler), then, once the handler accepted,
``answer``: ``_take_and_authorise``, ``_rejoin``, ``_listen``, ``_replay``; then
``_release`` (the held packets, minus what the replay carried), ``drops`` (live copies the
replay carried, for ``REPLAY_OVERLAP_SECONDS``) and ``_end``. ``Recoveries`` is the
server's register of them. What a dropped socket leaves for them: ``config.realtime.keeping``.
"""

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from engineio import packet as eio_packet
from socketio import packet

from config.realtime.auth import user_of
from config.realtime.offsets import carried, is_event, is_offset, namespace_of
from config.realtime.parts import RestoresRooms
from config.realtime.recovery_store import SavedSession, later

if TYPE_CHECKING:
    from config.realtime.server import Server

logger = logging.getLogger(__name__)
# A recovered socket drops live events its replay already carried for this long: one logged
# before the log was read may be published (and arrive) a few milliseconds after the replay.
REPLAY_OVERLAP_SECONDS = 5.0


class RecoveringConnection:
    """One CONNECT under recovery, from the peek of its saved session to the end of its replay window."""

    def __init__(self, recoveries: "Recoveries", eio_sid: str, namespace: str) -> None:
        self.recoveries, self.server = recoveries, recoveries.server
        self.eio_sid, self.namespace = eio_sid, namespace
        self.pid = ""  # the session's private id: the client's own once recovering, else drawn at the answer
        self.since: str | None = None  # the log's end before the socket joined any room
        self.saved: SavedSession | None = None  # the session it may restore (peeked, not taken)
        self.offset: str | None = None  # replay after this
        self.held: list[Any] | None = []  # packets to the Engine.IO session held until the answer
        self.replayed_to: str | None = None
        self.until = 0.0  # monotonic: the end of the replay window

    @property
    def reused_sid(self) -> str | None:
        """The sid this connect gets back (``ChannelLayerManager.pre_connect``), if it found one."""
        return self.saved.sid if self.saved is not None else None

    # ------------------------------------------------------------ 1. peek (before the connect handler)
    async def peek(self, auth: Any) -> None:
        """Look (without taking) for the session the connect asks to recover.

        Keyed by the user the token names and the pid: another user's token finds nothing.
        The session is only taken once the connect handler has accepted (``answer``), so a
        refused attempt leaves it for a later one.
        """
        recovery, manager = self.server.recovery, self.server.manager
        self.since = await recovery.tail(self.namespace)
        if not isinstance(auth, dict) or "pid" not in auth:
            return
        uid = user_of(auth, self.server.environ.get(self.eio_sid, {}))
        saved = await recovery.peek(uid, auth["pid"]) if uid is not None else None
        if (
            saved is None
            or saved.namespace != self.namespace
            or manager.is_connected(saved.sid, self.namespace)
            or self.recoveries.claimed(saved.sid)  # another connect is recovering it now
        ):
            return  # unknown, expired, or its sid is live again: a fresh session
        offset = auth.get("offset")
        self.saved = saved
        # Never from before the session's own offset: an old offset would make us read (and
        # send) what this session already had, as often as the client cares to reconnect.
        self.offset = later(offset, saved.offset) if is_offset(offset) else saved.offset
        self.pid = auth["pid"]
        self.recoveries.claim(self)

    # ------------------------------------------------------------ 2-5. the handler accepted: answer
    async def answer(self, pkt: Any) -> None:
        """Restore and replay if recovering, then answer ``{sid, pid}`` and release what was held."""
        sid = pkt.data["sid"]
        session = await self.server.get_session(sid, namespace=self.namespace)
        last = None
        if self.saved is not None and self.saved.sid == sid and session.get("uid") == self.saved.uid:
            last = await self._restore(sid)
        if last is None:  # a fresh session
            self.pid = secrets.token_urlsafe(16)
        session["pid"], session["since"] = self.pid, last or self.since or "0-0"
        await self.server.send_now(
            self.eio_sid, self.server.packet_class(packet.CONNECT, {"sid": sid, "pid": self.pid}, self.namespace)
        )
        await self._release(last)

    async def _restore(self, sid: str) -> str | None:
        """Take the session, rejoin the rooms the user may join now, replay what reaches them.

        Returns the offset replayed to, or ``None`` when the session cannot be recovered.
        """
        rooms = await self._take_and_authorise(sid)
        if rooms is None:
            return None
        rejoin, visible = rooms
        rejoined = self._rejoin(sid, rejoin)
        await self._listen(sid, rejoined)
        last = await self._replay(sid, visible)
        if last is None:  # the log lost events after the offset, or the gap is past the cap
            for room in rejoined:
                self.server.manager.basic_leave_room(sid, self.namespace, room)
        return last

    async def _take_and_authorise(self, sid: str) -> tuple[list[str], list[str]] | None:
        """2. Take the session (once, of all connects), and ask the namespace which of its rooms
        the user may rejoin and which it may still see; ``None``: a fresh session."""
        assert self.saved is not None
        saved = await self.server.recovery.take(self.saved.uid, self.pid)
        if saved is None:  # taken meanwhile by another connect of the same user and pid
            return None
        handler = self.server.namespace_handlers.get(self.namespace)
        try:
            return await handler.restorable_rooms(sid, saved.rooms) if isinstance(handler, RestoresRooms) else ([], [])
        except Exception as exc:  # the database is away: a fresh session rather than rights unchecked
            logger.warning("recovery: rooms could not be re-authorised (%s)", exc)
            return None

    def _rejoin(self, sid: str, rooms: list[str]) -> list[str]:
        """3. Rejoin the rooms it is not in yet; those it rejoined."""
        manager = self.server.manager
        joined = set(manager.get_rooms(sid, self.namespace))
        rejoined = [room for room in rooms if room not in joined]
        for room in rejoined:
            manager.basic_enter_room(sid, self.namespace, room)
        return rejoined

    async def _listen(self, sid: str, rejoined: list[str]) -> None:
        """4. Listen to the rooms before reading the log: an event logged after the read is
        published after it too, so it arrives live (held, then released) instead of falling in between."""
        await self.server.manager.listening(self.namespace, [*rejoined, sid])

    async def _replay(self, sid: str, visible: list[str]) -> str | None:
        """5. Send every missed event that reaches the socket, in order; the offset replayed to."""
        assert self.offset is not None
        missed = await self.server.recovery.missed(self.namespace, self.offset)
        if missed is None:
            return None
        reachable = set(self.server.manager.get_rooms(sid, self.namespace)) | set(visible)
        last = self.offset
        for offset, entry in missed:
            if entry.reaches(sid, reachable):
                data = [entry.event, *entry.data, offset]
                await self.server.send_now(
                    self.eio_sid, self.server.packet_class(packet.EVENT, namespace=self.namespace, data=data)
                )
            last = offset
        return last

    # ------------------------------------------------------------ 6. release, drop live copies, end
    async def _release(self, replayed_to: str | None) -> None:
        """Send what was held, in order, minus events of the namespace the replay already carried;
        from now until ``REPLAY_OVERLAP_SECONDS`` later, live copies of those are dropped."""
        held, self.held = self.held, None
        self.recoveries.unclaim(self)
        if replayed_to is not None:
            self.replayed_to, self.until = replayed_to, time.monotonic() + REPLAY_OVERLAP_SECONDS
        for item in held or ():
            if not self._carried(item):
                await self.server.send_now(self.eio_sid, item)

    def _carried(self, item: Any) -> bool:
        return self.replayed_to is not None and carried(item, self.namespace, self.replayed_to)

    def drops(self, item: Any) -> bool:
        """A live packet the recent replay carried (logged before the read, published after)."""
        if self.replayed_to is None:
            return False
        if time.monotonic() > self.until:
            self._end()
            return False
        return self._carried(item)

    async def finish(self) -> None:
        """The connect is over, accepted or not: what is still held goes; a connection that was
        not recovered ends here, a recovered one at the end of its replay window. Held still, it
        was refused: its events are dropped (its ``CONNECT_ERROR`` goes). It was in the user room
        while it re-read a user whose access changed (``BaseNamespace._join``): a deactivated
        user's notification went out before the refusal, read by a raw client."""
        if self.held is not None:
            self.held = [item for item in self.held if not is_event(item)]
            await self._release(None)
        if self.replayed_to is None:
            self._end()

    def _end(self) -> None:
        self.recoveries.forget(self)


class Recoveries:
    """The server's recovering connections, by Engine.IO session and namespace."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self._connections: dict[str, dict[str, RecoveringConnection]] = {}  # eio_sid -> namespace -> connection
        self._claims: dict[str, RecoveringConnection] = {}  # sid -> the connect recovering it now

    # ------------------------------------------------------------ connects
    async def connect(self, eio_sid: str, namespace: str, auth: Any) -> None:
        """Run the namespace's connect under recovery: peek, connect (answered by ``intercept``), finish."""
        connection = RecoveringConnection(self, eio_sid, namespace)
        self._connections.setdefault(eio_sid, {})[namespace] = connection
        try:
            await connection.peek(auth)
            await self.server.connect_plainly(eio_sid, namespace, auth)
        finally:
            await connection.finish()

    def connecting(self, eio_sid: str, namespace: str) -> RecoveringConnection | None:
        connection = self._connections.get(eio_sid, {}).get(namespace)
        return connection if connection is not None and connection.held is not None else None

    def claimed(self, sid: str) -> bool:
        """Whether a connect in progress is recovering the socket ``sid``."""
        return sid in self._claims

    def claim(self, connection: RecoveringConnection) -> None:
        assert connection.reused_sid is not None
        self._claims[connection.reused_sid] = connection

    def unclaim(self, connection: RecoveringConnection) -> None:
        if connection.reused_sid is not None and self._claims.get(connection.reused_sid) is connection:
            del self._claims[connection.reused_sid]

    def watching(self, eio_sid: str) -> bool:
        """Whether packets to ``eio_sid`` must pass ``intercept`` (a connect of it recovers, or did lately)."""
        return eio_sid in self._connections

    async def intercept(self, eio_sid: str, item: Any) -> bool:
        """Whether a packet to ``eio_sid`` was taken here: a recovering connect's answer, held
        until it, or a live copy of an event its replay carried (dropped)."""
        connections = self._connections.get(eio_sid)
        if not connections:
            return False
        # Held by its own namespace's connection only: released by another (two namespaces of
        # one session recovering at once), it would come before its answer and its replay, and
        # again in the replay.
        connection = connections.get(namespace_of(item) or "")
        if connection is None:
            return False
        if connection.held is None:
            return connection.drops(item)
        if not isinstance(item, eio_packet.Packet) and item.packet_type == packet.CONNECT:
            await connection.answer(item)
        else:
            connection.held.append(item)
        return True

    def forget(self, connection: RecoveringConnection) -> None:
        self.unclaim(connection)
        connections = self._connections.get(connection.eio_sid, {})
        if connections.get(connection.namespace) is connection:
            del connections[connection.namespace]
            if not connections:
                del self._connections[connection.eio_sid]

    def disconnected(self, eio_sid: str, namespace: str) -> None:
        """The socket left the namespace: its replay window ends."""
        connection = self._connections.get(eio_sid, {}).get(namespace)
        if connection is not None and connection.held is None:
            self.forget(connection)
