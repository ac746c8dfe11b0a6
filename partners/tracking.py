"""A partner's position: its one declaration, buffered, written in batches; the traces' retention
clock; and presence's keeper.

Last-known locations and a job's trace points are written in one batch every
``LOCATION_FLUSH_INTERVAL`` seconds instead of once per update; fixes older than
``TRACE_RETENTION_DAYS`` are deleted every ``TRACE_PRUNE_INTERVAL`` (``prune_forever``). Who sees the position (the
relay to the customers of the partner's bookings) is dispatch's business: ``bookings.relay``.

Only a fix newer than every fix known of the partner moves their position: the buffer keeps,
per partner connected to this process, the instant of the newest (seeded on connect from
``Partner.last_location_at``, which is written only forwards), so a late fix never moves a
customer's marker backwards. It and the trace's last kept point are forgotten when the
partner's last socket here goes.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from config import metrics
from config.hot_settings import hot
from config.realtime.catalogue import obj
from config.realtime.clock import every
from config.realtime.manager import ChannelLayerManager
from config.realtime.orm import db
from partners.location_store import (
    location_batch_store,
    location_fixes_prune,
    location_fixes_store,
    partner_locations_store,
)
from partners.services import partners_online
from partners.traces import BATCH_MAX, BOUNDS, Fix, fix_of, keeps_position, recorded_at_of, thin

logger = logging.getLogger(__name__)
# Trace points this process holds for the next write at most (a database away for a while);
# past it, new points are dropped (``homeservices_trace_points_dropped_total``).
TRACE_BUFFER_MAX = 200_000
PRUNE_CHUNK = 5_000  # fixes deleted per statement by the retention clock
PRUNE_CHUNKS = 200  # per tick at most (a million rows); the rest waits for the next tick

# The one declaration of a fix: the event catalogue checks every payload against it before the
# handler runs (jsonschema-rs, about 0.3 µs), so the relay only reads the numbers; a
# ``recordedAt``'s syntax and bounds are ``partners.traces``' (one parser, ``parse_instant``).
POSITION = {
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
}
RECORDED_AT = {
    "type": "string",
    "format": "date-time",
    "maxLength": 40,
    "description": f"when the phone recorded it: ISO 8601 with its offset, at most {BOUNDS}",
}
READINGS = {
    "accuracy": {"type": "number", "minimum": 0, "maximum": 100000},
    "heading": {"type": "number", "minimum": 0, "maximum": 360},
    "speed": {"type": "number", "minimum": 0, "maximum": 1000},
}
LOCATION_UPDATE = obj(POSITION, {**READINGS, "recordedAt": RECORDED_AT})
LOCATION_BATCH = obj(
    {"fixes": {"type": "array", "maxItems": BATCH_MAX, "items": obj({**POSITION, "recordedAt": RECORDED_AT}, READINGS)}}
)


def parse_location(payload: dict[str, Any]) -> tuple[float, float, float | None]:
    """``(latitude, longitude, speed)`` of a ``location:update`` payload.

    The namespace checked it against ``LOCATION_UPDATE`` before the handler ran
    (``config.realtime.catalogue.payload_problem``): every field here is a number in range.
    """
    speed = payload.get("speed")
    return float(payload["latitude"]), float(payload["longitude"]), None if speed is None else float(speed)


class LocationBuffer:
    """Per partner: the newest fix's instant, the newest location to write, the trace's last kept
    point and the trace points to write; written to the database in batches."""

    def __init__(self) -> None:
        self.pending: dict[int, tuple[float, float, datetime]] = {}
        self.newest: dict[int, datetime] = {}
        self.kept: dict[int, Fix] = {}
        self.trace: dict[int, list[Fix]] = {}
        self.trace_size = 0

    def seed(self, partner_id: int, at: datetime | None) -> None:
        """What the database knows of the partner's newest fix (on connect)."""
        if at is not None and (partner_id not in self.newest or self.newest[partner_id] < at):
            self.newest[partner_id] = at

    def record(self, partner_id: int, payload: dict[str, Any], *, trace: bool) -> datetime | None:
        """A live fix (``location:update``, checked against its schema): a trace point when ``trace``
        (the partner is on a job) and thinning keeps it; its instant when it is newer than every
        fix known (it moves the position), else ``None``. ``VALIDATION_ERROR`` for a bad ``recordedAt``.

        A ``recordedAt`` ahead of the server's clock (a phone's clock running fast, within the 2
        minutes allowed) moves the position as recorded *now*: else every server-timed update after
        it would be "older" and the marker would freeze until the server's clock caught up, and the
        stored position would claim an instant to come. The trace point keeps the phone's instant."""
        now = datetime.now(UTC)
        at = recorded_at_of(payload, now)
        latitude, longitude = float(payload["latitude"]), float(payload["longitude"])
        if trace:
            self._trace_live(partner_id, payload, at, latitude, longitude)
        at = min(at, now)
        return at if self.advance(partner_id, latitude, longitude, at) else None

    def advance(self, partner_id: int, latitude: float, longitude: float, at: datetime) -> bool:
        newest = self.newest.get(partner_id)
        if newest is not None and at <= newest:
            return False
        self.newest[partner_id] = at
        self.pending[partner_id] = (latitude, longitude, at)
        return True

    def _trace_live(
        self, partner_id: int, payload: dict[str, Any], at: datetime, latitude: float, longitude: float
    ) -> None:
        # A Fix is made only for a point the trace takes: most live fixes are thinned away.
        last = self.kept.get(partner_id)
        if last is not None and at <= last.recorded_at:
            # Late (older than the trace's last point): it fills the trace as it is; thinning goes
            # on from the newest point. The same instant twice is stored once anyway.
            if at < last.recorded_at:
                self._queue(partner_id, fix_of(payload, at))
            return
        if keeps_position(last, at, latitude, longitude, hot.TRACE_MIN_SECONDS):
            fix = self.kept[partner_id] = fix_of(payload, at)
            self._queue(partner_id, fix)

    def _queue(self, partner_id: int, fix: Fix) -> None:
        if self.trace_size >= TRACE_BUFFER_MAX:
            metrics.TRACE_POINTS_DROPPED.inc()
            return
        self.trace.setdefault(partner_id, []).append(fix)
        self.trace_size += 1

    async def store_batch(self, partner_id: int, fixes: list[Fix]) -> int:
        """Thin an offline batch (time order, distinct instants) and store its points at once (the
        ack counts what was there); how many of its fixes the server had already: a fix whose
        kept point (itself, or the one thinning kept for it) was stored before."""
        cover = thin(fixes, settings.TRACE_MIN_SECONDS)
        kept = [fixes[index] for index in sorted(set(cover))]
        existing = await db(location_batch_store)(partner_id=partner_id, fixes=kept)
        last = self.kept.get(partner_id)
        if kept and (last is None or last.recorded_at < kept[-1].recorded_at):
            # Live thinning goes on from the batch's newest point, once it is stored (a failed
            # write must not leave live fixes thinned against a point that is not there).
            self.kept[partner_id] = kept[-1]
        return sum(1 for index in cover if fixes[index].recorded_at in existing)

    def forget(self, partner_id: int) -> None:
        """The partner's last socket on this process went (after their buffer was written)."""
        self.newest.pop(partner_id, None)
        self.kept.pop(partner_id, None)

    def take(
        self, partner_id: int | None = None
    ) -> tuple[dict[int, tuple[float, float, datetime]], dict[int, list[Fix]]]:
        if partner_id is not None:
            item = self.pending.pop(partner_id, None)
            points = self.trace.pop(partner_id, [])
            self.trace_size -= len(points)
            return ({partner_id: item} if item else {}), ({partner_id: points} if points else {})
        taken, self.pending = self.pending, {}
        trace, self.trace, self.trace_size = self.trace, {}, 0
        return taken, trace

    async def flush(self, partner_id: int | None = None) -> None:
        batch, trace = self.take(partner_id)
        if not batch and not trace:
            return
        try:
            await db(write_buffered)(batch, trace)
        except BaseException:
            for pk, points in trace.items():  # kept for the next write, within the bound
                for fix in points:
                    self._queue(pk, fix)
            for pk, item in batch.items():  # unless a newer one came meanwhile
                self.pending.setdefault(pk, item)
            raise

    def unwritten(self) -> str | None:
        """What a stop leaves unwritten (the database did not answer): lost with the process."""
        if not self.pending and not self.trace_size:
            return None
        return (
            f"{len(self.pending)} partners' last locations and {self.trace_size} trace points not written"
            " (the database did not answer): lost; a partner's next fix, to whichever process, sets"
            " their location again, and the trace keeps a gap"
        )


def write_buffered(batch: dict[int, tuple[float, float, datetime]], trace: dict[int, list[Fix]]) -> None:
    """What one flush writes (on an ORM thread): the last locations, then the trace points."""
    if batch:
        partner_locations_store(batch)
    if trace:
        location_fixes_store([(pk, fix) for pk, points in trace.items() for fix in points])


locations = LocationBuffer()


def record_online(partner_ids: list[int], online: bool) -> None:
    """Presence's keeper for partners: connected partners are dispatchable (``online_until``)."""
    partners_online(partner_ids=partner_ids, online=online)


async def flush_on_stop(manager: ChannelLayerManager) -> None:
    """A stopping process writes the locations it buffered."""
    await locations.flush()


async def flush_forever() -> None:
    await every(settings.LOCATION_FLUSH_INTERVAL, locations.flush, "writing buffered partner locations")


async def prune_once(chunk: int = PRUNE_CHUNK) -> int:
    """Delete the fixes older than ``TRACE_RETENTION_DAYS``, ``chunk`` rows per statement, oldest
    first; how many went (the settings are bounded at start: ``config.settings.env_number``)."""
    before = datetime.now(UTC) - timedelta(days=settings.TRACE_RETENTION_DAYS)
    total = 0
    for _ in range(PRUNE_CHUNKS):
        deleted = await db(location_fixes_prune)(before=before, limit=chunk)
        total += deleted
        if deleted < chunk:
            break
        await asyncio.sleep(0.05)  # the pool's connections and the disk to live work between chunks
    return total


async def prune_forever() -> None:
    """The traces' retention clock (every ``TRACE_PRUNE_INTERVAL`` seconds, on every process)."""
    await every(settings.TRACE_PRUNE_INTERVAL, _prune_tick, "the traces' retention clock")


async def _prune_tick() -> None:
    deleted = await prune_once()
    if deleted:
        logger.info("deleted %d location fixes past TRACE_RETENTION_DAYS", deleted)
