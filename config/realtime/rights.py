"""Rights that follow the user on a socket: a room is membership in a right.

Which rooms the user may be in now (``permitted_rooms``, said by the namespace's parts), the
rooms left when the user's rights change (``recheck``, ``prune_rooms``), those a recovered
session gets back (``restorable_rooms``), and the socket refused when the user may no
longer use the namespace. Mixed into ``BaseNamespace``, whose ``_session_for`` it uses;
``config.realtime.rechecks`` calls ``recheck`` and ``stale_users``.
"""

from collections.abc import Callable
from typing import Any

from config.errors import DomainError, Forbidden
from config.realtime.emit import emit_now
from config.realtime.identity import Session, user_room
from config.realtime.orm import db


class RoomRights:
    def permitted_rooms(self, session: Session, rooms: list[str], *, finished: bool = False) -> list[str]:
        """Which of ``rooms`` (joined by the namespace's own handlers) the user may be in now.

        Runs in a DB thread, on every change of the user's rights, on ``auth:refresh`` and
        before a recovered session gets its rooms back. ``finished``: also the rooms of
        things that are over but the user may still see (recovery replays what they missed
        there, without rejoining). A room no part permits is left: a part that joins rooms says
        what right each one stands for.
        """
        permitted: set[str] = set()
        for part in self.parts:
            if part.permitted_rooms is not None:
                permitted.update(part.permitted_rooms(session, rooms, finished=finished))
        return [room for room in rooms if room in permitted]

    async def prune_rooms(self, sid: str, session: Session) -> list[str]:
        """Leave every room the socket's user may no longer be in (a room is membership in a right);
        the rooms left."""
        own = {sid, user_room(session["uid"])}
        joined = [room for room in self.server.manager.get_rooms(sid, self.namespace_name) if room not in own]
        if not joined:
            return []
        permitted = set(await db(self.permitted_rooms)(dict(session), joined))
        left = [room for room in joined if room not in permitted]
        for room in left:
            await self.leave_room(sid, room)
        return left

    async def restorable_rooms(self, sid: str, rooms: list[str]) -> tuple[list[str], list[str]]:
        """Of a recovered session's rooms: those the socket may rejoin, and those whose missed
        events it may still see (a booking that finished during the gap: its last status)."""
        session = dict(await self.get_session(sid))
        wanted = [room for room in rooms if room not in (sid, user_room(session["uid"]))]
        if not wanted:
            return [], []

        def both() -> tuple[list[str], list[str]]:
            return self.permitted_rooms(session, wanted), self.permitted_rooms(session, wanted, finished=True)

        return await db(both)()

    async def recheck(self, user_id: int, identity: dict[str, Any] | None) -> None:
        """Apply a fresh identity to this process's sockets of ``user_id`` in this namespace."""
        for sid, _ in list(self.server.manager.get_participants(self.namespace_name, user_room(user_id))):
            await self._apply_identity(sid, identity)

    async def _apply_identity(self, sid: str, identity: dict[str, Any] | None) -> None:
        """The socket's session follows ``identity``: rights lost, rooms left, or the socket refused."""
        reason, _ = await self.apply_identity(sid, identity)
        if reason is not None:
            await self._revoke(sid, reason)

    async def apply_identity(self, sid: str, identity: dict[str, Any] | None) -> tuple[str | None, list[str]]:
        """The socket's session follows ``identity`` and it leaves the rooms it lost (returned); or,
        when it may no longer use the namespace, why (the caller refuses it: ``refuse``)."""
        session = await self.server.manager.session_of(sid, self.namespace_name)
        if session is None:
            return None, []
        try:
            session.update(self._session_for(identity))
        except Forbidden as exc:
            return exc.message, []
        return None, await self.prune_rooms(sid, session)

    def stale_users(self, sessions: list[Session], identities: dict[int, dict[str, Any]]) -> set[int]:
        """Users whose sockets hold other rights than their identity grants now (the periodic recheck)."""
        stale = set()
        for session in sessions:
            try:
                fresh = self._session_for(identities.get(session["uid"]))
            except Forbidden:
                stale.add(session["uid"])
                continue
            if any(session.get(key) != value for key, value in fresh.items()):
                stale.add(session["uid"])
        return stale

    async def _revoke(self, sid: str, reason: str) -> None:
        """Refuse a socket whose right went (the periodic recheck, an expired token): muted from its
        error to the end of its disconnect, whose hooks may wait on the database with the socket
        still in its rooms (what was sent meanwhile went out behind the DISCONNECT packet)."""
        await self.refuse_muted(sid, Forbidden(reason))

    async def refuse_muted(self, sid: str, error: DomainError) -> None:
        """``refuse`` a socket that may be held (its user's rights being read): the hold ends first
        (what waited is not its any more, and its error must not wait), and it is muted from its
        error to the end of its disconnect (``holding.mute``; released whatever happens)."""
        manager = self.server.manager
        manager.release(sid)
        try:
            await self.refuse(sid, error, told=manager.mute)
        finally:
            manager.release(sid)

    async def refuse(self, sid: str, error: DomainError, told: Callable[[str], None] | None = None) -> None:
        """One ``error`` (``event: None``: no event of the client's caused it), then the disconnect;
        ``told(sid)`` between the two (``rechecks``: nothing more reaches the socket while its
        disconnect's hooks run, in its rooms still, and a client may read on past the DISCONNECT)."""
        payload = {**error.as_dict(), "event": None}
        await emit_now("error", payload, namespace=self.namespace_name, room=sid, local=True)
        if told is not None:
            told(sid)
        await self.disconnect(sid)
