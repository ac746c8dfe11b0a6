"""When a socket's rights are read again: the ``access_changed`` control (a change announced)
and the periodic recheck (one nobody announced, or whose announcement was lost).

Both hand a fresh identity to the namespace (``config.realtime.rights.RoomRights``), which
applies it: rights lost, rooms left, or the socket refused. The control's sockets are held
meanwhile (``config.realtime.holding``).
"""

import asyncio
import itertools
import logging
import time
from typing import Any

from django.conf import settings

from config.errors import DomainError, Forbidden, Unavailable
from config.realtime import holding, hooks
from config.realtime.identity import (
    access_changed_since,
    identities,
    load_identities,
    note_access_change,
    user_room,
)
from config.realtime.manager import ChannelLayerManager
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db, log_failure
from config.realtime.outages import OutageLog

logger = logging.getLogger(__name__)

# The most a user's sockets stay held for their recheck: the identity read (``identities``:
# 5 s at most) and the rooms' (``prune_rooms``) together. Past it they are refused, as when
# unreadable; the refusals come after the hold ends (a partner's disconnect writes to the database).
RECHECK_HOLD_SECONDS = 10.0


async def access_changed_received(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """A user's access changed (deactivated, demoted, suspended...): recheck their local sockets.

    Registered ``ordered`` (nothing sent after the change reaches a socket that lost the right),
    and it waits on nothing, so that a database that does not answer holds no other room: the
    user's sockets are held (``holding``: what is sent to them waits) and their identity is read
    in a task, through the batched reader (a bulk suspension's thousand controls are one query).

    Fail-closed: a user whose rights cannot be read (the database does not answer within
    ``RECHECK_HOLD_SECONDS``, or ``hooks.CONTROL_TASKS_MAX`` rechecks are under way already) has
    their sockets refused with ``UNAVAILABLE``: a right revoked is never kept because the database
    was away. The client reconnects, and its connect reads the user again (``UNAVAILABLE`` until
    the database answers); a control that was lost is caught by ``ACCESS_RECHECK_SECONDS``.
    """
    user_id = int(message["user_id"])
    note_access_change(user_id)
    sockets = [(ns, sid) for ns, sid in _local_sockets(manager, user_id) if not manager.is_muted(sid)]  # being refused
    if not sockets:
        return
    if not hooks.admitted("access_changed"):
        _refuse_past_the_bound(manager, sockets)
        return
    held = [(sid, manager.hold(sid)) for _, sid in sockets]
    number = _newest[user_id] = next(_numbers)
    hooks.start_task("access_changed", _recheck(manager, user_id, held, number))


class PastTheBound:
    """The sockets of the rechecks refused past ``CONTROL_TASKS_MAX``, waiting for their refusal:
    one task refuses them in turn, so that a database that does not answer (a partner's disconnect
    writes to it) holds one task, not one per control past the bound."""

    __slots__ = ("sockets", "task")

    def __init__(self) -> None:
        self.sockets: dict[str, BaseNamespace] = {}  # sid: its namespace; in order
        self.task: asyncio.Task[None] | None = None


_past_the_bound = PastTheBound()


def _refuse_past_the_bound(manager: ChannelLayerManager, sockets: list[tuple[BaseNamespace, str]]) -> None:
    """Hold ``sockets`` (nothing more reaches them) and queue their refusal ``UNAVAILABLE``."""
    for namespace, sid in sockets:
        manager.hold(sid)
        _past_the_bound.sockets.setdefault(sid, namespace)
    if _past_the_bound.task is None or _past_the_bound.task.done():
        _past_the_bound.task = hooks.start_task("access_changed refusals", _refuse_queued())


async def _refuse_queued() -> None:
    error = Unavailable("Too many access rechecks under way: your rights could not be read")
    queued = _past_the_bound.sockets
    while queued:
        sid = next(iter(queued))
        await _refuse([(queued.pop(sid), sid)], {sid: error})


def _local_sockets(manager: ChannelLayerManager, user_id: int) -> list[tuple[BaseNamespace, str]]:
    return [
        (handler, sid)
        for name, handler in manager.server.namespace_handlers.items()
        if isinstance(handler, BaseNamespace)
        for sid, _ in list(manager.get_participants(name, user_room(user_id)))
    ]


# A user's newest recheck under way: an older one's read, made before the newer's, may come back
# after it (another thread, another connection) and is not applied then: a user promoted and at
# once demoted kept the promotion's rights (until the periodic recheck) when its read came last.
_numbers = itertools.count(1)
_newest: dict[int, int] = {}


async def _recheck(
    manager: ChannelLayerManager, user_id: int, held: list[tuple[str, holding.Held]], number: int
) -> None:
    """Read the user (batched, bounded) and apply it to their sockets, then end this recheck's hold
    of the sockets it held (``held``): at a socket's last hold, what waited goes on, to the rooms it
    is still in. A socket whose right went is refused at once, one the database could not answer for
    too. Each recheck ends only its own holds: a change that came meanwhile keeps its sockets held
    until its own read (the first's end released them all, dropping what waited for the second)."""
    lost: dict[str, DomainError] = {}  # sid: why it is refused
    left: dict[str, set[str]] = {}  # sid: the rooms this recheck made it leave
    try:
        async with asyncio.timeout(RECHECK_HOLD_SECONDS):  # the read and the rooms' together
            identity = await identities.get(user_id)
            if _newest.get(user_id) == number:  # else a newer change's read, made after this one, applies
                lost = await _apply(_local_sockets(manager, user_id), identity, left)
    except Exception as exc:
        if isinstance(exc, TimeoutError):  # RECHECK_HOLD_SECONDS: the database did not answer in time
            logger.warning("access_changed: user %s's rights not read in time: sockets refused", user_id)
        else:
            log_failure(logger, f"access recheck of user {user_id} (their sockets refused)", exc)
        unread = Unavailable("Your rights could not be read; reconnect with backoff")
        lost = {sid: unread for _, sid in _local_sockets(manager, user_id)}
    finally:
        if _newest.get(user_id) == number:
            del _newest[user_id]
    for sid, entry in held:  # what waited goes first, then what comes next (a socket gone meanwhile: let go)
        if sid in lost:
            continue
        if not await manager.drain(sid, entry, frozenset(left.get(sid, ()))):
            namespace = next((ns for ns, local in _local_sockets(manager, user_id) if local == sid), None)
            if namespace is not None:
                too_many = f"More than {holding.HOLD_MAX} events waited for your rights' recheck"
                await _refuse([(namespace, sid)], {sid: Unavailable(too_many)})
    await _refuse([(ns, sid) for ns, sid in _local_sockets(manager, user_id) if sid in lost], lost)
    for sid, entry in held:  # one that lost its right and went before its refusal: let go
        if sid in lost and manager.held.get(sid) is entry:
            manager.release(sid)


async def _apply(
    sockets: list[tuple[BaseNamespace, str]], identity: dict[str, Any] | None, left: dict[str, set[str]]
) -> dict[str, DomainError]:
    """Apply ``identity`` to each socket: the refused ones, with why (their rooms are left by the
    disconnect); the rooms the others leave are added to ``left`` (what was held for them there
    is dropped at the drain)."""
    lost: dict[str, DomainError] = {}
    for namespace, sid in sockets:
        reason, rooms = await namespace.apply_identity(sid, identity)
        if reason is not None:
            lost[sid] = Forbidden(reason)
        left.setdefault(sid, set()).update(rooms)
    return lost


async def _refuse(sockets: list[tuple[BaseNamespace, str]], errors: dict[str, DomainError]) -> None:
    """Refuse each socket with its error (``refuse_muted``); a partner's disconnect writes to the
    database, hence last. One socket's failure leaves the others' refusals to come."""
    for namespace, sid in sockets:
        try:
            await namespace.refuse_muted(sid, errors[sid])
        except Exception as exc:
            log_failure(logger, f"access_changed: refusing socket {sid}", exc)


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
            read_at = time.monotonic()
            identities = await db(load_identities)(batch)
            chunk = [session for session in sessions if batch[0] <= session["uid"] <= batch[-1]]
            for user_id in handler.stale_users(chunk, identities):
                # A change announced since the read began has its own, newer read (``access_changed``):
                # this one, made before it, would undo it (a demoted user staff again for a period).
                if not access_changed_since(user_id, read_at):
                    await handler.recheck(user_id, identities.get(user_id))
