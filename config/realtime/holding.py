"""Sockets held while their user's rights are read again: what is sent to them waits, nothing else does.

An ``access_changed`` control keeps its order (``hooks.on_control``'s ``ordered``: nothing sent
after a user's rights changed reaches a socket that lost them) without waiting for the database
in the loop that carries every room's delivery: its sockets are *held* at once, the read runs as
a task of its own (``config.realtime.rechecks``), and the emits that meanwhile name a held socket
wait here for it. Once the rights are applied (rooms left, or the socket refused) they go on in
their order, except those sent only to rooms the recheck made it leave (a room closed meanwhile,
as a booking's at its end after its last status, does not drop what was sent there before).

Mixed into ``manager.ChannelLayerManager``, whose ``_handle_emit`` sets the held copies aside
(``set_aside``) once an event's offset is in place, while any socket is held: otherwise the
cost to an emit is one test of an empty dict.
"""

import asyncio
import logging
from collections import deque
from typing import Any

from config.errors import Unavailable

logger = logging.getLogger(__name__)

HOLD_MAX = 1000  # messages held per socket: past it the socket is refused at release (it connects again)
# The most a held socket's own request waits for the hold's end: a recheck's bound
# (``rechecks.RECHECK_HOLD_SECONDS``, 10 s) and its refusal's start; past it the request is refused.
REQUEST_WAIT = 12.0


class Held:
    """What waits for one socket: the messages, in order, each with the rooms it came through; or
    that there were too many; and how many rechecks hold it (a second ``access_changed`` may come
    while the first still ends)."""

    __slots__ = ("ended", "holds", "messages", "muted", "overflowed")

    def __init__(self) -> None:
        self.holds = 0
        self.messages: deque[tuple[dict[str, Any], list[str]]] = deque()
        self.overflowed = False
        self.muted = False  # a socket being refused: only ``release`` ends it, no drain
        self.ended: asyncio.Event | None = None  # made by the first request that waits for the end

    def end(self) -> None:
        if self.ended is not None:
            self.ended.set()


class HoldsSockets:
    """``hold``, ``set_aside``, ``drain`` and ``release`` for ``ChannelLayerManager``."""

    held: dict[str, Held]

    def hold(self, sid: str) -> Held:
        """What is sent to ``sid`` from now on waits until every hold of it has ended (``drain``), or
        the socket is refused (``release``). The entry returned is what ``drain`` ends a hold of."""
        entry = self.held.setdefault(sid, Held())
        entry.holds += 1
        return entry

    def release(self, sid: str) -> Held | None:
        """Ends every hold of ``sid``, dropping what waited (a socket refused); ``drain`` delivers it."""
        entry = self.held.pop(sid, None)
        if entry is not None:
            entry.end()
        return entry

    async def until_released(self, sid: str) -> None:
        """Wait while ``sid`` is held or muted: its own request must not be served with the rights
        its user may just have lost (a demoted staff user tracked another customer's booking, its
        snapshot in the ack, while the demotion's read waited). ``Unavailable`` past ``REQUEST_WAIT``.
        A lightweight event (a location) does not wait (``BaseNamespace.trigger_event``): its
        reader would, and where it goes (the booking's room) is what the recheck leaves."""
        try:
            async with asyncio.timeout(REQUEST_WAIT):
                while (entry := self.held.get(sid)) is not None:  # held anew meanwhile: wait again
                    if entry.ended is None:
                        entry.ended = asyncio.Event()
                    await entry.ended.wait()
        except TimeoutError:
            raise Unavailable("Your rights are being read again; retry shortly") from None

    def mute(self, sid: str) -> None:
        """Nothing sent to ``sid`` from now on reaches it, until ``release``: a socket refused, whose
        disconnect may wait on the database with the socket still in its rooms."""
        entry = self.held.setdefault(sid, Held())
        entry.messages, entry.overflowed, entry.muted = deque(), True, True

    def is_muted(self, sid: str) -> bool:
        """Being refused (``mute``): no recheck is owed to it, and no drain ends its silence."""
        entry = self.held.get(sid)
        return entry is not None and entry.muted

    def set_aside(self, message: dict[str, Any]) -> dict[str, Any]:
        """An emit (its offset in place) while sockets are held: each held recipient's copy waits,
        and the message returned skips them. Each room's members are met with the held sockets from
        the smaller side: a room of two costs two lookups however many sockets are held."""
        held = self.held
        waiting = self._held_recipients(message)
        if not waiting:
            return message
        for sid, via in waiting.items():
            entry = held[sid]
            if entry.overflowed:
                continue
            if len(entry.messages) < HOLD_MAX:
                entry.messages.append((message, via))
            else:  # refused at release, not grown: its client connects again and resyncs
                entry.messages, entry.overflowed = deque(), True
        skip = message.get("skip_sid")
        skip = [] if skip is None else skip if isinstance(skip, list) else [skip]
        return {**message, "skip_sid": [*skip, *waiting]}

    async def drain(self, sid: str, holding: Held, left: frozenset[str] = frozenset()) -> bool:
        """End one hold of ``sid``; at the last, deliver what waited, in order, then let it go: what
        is sent meanwhile waits its turn behind it. ``left``: the rooms this hold's recheck made it
        leave, a right lost: what came only through them is dropped now, whichever hold ends last.
        Not the rooms it is in *now*: a room closed while it was held (a booking's, after its last
        status) was its room when that status was sent. A hold taken meanwhile (another change of
        the user) keeps the rest for its own end: what came after that change waits for its read.
        ``False``: more than ``HOLD_MAX`` waited (the rest was dropped); the caller refuses the
        socket. ``holding`` is what ``hold`` returned: released meanwhile (the socket refused) and
        held anew, the hold is not this one's to end."""
        entry = self.held.get(sid)
        if entry is not holding:
            return True
        entry.holds -= 1
        if entry.muted:  # refused meanwhile: silent until its disconnect ends (``release``)
            return True
        if left:  # held before the rooms were left (nothing reaches it through them since)
            entry.messages = deque((message, via) for message, via in entry.messages if not left.issuperset(via))
        # Taken out as each goes: a hold taken while one is delivered stops this loop, and the
        # drain that ends it starts where this one stopped.
        while self.held.get(sid) is entry and not entry.holds and not entry.overflowed and entry.messages:
            message, _ = entry.messages.popleft()
            try:  # one that fails leaves the rest, and the hold's end, to come
                await self._deliver_now({**message, "room": sid, "skip_sid": None})
            except Exception:
                logger.exception("a held message for %s not delivered", sid)
        if entry.holds > 0:
            return True
        if self.held.get(sid) is entry:
            del self.held[sid]
            entry.end()
        return not entry.overflowed

    def _held_recipients(self, message: dict[str, Any]) -> dict[str, list[str]]:
        """The held sockets ``message`` reaches, each with the rooms it reaches them through."""
        held = self.held
        rooms = self.rooms.get(message.get("namespace"), {})  # type: ignore[attr-defined]
        room = message.get("room")
        skip = message.get("skip_sid")
        skipped = () if skip is None else set(skip) if isinstance(skip, list) else {skip}
        waiting: dict[str, list[str]] = {}
        for name in room if isinstance(room, list) else [room]:
            members = rooms.get(name)
            if not members:
                continue
            small, large = (members, held) if len(members) < len(held) else (held, members)
            for sid in small:
                if sid in large and sid not in skipped:
                    waiting.setdefault(sid, []).append(name)
        return waiting

    async def _deliver_now(self, message: dict[str, Any]) -> None:
        raise NotImplementedError
