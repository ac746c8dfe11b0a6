"""What a dropped socket leaves for its recovery (``config.realtime.recovering`` takes it back).

A socket that drops without meaning to (``INVOLUNTARY``), or any socket of a stopping
process, leaves its sid, rooms, user and last seen offset in the recovery store
(``config.realtime.recovery``), under its user and ``pid``, for the window.
"""

import asyncio
import logging
from typing import TYPE_CHECKING

import socketio

from config.realtime.recovery_store import SavedSession

if TYPE_CHECKING:
    from config.realtime.server import Server

logger = logging.getLogger(__name__)
# Disconnects after which a session is kept for recovery (as Node keeps them): not the
# client's own, not a kick by the server (unless the whole process is stopping).
INVOLUNTARY = {
    socketio.AsyncServer.reason.TRANSPORT_CLOSE,
    socketio.AsyncServer.reason.TRANSPORT_ERROR,
    socketio.AsyncServer.reason.PING_TIMEOUT,
}


class Keeper:
    """Saves sessions for recovery: one at a disconnect, or all of them when the process stops."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self._kept: set[tuple[str, str]] = set()  # (sid, namespace) saved by a stopping process

    async def keep(self, eio_sid: str, namespace: str) -> None:
        """Save a dropping socket's session for the window (unless a stopping process did already)."""
        manager = self.server.manager
        sid = manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or (sid, namespace) in self._kept or not manager.is_connected(sid, namespace):
            return
        kept = await self._kept_session(sid, namespace)
        if kept is not None:
            await self.server.recovery.save(*kept)

    async def _kept_session(self, sid: str, namespace: str) -> tuple[int, str, SavedSession] | None:
        """What recovery keeps of a connected socket: (user, pid, session); ``None`` if nothing."""
        session = await self.server.manager.session_of(sid, namespace)
        if session is None or "pid" not in session or "uid" not in session:
            return None
        rooms = [room for room in self.server.manager.get_rooms(sid, namespace) if room not in (None, sid)]
        return session["uid"], session["pid"], SavedSession(sid, namespace, session["uid"], rooms, session["since"])

    async def keep_all(self) -> int:
        """A stopping process saves every socket's session for recovery, all at once (the store
        batches them into pipelines), before any socket closes; returns how many were kept.
        Their disconnects then save nothing again."""
        manager = self.server.manager
        found = []
        for namespace in list(manager.rooms):
            for sid, _ in list(manager.get_participants(namespace, None)):
                kept = await self._kept_session(sid, namespace)
                if kept is not None:
                    found.append(((sid, namespace), kept))
        results = await asyncio.gather(*(self.server.recovery.save(*kept) for _, kept in found))
        self._kept.update(key for (key, _), saved in zip(found, results, strict=True) if saved)
        level = logging.INFO if len(self._kept) == len(found) else logging.WARNING
        logger.log(level, "stopping: %d of %d sessions kept for recovery", len(self._kept), len(found))
        return len(self._kept)
