"""The location hot path: validate fast, relay to the partner's booking rooms, buffer the write.

No query runs per update: the partner's active bookings sit on the socket's
session (refreshed by the ``partner_bookings`` control message when they
change), and last-known locations are written in one batch every
``LOCATION_FLUSH_INTERVAL`` seconds instead of once per update.
"""

import asyncio
import logging
import math
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from bookings import events
from config.errors import ValidationError
from config.realtime import rooms
from config.realtime.emit import emit_now
from config.realtime.manager import ChannelLayerManager, on_control, on_startup

logger = logging.getLogger(__name__)

_RANGES = {
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "accuracy": (0.0, 100_000.0),
    "heading": (0.0, 360.0),
    "speed": (0.0, 1_000.0),
}
_REQUIRED = ("latitude", "longitude")


def parse_location(payload: Any) -> tuple[float, float]:
    """``(latitude, longitude)`` of a ``location:update`` payload, every field range-checked."""
    if not isinstance(payload, dict):
        raise ValidationError("payload must be an object with latitude and longitude")
    for key, (low, high) in _RANGES.items():
        value = payload.get(key)
        if value is None:
            if key in _REQUIRED:
                raise ValidationError(f"{key} is required", details={key: ["required"]})
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(f"{key} must be a number", details={key: ["not a number"]})
        if not low <= value <= high:
            raise ValidationError(f"{key} must be between {low:g} and {high:g}", details={key: ["out of range"]})
    return float(payload["latitude"]), float(payload["longitude"])


class LocationBuffer:
    """Newest location per partner, written to the database in batches."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[float, float, datetime]] = {}

    def put(self, partner_id: int, latitude: float, longitude: float, at: datetime) -> None:
        self.pending[partner_id] = (latitude, longitude, at)

    def take(self, partner_id: int | None = None) -> dict[int, tuple[float, float, datetime]]:
        if partner_id is not None:
            item = self.pending.pop(partner_id, None)
            return {partner_id: item} if item else {}
        taken, self.pending = self.pending, {}
        return taken

    async def flush(self, partner_id: int | None = None) -> None:
        from config.realtime.namespace import db
        from partners.services import partner_locations_store

        batch = self.take(partner_id)
        if batch:
            await db(partner_locations_store)(batch)


locations = LocationBuffer()


async def relay_location(session: dict[str, Any], payload: Any) -> int:
    """Relay one update to the rooms of the partner's active bookings; returns how many."""
    latitude, longitude = parse_location(payload)
    now = datetime.now(UTC)
    timestamp = now.isoformat().replace("+00:00", "Z")
    booking_ids = session.get("bookings") or ()
    for booking_id in booking_ids:
        await emit_now(
            "partner:location_update",
            events.location_update(booking_id, latitude, longitude, timestamp),
            namespace=rooms.CUSTOMER,
            room=rooms.booking(booking_id),
        )
    locations.put(session["uid"], latitude, longitude, now)
    return len(booking_ids)


@on_control("partner_bookings")
async def _partner_bookings(manager: ChannelLayerManager, message: dict[str, Any]) -> None:
    """A partner's active bookings changed: update the sessions of their local sockets."""
    for sid, _ in list(manager.get_participants(rooms.PARTNER, rooms.user(message["user_id"]))):
        session = await manager.server.get_session(sid, namespace=rooms.PARTNER)
        session["bookings"] = list(message.get("bookings") or [])


@on_startup
def _start_flusher(manager: ChannelLayerManager) -> None:
    manager.start_task(_flush_forever())


async def _flush_forever() -> None:
    while True:
        await asyncio.sleep(settings.LOCATION_FLUSH_INTERVAL)
        try:
            await locations.flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("writing buffered partner locations failed")
