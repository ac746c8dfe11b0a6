"""Where an event's recovery offset sits in an outgoing packet, and whether a replay carried it.

A recovered socket gets what it missed from the log, then live packets. One event can come
both ways: logged before the log was read, published after. These helpers let the
recovering connection (``config.realtime.recovering``) drop the live copy of what the
replay already sent.
"""

import re
from typing import Any

from engineio import packet as eio_packet
from socketio import packet

from config.realtime import recovery_store

# The offset at the end of an encoded EVENT packet: 2/namespace,["event",{...},"1700000000000-0"]
_ENCODED_OFFSET = re.compile(r'^2(/[^,]*)?,.*,"(\d+-\d+)"\]$', re.S)


def is_offset(value: Any) -> bool:
    return isinstance(value, str) and recovery_store.OFFSET.match(value) is not None


def namespace_of(item: Any) -> str | None:
    """The namespace a Socket.IO packet (encoded or not) is for; ``None``: an Engine.IO packet of the session."""
    if not isinstance(item, eio_packet.Packet):
        return item.namespace or "/"
    if item.packet_type != eio_packet.MESSAGE or not isinstance(item.data, str):
        return None
    body = item.data[1:]  # after the Socket.IO packet type
    if not body.startswith("/"):
        return "/"
    return body.split(",", 1)[0]


def is_event(item: Any) -> bool:
    """Whether a packet (encoded or not) carries an event, or a binary event's attachment."""
    if not isinstance(item, eio_packet.Packet):
        return item.packet_type in (packet.EVENT, packet.BINARY_EVENT)
    if item.packet_type != eio_packet.MESSAGE:
        return False
    return not isinstance(item.data, str) or item.data[:1] in (str(packet.EVENT), str(packet.BINARY_EVENT))


def offset_of(item: Any, namespace: str) -> str | None:
    """The offset an EVENT packet of ``namespace`` carries (encoded or not), if any."""
    if isinstance(item, eio_packet.Packet):
        found = _ENCODED_OFFSET.match(item.data) if isinstance(item.data, str) else None
        if found and (found.group(1) or "/") == namespace:
            return found.group(2)
        return None
    data = item.data
    if item.packet_type == packet.EVENT and (item.namespace or "/") == namespace and isinstance(data, list):
        last = data[-1] if data else None
        return last if is_offset(last) else None
    return None


def carried(item: Any, namespace: str, replayed_to: str) -> bool:
    """Whether a replay up to ``replayed_to`` already sent this packet's event."""
    offset = offset_of(item, namespace)
    return offset is not None and recovery_store.offset_key(offset) <= recovery_store.offset_key(replayed_to)
