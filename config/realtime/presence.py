"""Who is online, across server processes.

Each process counts its own sockets per namespace and user. Every
``PRESENCE_HEARTBEAT`` seconds it publishes that list on the Channels layer
and keeps the lists of the others; a list not renewed within three
heartbeats is dropped, so a process that dies stops counting by itself, and a
process that stops gracefully withdraws its list at once.

Apps that keep their own record of who is online (partners are dispatchable
while ``online_until`` is ahead) register a *keeper* per namespace
(:func:`keep_online`): called with the users seen online on each heartbeat, with
new users within a second, with the users whose last socket here went (a disconnect, a
connect refused after it counted) as offline at once, those of the same moment (``OFFLINE_GATHER``)
in one call, and with everyone as offline when the process stops.
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


# How long the first user gone waits for others before their offline write: the disconnects of a
# sweep of ping timeouts (``waits.SweptTimeouts``, one socket after another) go in a few writes.
OFFLINE_GATHER = 0.05
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
        # Users whose last socket here went (a disconnect, a refused connect): recorded offline at the
        # next write, with the others of that moment (a sweep of a thousand ping timeouts: a few writes,
        # not a thousand).
        # A user back before it is taken out (``add``); one back while it is written is in ``new``,
        # written online after it: the last thing that happened to them is what the database keeps.
        self.offline: dict[str, set[int]] = defaultdict(set)
        # Wakes the heartbeat's loop (``heartbeat``): a partner gone stops being offered jobs at once,
        # not up to a second later.
        self.wake: Callable[[], None] | None = None

    def add(self, namespace: str, user_id: int) -> bool:
        """Count a socket; ``True`` when it is the user's first here."""
        counter = self.local[namespace]
        counter[user_id] += 1
        if namespace in _keepers and counter[user_id] == 1:
            self.new[namespace].add(user_id)
            self.offline[namespace].discard(user_id)
        return counter[user_id] == 1

    def remove(self, namespace: str, user_id: int) -> bool:
        """Forget a socket (its disconnect, or a connect refused after it counted); ``True`` when it
        was the user's last here, who is then recorded offline at the next write."""
        counter = self.local[namespace]
        counter[user_id] -= 1
        if counter[user_id] <= 0:
            del counter[user_id]
            if namespace in _keepers:
                # Even when their online write has not gone out: the database may hold them online from
                # an earlier socket (gone and back within the second). One more id in a batched write.
                self.new[namespace].discard(user_id)
                self.offline[namespace].add(user_id)
                if self.wake is not None:
                    self.wake()
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


async def presence_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """The ``presence`` control: another process's users.

    Not ``ordered``, yet applied in the order the heartbeats came, only because it never awaits: its
    task runs to its end in its first step, and tasks start in the order of their messages
    (``hooks.run_control``). An ``await`` here would let an older heartbeat overwrite a newer one.
    """
    if message.get("host_id") != manager.host_id:
        presence.receive(message["host_id"], message.get("users") or {})


async def heartbeat(manager: ChannelLayerManager) -> None:
    """Every second: newly connected users; every heartbeat: everyone, and the cluster list; users
    gone, within ``OFFLINE_GATHER`` of the first of them.

    A database outage is one warning when the first write fails and one line when a write goes
    through again (``outages.OutageLog``), not an error with its traceback every second it lasts;
    what failed is written by the next round (the newly connected, a second later; a user gone, at
    once), everyone by the next heartbeat. Any other failure is an error
    each time. The list's publish waits for no broker (the lane queues it; the lane says once when
    Redis is away and once when it is back): Redis away fails no round here."""
    next_beat = 0.0
    outage = OutageLog(logger, "presence heartbeat")
    woken = asyncio.Event()
    presence.wake = woken.set
    while True:
        woken.clear()  # before the writes: a user gone while they run wakes the next round
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
            # The next round is a heartbeat: everyone written. What failed here was taken out of ``new``;
            # a round between two heartbeats that failed left who connected meanwhile offline in the
            # database until the next one (PRESENCE_HEARTBEAT) although it answered again within a second.
            next_beat = 0.0
        else:
            if wrote:  # a round with nothing to write proves nothing of the database
                outage.succeeded()
        try:
            await asyncio.wait_for(woken.wait(), min(1.0, settings.PRESENCE_HEARTBEAT))
        except TimeoutError:
            continue
        await asyncio.sleep(OFFLINE_GATHER)  # the rest of a sweep's disconnects, handled in turn, join the write


async def _write_round(beat: bool) -> bool:
    """The keepers' writes of one round (everyone on a ``beat``, else the newly connected), and
    the offline writes of those gone (a disconnect, a refused connect); whether anything was written."""
    wrote = False
    for namespace, keeper in _keepers.items():
        fresh = list(presence.local[namespace]) if beat else list(presence.new[namespace])
        presence.new[namespace].clear()  # a failed write makes the next round a beat: everyone
        if fresh:
            await db(keeper)(fresh, True)
            wrote = True
        # After the online write: a user gone while it ran ends offline. Let go once written: a
        # failed write (the database that refused their connect) is tried again next time,
        # where a lost one left them online until PRESENCE_TTL.
        if gone := list(presence.offline[namespace]):
            await db(keeper)(gone, False)
            presence.offline[namespace].difference_update(gone)  # those gone meanwhile stay
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
        users.update(presence.local[namespace], presence.offline.pop(namespace, ()))
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
