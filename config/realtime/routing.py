"""Where a broker message goes: a room's own channel group, or the shared one.

Per-room delivery (contract 9.4): a process is in a room's group while it has a local
socket in that room, so a message for the room reaches only the processes that can
deliver it. A socket's own room (its sid) is a room like any other, so a disconnect or
an emit aimed at one socket reaches the one process that holds it.

The shared group carries what is addressed to no room: broadcasts, control messages
(kicks, presence, refreshes), ack callbacks, and an emit to a *list* of rooms. One copy
per room would reach a process with sockets in two of them twice; the product sends one
such event (``partner:assigned``, once per booking), so the shared group carries it.
"""

import hashlib
from typing import Any

from config.realtime.identity import user_room

SIO_METHODS = {"emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"}
_TO_ONE_SOCKET = {"disconnect", "enter_room", "leave_room"}


def room_group(shared: str, namespace: str, room: str) -> str:
    """The channel group of ``room`` in ``namespace``: a digest, so any room name makes a valid group name."""
    digest = hashlib.blake2b(f"{namespace}\x00{room}".encode(), digest_size=10).hexdigest()
    return f"{shared}.{digest}"


def group_of(shared: str, message: dict[str, Any]) -> str:
    """The group a message is published on (``shared`` unless it names one room or one socket)."""
    method = message.get("method")
    if method in ("emit", "close_room"):
        room = message.get("room")
        if isinstance(room, list) and len(room) == 1:
            room = room[0]
        if isinstance(room, str):
            return room_group(shared, message.get("namespace") or "/", room)
    elif method in _TO_ONE_SOCKET and isinstance(message.get("sid"), str):
        return room_group(shared, message.get("namespace") or "/", message["sid"])
    return shared


def kind_of(message: dict[str, Any]) -> str:
    """What a broker message is addressed to: a room, a user's room, everyone, one socket, or a control."""
    method = message.get("method")
    if not isinstance(method, str) or method not in SIO_METHODS:  # a list is unhashable: junk is a control
        return "control"
    room = message.get("room")
    if room is None:
        return "broadcast" if message.get("method") in ("emit", "close_room") else "socket"
    targets = room if isinstance(room, list) else [room]
    if all(isinstance(target, str) and target.startswith(user_room("")) for target in targets):
        return "user"
    return "room"
