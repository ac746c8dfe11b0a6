"""Who is online, across server processes.

Each process counts its own sockets per namespace and user. Every
``PRESENCE_HEARTBEAT`` seconds it publishes that list on the Channels layer
and keeps the lists of the others; a list not renewed within three
heartbeats is dropped, so a process that dies stops counting by itself.
Partners are also marked dispatchable in the database (``online_until``) on
each heartbeat, which lapses the same way after a crash.
"""

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from django.conf import settings

from config.realtime import rooms
from config.realtime.manager import ChannelLayerManager, on_control, on_startup

logger = logging.getLogger(__name__)


class Presence:
    def __init__(self) -> None:
        self.local: dict[str, Counter[int]] = {ns: Counter() for ns in rooms.NAMESPACES}
        self.remote: dict[str, tuple[float, dict[str, set[int]]]] = {}
        # Partners who connected since the last write: marked dispatchable within a second,
        # in one UPDATE, rather than one write per connect.
        self.new_partners: set[int] = set()

    def add(self, namespace: str, user_id: int) -> bool:
        """Count a socket; ``True`` when it is the user's first here."""
        counter = self.local[namespace]
        counter[user_id] += 1
        if namespace == rooms.PARTNER and counter[user_id] == 1:
            self.new_partners.add(user_id)
        return counter[user_id] == 1

    def remove(self, namespace: str, user_id: int) -> bool:
        """Forget a socket; ``True`` when it was the user's last here."""
        counter = self.local[namespace]
        counter[user_id] -= 1
        if counter[user_id] <= 0:
            del counter[user_id]
            return True
        return False

    def online(self, namespace: str) -> set[int]:
        now = time.monotonic()
        users = set(self.local[namespace])
        for host, (expires, snapshot) in list(self.remote.items()):
            if expires < now:
                del self.remote[host]
            else:
                users |= snapshot.get(namespace, set())
        return users

    def is_online(self, user_id: int) -> bool:
        """Any socket of the user, in any namespace, on any process (no set is built)."""
        if any(user_id in counter for counter in self.local.values()):
            return True
        now = time.monotonic()
        return any(
            expires >= now and any(user_id in ids for ids in snapshot.values())
            for expires, snapshot in list(self.remote.values())
        )

    def snapshot(self) -> dict[str, list[int]]:
        return {ns: list(counter) for ns, counter in self.local.items()}

    def receive(self, host_id: str, users: dict[str, list[int]]) -> None:
        ttl = 3 * settings.PRESENCE_HEARTBEAT
        self.remote[host_id] = (time.monotonic() + ttl, {ns: set(ids) for ns, ids in users.items()})


presence = Presence()


@on_control("presence")
async def _presence_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    if message.get("host_id") != manager.host_id:
        presence.receive(message["host_id"], message.get("users") or {})


@on_startup
def _start_heartbeat(manager: ChannelLayerManager) -> None:
    manager.start_task(_heartbeat(manager))


async def _heartbeat(manager: ChannelLayerManager) -> None:
    """Every second: newly connected partners; every heartbeat: everyone, and the cluster list."""
    from config.realtime.namespace import db
    from partners.services import partners_online

    next_beat = 0.0
    while True:
        try:
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + settings.PRESENCE_HEARTBEAT
                presence.new_partners.clear()
                partner_ids = list(presence.local[rooms.PARTNER])
                if partner_ids:
                    await db(partners_online)(partner_ids=partner_ids)
                await manager.dispatch({"method": "presence", "users": presence.snapshot()})
            elif presence.new_partners:
                fresh, presence.new_partners = list(presence.new_partners), set()
                await db(partners_online)(partner_ids=fresh)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("presence heartbeat failed")
        await asyncio.sleep(min(1.0, settings.PRESENCE_HEARTBEAT))
