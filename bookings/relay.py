"""The relay: a partner's position sent to the rooms of their active bookings, with distance and ETA.

No query runs per update: the partner's active bookings (the *relay list*) sit on
the socket's session.

The relay list decides who sees a partner's position, so it must be exact. It is
read from the database, never carried in a message (two transactions committing
at once would each send a list missing the other's change), and always under the
partner's lock, after the socket joined its user room: on connect, on every
``partner_bookings`` control (sent after a booking of theirs changes), and by a
periodic reconcile. A read that starts after a commit sees it, and the lock
keeps an older read from landing after a newer one.

A partner's move is read once on the process that made it: each read is numbered when it
starts (``_reads``, per process) and each socket's session keeps the number of the read it
holds (``relay_read``); the control carries the number this process had reached at its commit,
and the move's own refresh waits for the same number (``marking_commits``), so whichever of the
two comes second, finding every local socket holding a read numbered after it, has nothing to
add. On another process the number means nothing: the control reads there.
"""

import asyncio
import contextlib
import contextvars
import itertools
import weakref
from typing import Any

from django.conf import settings

from bookings import events
from bookings.arrival import nearby_seen
from bookings.geo import arrival
from bookings.selectors import RelayTarget, relay_targets_of
from config import rooms
from config.errors import ValidationError
from config.formats import iso
from config.realtime.clock import every
from config.realtime.emit import control, emit_now
from config.realtime.manager import ChannelLayerManager
from config.realtime.orm import Batched, db
from partners.traces import Fix, batch_of
from partners.tracking import locations, parse_location


async def relay_location(session: dict[str, Any], payload: Any, *, traced: bool = False) -> int:
    """Relay one update to the rooms of the partner's active bookings, with distance and ETA; returns how many.

    The fix is first handed to the buffer (``locations.record``: the position to write, the job's
    trace), and each booking it reaches is checked for arrival (``arrival.nearby_seen``). Only a
    fix newer than every fix known of the partner is relayed (``timestamp``: its ``recordedAt``,
    else now); an older one only fills the job's trace (``traced``: the caller stored it
    already), so a customer's marker never moves backwards.
    """
    latitude, longitude, speed = parse_location(payload)
    targets: list[RelayTarget] = session.get("bookings") or ()
    at = locations.record(session["uid"], payload, trace=bool(targets) and not traced)
    if at is None:
        return 0
    timestamp = iso(at)
    for booking_id, booking_lat, booking_lng in targets:
        reach = arrival(latitude, longitude, booking_lat, booking_lng, speed)  # measured once: relay and arrival
        await emit_now(
            "partner:location_update",
            events.location_update(booking_id, latitude, longitude, timestamp, reach),
            namespace=rooms.CUSTOMER,
            room=rooms.booking(booking_id),
        )
        nearby_seen(session, booking_id, reach)
    # Counted where every server event is: homeservices_server_events_total{event="partner:location_update"}.
    return len(targets)


async def relay_batch(session: dict[str, Any], payload: Any) -> dict[str, int]:
    """An offline batch (``location:batch``, checked against its schema): stored as the job's trace
    (when the partner has one), its newest fix relayed like a live update when it is newer than
    every fix known; the ack's ``{accepted, duplicates, rejected}``.

    ``rejected``: fixes outside the time bounds (never stored, never relayed). ``duplicates``: fixes
    the server had already: the same ``recordedAt`` earlier in the batch, or stored before (with
    the fixes thinning left out behind a stored point: a replayed batch is all duplicates).
    ``accepted``: the rest, whether thinning kept them as trace points or not.
    """
    fixes, rejected = batch_of(payload)
    # In time order (a stable sort): the same instant twice sits side by side; the first is taken.
    distinct = [fix for i, fix in enumerate(fixes) if i == 0 or fix.recorded_at != fixes[i - 1].recorded_at]
    duplicates = len(fixes) - len(distinct)
    if distinct:
        # The marker first: the customers' delivery waits on no database write. Within bounds when
        # the batch was read; a fix that turned 24 hours old since is not relayed.
        with contextlib.suppress(ValidationError):
            await relay_location(session, _as_update(distinct[-1]), traced=True)
    if distinct and session.get("bookings"):
        duplicates += await locations.store_batch(session["uid"], distinct)
    return {"accepted": len(fixes) - duplicates, "duplicates": duplicates, "rejected": rejected}


def _as_update(fix: Fix) -> dict[str, Any]:
    update = {"latitude": fix.latitude, "longitude": fix.longitude, "recordedAt": iso(fix.recorded_at)}
    return update if fix.speed is None else {**update, "speed": fix.speed}


# One lock per partner while anyone waits on it (weak values: nothing left behind).
_relay_locks: "weakref.WeakValueDictionary[int, asyncio.Lock]" = weakref.WeakValueDictionary()
RECONCILE_BATCH = 200


# Relay lists read from the loop: a reconnect storm's partners (or one booking change's several
# partners) share one query and one DB thread hand-off.
_targets = Batched(lambda partner_ids: relay_targets_of(partner_ids=partner_ids))


def _relay_lock(partner_id: int) -> asyncio.Lock:
    lock = _relay_locks.get(partner_id)
    if lock is None:
        lock = _relay_locks[partner_id] = asyncio.Lock()
    return lock


def _local_sids(manager: Any, partner_id: int) -> list[str]:
    return [sid for sid, _ in manager.get_participants(rooms.PARTNER, rooms.user(partner_id))]


# Partners with a control's refresh waiting for their lock (``partner_bookings_received``).
_control_waiting: set[int] = set()
# This process's relay reads, numbered as they start; a commit notes the number reached (``read_mark``).
_reads = itertools.count(1)


# The marks of the controls the commits of a move sent (``marking_commits``).
_commit_marks: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("relay_commit_marks", default=None)


def read_mark() -> int:
    """A number every relay read of this process that starts from now on is above (any thread)."""
    return next(_reads)


def marking_commits() -> list[int]:
    """The list that the ``read_mark`` of each ``partner_bookings`` control committed from here on in
    this task is added to: a ``db`` call runs in a copy of the caller's context, which shares the list,
    and ``on_commit`` runs on the committing thread. The caller's refresh then waits for a read
    numbered after the mark its control carries, and the control for the same read."""
    marks: list[int] = []
    _commit_marks.set(marks)
    return marks


def _committed() -> dict[str, int]:
    mark = read_mark()
    if (marks := _commit_marks.get()) is not None:
        marks.append(mark)
    return {"read_mark": mark}


async def refresh_relay(manager: Any, partner_id: int, *, control: bool = False, after: int | None = None) -> None:
    """Re-read the partner's active bookings into the sessions of their sockets on this process.

    ``control``: a control message's, which nobody waits for. One of those already waiting for the
    partner's lock reads after this caller's commit too: this one adds nothing and returns. Each
    control runs as a task of its own (``hooks.run_control``): while the database hangs, a burst of
    a partner's controls was a task each, queued on the lock, each waiting its read's timeout in
    turn; now at most two a partner, the one reading and the one waiting.

    ``after``: a ``read_mark`` taken after the caller's commit; when every local socket of the
    partner holds a list read after it, that read saw the commit and none is made."""
    if not _local_sids(manager, partner_id):
        return
    waiting = control and partner_id not in _control_waiting
    if control and not waiting:
        return
    if waiting:
        _control_waiting.add(partner_id)
    try:
        async with _relay_lock(partner_id):
            if waiting:
                _control_waiting.discard(partner_id)  # from here on a newer control's read would be after this one
                waiting = False
            if after is not None and await _read_after(manager, partner_id, after):
                return
            # Under the lock, the read is asked for after the caller's commit: it sees it, batched or not.
            started = read_mark()
            targets = await _targets.get(partner_id) or []
            await _apply(manager, partner_id, targets, started)
    finally:
        if waiting:  # cancelled while it waited for the lock
            _control_waiting.discard(partner_id)


async def _apply(manager: Any, partner_id: int, targets: list[RelayTarget], started: int) -> None:
    for sid in _local_sids(manager, partner_id):
        session = await manager.session_of(sid, rooms.PARTNER)
        if session is not None:
            session["bookings"], session["relay_read"] = targets, started


async def _read_after(manager: Any, partner_id: int, mark: int) -> bool:
    """Whether every local socket of the partner holds a relay list read that started after ``mark``."""
    for sid in _local_sids(manager, partner_id):
        session = await manager.session_of(sid, rooms.PARTNER)
        if session is not None and session.get("relay_read", 0) <= mark:
            return False
    return True


async def reconcile_relays(manager: Any) -> None:
    """Safety net: every local partner's relay list read again, a batch of partners per query."""
    partner_ids = sorted({int(room.removeprefix(rooms.user(""))) for room in _partner_rooms(manager)})
    for start in range(0, len(partner_ids), RECONCILE_BATCH):
        batch = partner_ids[start : start + RECONCILE_BATCH]
        async with contextlib.AsyncExitStack() as stack:
            for partner_id in batch:
                await stack.enter_async_context(_relay_lock(partner_id))
            started = read_mark()
            lists = await db(relay_targets_of)(partner_ids=batch)
            for partner_id in batch:
                await _apply(manager, partner_id, lists.get(partner_id, []), started)


def _partner_rooms(manager: Any) -> list[str]:
    return [room for room in manager.rooms.get(rooms.PARTNER, {}) if room and room.startswith(rooms.user(""))]


def partner_bookings_changed(*, partner_id: Any) -> None:
    """Tell every process to re-read the partner's relay list (after commit, like every emit), with
    this process's ``read_mark`` at the commit."""
    control("partner_bookings", user_id=str(partner_id), at_commit=_committed)


async def partner_bookings_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """A partner's bookings changed: refresh the relay list of their local sockets, unless the commit
    was this process's and each of them holds a list read since (the move's own refresh)."""
    mark = message.get("read_mark")
    if not isinstance(mark, int) or message.get("host_id") != manager.host_id:
        mark = None  # another process's numbering (or none): read
    await refresh_relay(manager, int(message["user_id"]), control=True, after=mark)


async def reconcile_forever(manager: ChannelLayerManager) -> None:
    await every(
        settings.RELAY_RECONCILE_INTERVAL, lambda: reconcile_relays(manager), "reconciling partners' relay lists"
    )
