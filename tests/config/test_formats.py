"""``config.formats.iso``: the one spelling of a time on the wire, whatever came before it."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from config.formats import iso


def spelled(value: datetime) -> str:
    """DRF's spelling: ``isoformat`` in UTC, ``Z`` for the offset."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_iso_spells_each_time_as_drf_does_in_any_order():
    start = datetime(2026, 12, 31, 23, 59, 58, 999_999, tzinfo=UTC)
    times = [start + timedelta(microseconds=step) for step in (0, 1, 2, 1_000_000, 999_998, 0, 3_000_000)]
    times += [
        datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC),  # no fraction
        datetime(2026, 5, 1, 10, 0, 0, 5, tzinfo=UTC),  # the same second, a fraction
        datetime(2026, 5, 1, 15, 30, 0, 7, tzinfo=ZoneInfo("Asia/Kolkata")),  # the same instant, elsewhere
        datetime(2026, 5, 1, 10, 0, 0, 7, tzinfo=timezone(timedelta(0))),  # another UTC
        datetime(2027, 5, 1, 10, 0, 0, 7, tzinfo=UTC),  # the same clock time, a year on
    ]
    # The same second of the minute, each other field moved on in turn: each one is in the cache's key.
    times += [datetime(2027, 5, 1, 10, 1, 0, tzinfo=UTC), datetime(2027, 5, 1, 11, 1, 0, tzinfo=UTC)]
    times += [datetime(2027, 5, 2, 11, 1, 0, tzinfo=UTC), datetime(2027, 6, 2, 11, 1, 0, tzinfo=UTC)]
    assert [iso(value) for value in times] == [spelled(value) for value in times]
    assert iso(None) is None
