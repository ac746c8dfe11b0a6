"""Sockets held while their user's rights are read again: what is sent to them waits, nothing else does.

An ``access_changed`` control keeps its order (``hooks.on_control``'s ``ordered``: nothing sent
after a user's rights changed reaches a socket that lost them) without waiting for the database
in the loop that carries every room's delivery: its sockets are *held* at once, the read runs as
a task of its own (``config.realtime.rechecks``), and the emits that meanwhile name a held socket
wait here for it. Once the rights are applied (rooms left, or the socket refused) they go on in
their order, each only if the socket is still in its room.

Mixed into ``manager.ChannelLayerManager``: ``deliver`` is the step of its ``_handle_emit``
after an event's offset is in place.
"""

from typing import Any

HOLD_MAX = 1000  # messages held per socket: past it the socket is refused at release (it reconnects and recovers)


class Held:
    """What waits for one socket: the messages, in order, or that there were too many."""

    __slots__ = ("messages", "overflowed")

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.overflowed = False


class HoldsSockets:
    """``hold``, ``release`` and ``deliver`` for ``ChannelLayerManager``."""

    held: dict[str, Held]

    def hold(self, sid: str) -> None:
        """What is sent to ``sid`` from now on waits for ``release`` (a second hold changes nothing)."""
        self.held.setdefault(sid, Held())

    def release(self, sid: str) -> Held | None:
        """Ends the hold: what waited, for the caller to deliver (``deliver_held``) or drop."""
        return self.held.pop(sid, None)

    async def deliver(self, message: dict[str, Any]) -> None:
        """An emit with its offset in place: to every recipient but a held one, whose copy waits."""
        held = self.held
        if held:  # empty but while a user's rights are read
            waiting = self._held_recipients(message, held)
            if waiting:
                for sid in waiting:
                    entry = held[sid]
                    if len(entry.messages) < HOLD_MAX:
                        entry.messages.append(message)
                    else:
                        entry.messages, entry.overflowed = [], True  # refused at release, not grown
                skip = message.get("skip_sid")
                skip = [] if skip is None else skip if isinstance(skip, list) else [skip]
                message = {**message, "skip_sid": [*skip, *waiting]}
        await self._deliver_now(message)

    async def deliver_held(self, sid: str, entry: Held) -> None:
        """The messages held for ``sid``, in order, each only if the socket is still in one of its
        rooms: a room left at the recheck was a right lost, and what was sent there is not its."""
        for message in entry.messages:
            if self._addressed_to(sid, message):
                await self._deliver_now({**message, "room": sid, "skip_sid": None})

    def _held_recipients(self, message: dict[str, Any], held: dict[str, Held]) -> list[str]:
        return [sid for sid in held if self._addressed_to(sid, message)]

    def _addressed_to(self, sid: str, message: dict[str, Any]) -> bool:
        skip = message.get("skip_sid")
        if sid == skip or (isinstance(skip, list) and sid in skip):
            return False
        rooms = self.rooms.get(message.get("namespace"), {})  # type: ignore[attr-defined]
        room = message.get("room")
        names = room if isinstance(room, list) else [room]
        return any(sid in rooms.get(name, ()) for name in names)

    async def _deliver_now(self, message: dict[str, Any]) -> None:
        raise NotImplementedError
