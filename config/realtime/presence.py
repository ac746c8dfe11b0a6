"""Who is online, across server processes.

Each process counts its own sockets per namespace and user. Every
``PRESENCE_HEARTBEAT`` seconds it publishes that list on the Channels layer
and keeps the lists of the others; a list not renewed within three
heartbeats is dropped, so a process that dies stops counting by itself, and a
process that stops gracefully withdraws its list at once.

Apps that keep their own record of who is online (partners are dispatchable
while ``online_until`` is ahead) register a *keeper* per namespace
(:func:`keep_online`): called with the users seen online on each heartbeat, with
new users within a second, with the user of a connect refused after their online write as
offline within a second, and with everyone as offline when the process stops.
"""

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from django.conf import settings

from config.realtime.manager import ChannelLayerManager
from config.realtime.orm import db
from config.realtime.outages import OutageLog

logger = logging.getLogger(__name__)


# namespace -> a sync function(user_ids, online) run in a DB thread.
Keeper = Callable[[list[int], bool], None]
_keepers: dict[str, Keeper] = {}
# Users a stopping process could not record offline yet, per kept namespace (``withdraw``).
_unwithdrawn: dict[str, set[int]] = defaultdict(set)


def keep_online(namespace: str, keeper: Keeper) -> None:
    """Have ``keeper(user_ids, online)`` record who is online in ``namespace`` (see module doc)."""
    _keepers[namespace] = keeper


class Presence:
    def __init__(self) -> None:
        self.local: dict[str, Counter[int]] = defaultdict(Counter)
        self.remote: dict[str, tuple[float, dict[str, set[int]]]] = {}
        # Users who connected since the last write, per kept namespace: recorded within
        # a second, in one call, rather than one write per connect.
        self.new: dict[str, set[int]] = defaultdict(set)
        # Users a refused connect had counted after their online write went out: recorded offline
        # at the next write (the app's disconnect hook, which does it for a socket that goes, never runs).
        self.refused: dict[str, set[int]] = defaultdict(set)

    def add(self, namespace: str, user_id: int) -> bool:
        """Count a socket; ``True`` when it is the user's first here."""
        counter = self.local[namespace]
        counter[user_id] += 1
        if namespace in _keepers and counter[user_id] == 1:
            self.new[namespace].add(user_id)
            self.refused[namespace].discard(user_id)
        return counter[user_id] == 1

    def remove(self, namespace: str, user_id: int) -> bool:
        """Forget a socket; ``True`` when it was the user's last here."""
        counter = self.local[namespace]
        counter[user_id] -= 1
        if counter[user_id] <= 0:
            del counter[user_id]
            # Gone before the next write (a connect refused after it counted): not recorded online.
            self.new[namespace].discard(user_id)
            return True
        return False

    def refuse(self, namespace: str, user_id: int) -> None:
        """Undo ``add`` for a connect refused after it counted: when that was the user's only socket
        here and its online write went out meanwhile (a part's read waited on the database), the
        next write records them offline."""
        pending = user_id in self.new[namespace]
        if self.remove(namespace, user_id) and namespace in _keepers and not pending:
            self.refused[namespace].add(user_id)

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


async def presence_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """The ``presence`` control: another process's users."""
    if message.get("host_id") != manager.host_id:
        presence.receive(message["host_id"], message.get("users") or {})


async def heartbeat(manager: ChannelLayerManager) -> None:
    """Every second: newly connected users; every heartbeat: everyone, and the cluster list.

    A database outage is one warning when the first write fails and one line when a write goes
    through again (``outages.OutageLog``), not an error with its traceback every second it lasts;
    what failed is written by the next round (everyone, at once). Any other failure is an error
    each time. The list's publish waits for no broker (the lane queues it; the lane says once when
    Redis is away and once when it is back): Redis away fails no round here."""
    next_beat = 0.0
    outage = OutageLog(logger, "presence heartbeat")
    while True:
        now = time.monotonic()
        beat = now >= next_beat
        try:
            wrote = await _write_round(beat)
            if beat:
                next_beat = now + settings.PRESENCE_HEARTBEAT
                await manager.dispatch({"method": "presence", "users": presence.snapshot()})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
        else:
            if wrote:  # a round with nothing to write proves nothing of the database
                outage.succeeded()
        await asyncio.sleep(min(1.0, settings.PRESENCE_HEARTBEAT))


async def _write_round(beat: bool) -> bool:
    """The keepers' writes of one round (everyone on a ``beat``, else the newly connected), and
    the refused connects' offline writes; whether anything was written."""
    wrote = False
    for namespace, keeper in _keepers.items():
        fresh = list(presence.local[namespace]) if beat else list(presence.new[namespace])
        presence.new[namespace].clear()
        if fresh:
            await db(keeper)(fresh, True)
            wrote = True
        # Let go once written: a failed write (the database that refused their connect) is
        # tried again next time, where a lost one left them online until PRESENCE_TTL.
        if refused := list(presence.refused[namespace]):
            await db(keeper)(refused, False)
            presence.refused[namespace].difference_update(refused)  # those refused meanwhile stay
            wrote = True
    return wrote


async def withdraw(manager: ChannelLayerManager) -> None:
    """A stopping process: its users are offline now, not when its heartbeat lapses.

    The other processes hear it first (the broker): a database that does not answer holds only
    the keepers' writes, and their users are tried again by the stop's next run, then reported
    (``left_online``)."""
    await manager.dispatch({"method": "presence", "users": {}})
    for namespace, keeper in _keepers.items():
        users = _unwithdrawn[namespace]
        users.update(presence.local[namespace], presence.refused.pop(namespace, ()))
        if users:
            await db(keeper)(list(users), False)
            users.clear()


def left_online() -> str | None:
    """What a stop's withdrawal left: the users the keepers could not record offline."""
    users = sum(len(left) for left in _unwithdrawn.values())
    if not users:
        return None
    return (
        f"{users} users not recorded offline (the database did not answer): their online records"
        f" lapse on their own within PRESENCE_TTL ({settings.PRESENCE_TTL} s)"
    )
