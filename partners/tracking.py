"""A partner's position: its one declaration, buffered, written in batches; and presence's keeper.

Last-known locations are written in one batch every ``LOCATION_FLUSH_INTERVAL`` seconds
instead of once per update. Who sees the position (the relay to the customers of the
partner's bookings) is dispatch's business: ``bookings.relay``.
"""

import asyncio
import logging
from datetime import datetime
from typing import Any

from django.conf import settings

from config.realtime.catalogue import obj
from config.realtime.manager import ChannelLayerManager
from config.realtime.orm import db
from partners.services import partner_locations_store, partners_online

logger = logging.getLogger(__name__)

# The one declaration of a location:update: the event catalogue checks every payload against it
# before the handler runs (jsonschema-rs, about 0.3 µs), so the relay only reads the numbers.
LOCATION_UPDATE = obj(
    {
        "latitude": {"type": "number", "minimum": -90, "maximum": 90},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180},
    },
    {
        "accuracy": {"type": "number", "minimum": 0, "maximum": 100000},
        "heading": {"type": "number", "minimum": 0, "maximum": 360},
        "speed": {"type": "number", "minimum": 0, "maximum": 1000},
    },
)


def parse_location(payload: dict[str, Any]) -> tuple[float, float, float | None]:
    """``(latitude, longitude, speed)`` of a ``location:update`` payload.

    The namespace checked it against ``LOCATION_UPDATE`` before the handler ran
    (``config.realtime.catalogue.payload_problem``): every field here is a number in range.
    """
    speed = payload.get("speed")
    return float(payload["latitude"]), float(payload["longitude"]), None if speed is None else float(speed)


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
        batch = self.take(partner_id)
        if batch:
            await db(partner_locations_store)(batch)


locations = LocationBuffer()


def record_online(partner_ids: list[int], online: bool) -> None:
    """Presence's keeper for partners: connected partners are dispatchable (``online_until``)."""
    partners_online(partner_ids=partner_ids, online=online)


async def flush_on_stop(manager: ChannelLayerManager) -> None:
    """A stopping process writes the locations it buffered."""
    await locations.flush()


async def flush_forever() -> None:
    while True:
        await asyncio.sleep(settings.LOCATION_FLUSH_INTERVAL)
        try:
            await locations.flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("writing buffered partner locations failed")
