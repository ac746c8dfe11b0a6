"""When a socket's rights are read again: the ``access_changed`` control (a change announced)
and the periodic recheck (one nobody announced, or whose announcement was lost).

Both hand a fresh identity to the namespace (``config.realtime.rights.RoomRights.recheck``),
which applies it: rights lost, rooms left, or the socket refused.
"""

import asyncio
import logging
from typing import Any

from django.conf import settings

from config.realtime.identity import load_identities, load_identity, note_access_change, user_room
from config.realtime.manager import ChannelLayerManager
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db
from config.realtime.outages import OutageLog

logger = logging.getLogger(__name__)


async def access_changed_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """A user's access changed (deactivated, demoted, suspended...): recheck their local sockets."""
    user_id = int(message["user_id"])
    note_access_change(user_id)
    namespaces = [
        handler
        for name, handler in manager.server.namespace_handlers.items()
        if isinstance(handler, BaseNamespace) and any(True for _ in manager.get_participants(name, user_room(user_id)))
    ]
    if not namespaces:
        return
    identity = await db(load_identity)(user_id)
    for namespace in namespaces:
        await namespace.recheck(user_id, identity)


RECHECK_BATCH = 500  # users read per query by the periodic recheck


async def recheck_forever(manager: ChannelLayerManager) -> None:
    """Every ``ACCESS_RECHECK_SECONDS``, compare each local socket's rights with the database.

    The ``access_changed`` control is at most once (a lost pub/sub message, a ``QuerySet.update``
    that sends no signal, a failed recheck): this bounds how long any of them can leave a
    socket with rights its user lost. Users are read in batches, one query each.
    """
    outage = OutageLog(logger, "periodic access recheck")  # the database away: once, and once back
    while True:
        await asyncio.sleep(settings.ACCESS_RECHECK_SECONDS)
        try:
            await recheck_all(manager)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # tried again next period; a bug is an error with its traceback
            outage.failed(exc)
        else:
            outage.succeeded()


async def recheck_all(manager: ChannelLayerManager) -> None:
    for name, handler in list(manager.server.namespace_handlers.items()):
        if not isinstance(handler, BaseNamespace):
            continue
        sessions = []
        for count, (sid, _) in enumerate(list(manager.get_participants(name, None)), start=1):
            if count % RECHECK_BATCH == 0:
                await asyncio.sleep(0)  # 30,000 sockets are read in slices: relays go on meanwhile
            session = await manager.session_of(sid, name)
            if session is not None and "uid" in session:
                sessions.append(session)
        uids = sorted({session["uid"] for session in sessions})
        for start in range(0, len(uids), RECHECK_BATCH):
            batch = uids[start : start + RECHECK_BATCH]
            identities = await db(load_identities)(batch)
            chunk = [session for session in sessions if batch[0] <= session["uid"] <= batch[-1]]
            for user_id in handler.stale_users(chunk, identities):
                await handler.recheck(user_id, identities.get(user_id))
