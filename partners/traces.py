"""A partner's fixes: what a phone recorded, when, and which of them a job's trace keeps (contract 10.3).

A *fix* is one position the phone recorded at ``recordedAt`` (an instant with its offset,
``config.parsing.parse_instant``), sent live (``location:update``) or later, in an offline
batch (``location:batch``). It is acceptable from 24 hours old to 2 minutes ahead of the
server's clock (a phone's clock runs a little fast or slow); outside that, a batch counts it
``rejected`` and a ``location:update`` is refused ``VALIDATION_ERROR``.

*Thinning*: a job's trace keeps a fix when at least ``TRACE_MIN_SECONDS`` passed since the
last point it kept, or the partner moved at least ``TRACE_MIN_METERS`` from it, whichever
comes first, and never two points within ``TRACE_MIN_GAP`` (the write holds it against the
points stored before too: ``partners.location_store.location_fixes_store``). Pure functions
here; the buffer and its writes are ``partners.tracking``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.errors import ValidationError
from config.parsing import parse_instant
from partners.geo import distance_m

MAX_AHEAD = timedelta(minutes=2)
MAX_AGE = timedelta(hours=24)
TRACE_MIN_METERS = 25.0
# Never two points of a partner closer in time than this (or TRACE_MIN_SECONDS, if smaller),
# however far apart: no phone fixes faster, and "per 25 m moved" would otherwise store every fix
# a client makes up (500 a batch, 25 m and a microsecond apart).
TRACE_MIN_GAP = 1.0
BATCH_MAX = 500  # fixes in one location:batch (the schema's maxItems)
# The bounds in words, for the refusal and the events' description.
BOUNDS = f"{MAX_AGE // timedelta(hours=1)} h old and {MAX_AHEAD // timedelta(minutes=1)} min ahead"


@dataclass(frozen=True, slots=True)
class Fix:
    recorded_at: datetime  # aware, UTC
    latitude: float
    longitude: float
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None


def _number(payload: dict[str, Any], key: str) -> float | None:
    value = payload.get(key)
    return None if value is None else float(value)


def fix_of(payload: dict[str, Any], recorded_at: datetime) -> Fix:
    """The fix a payload describes (its numbers were checked against the event's schema)."""
    return Fix(
        recorded_at,
        float(payload["latitude"]),
        float(payload["longitude"]),
        _number(payload, "accuracy"),
        _number(payload, "speed"),
        _number(payload, "heading"),
    )


def in_bounds(recorded_at: datetime, now: datetime) -> bool:
    return now - MAX_AGE <= recorded_at <= now + MAX_AHEAD


def recorded_at_of(payload: dict[str, Any], now: datetime, *, field: str = "recordedAt") -> datetime:
    """A live update's instant: its ``recordedAt`` (within bounds, else ``VALIDATION_ERROR``), or now."""
    value = payload.get("recordedAt")
    if value is None:
        return now
    at = parse_instant(value, field=field)
    if not in_bounds(at, now):
        raise ValidationError(f"{field} must be at most {BOUNDS}", details={field: ["out of bounds"]})
    return at


def batch_of(payload: dict[str, Any], now: datetime | None = None) -> tuple[list[Fix], int]:
    """A ``location:batch``'s fixes within bounds, in time order, and how many were out of bounds.

    Every ``recordedAt`` is parsed before anything else happens: one malformed fix refuses the
    whole batch (``VALIDATION_ERROR`` naming it), so a batch is stored whole or not at all.
    """
    now = now or datetime.now(UTC)
    fixes = [
        fix_of(item, parse_instant(item["recordedAt"], field=f"fixes.{i}.recordedAt"))
        for i, item in enumerate(payload["fixes"])
    ]
    kept = [fix for fix in fixes if in_bounds(fix.recorded_at, now)]
    kept.sort(key=lambda fix: fix.recorded_at)
    return kept, len(fixes) - len(kept)


def keeps(last: Fix | None, fix: Fix, min_seconds: float) -> bool:
    """Whether the trace keeps ``fix``, ``last`` being the point it kept before it (if any)."""
    return keeps_position(last, fix.recorded_at, fix.latitude, fix.longitude, min_seconds)


def keeps_position(last: Fix | None, at: datetime, latitude: float, longitude: float, min_seconds: float) -> bool:
    """``keeps`` of a position recorded ``at``, before any ``Fix`` is made of it (the live path's)."""
    if last is None:
        return True
    gap = (at - last.recorded_at).total_seconds()
    if gap >= min_seconds:
        return True
    if gap < min(TRACE_MIN_GAP, min_seconds):
        return False
    return distance_m(last.latitude, last.longitude, latitude, longitude) >= TRACE_MIN_METERS


def thin(fixes: Sequence[Fix], min_seconds: float) -> list[int]:
    """For each fix of a batch (in time order, no two at one instant), the index of the kept fix that
    stands for it: its own when the trace keeps it, else the last kept before it.

    A batch is thinned on its own, never against points stored before: the same batch thins the
    same way every time, so a replayed batch finds its every kept point stored already.
    """
    cover: list[int] = []
    last: Fix | None = None
    for index, fix in enumerate(fixes):
        if keeps(last, fix, min_seconds):
            last = fix
            cover.append(index)
        else:
            cover.append(cover[-1])
    return cover
