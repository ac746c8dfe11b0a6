"""A fix's instant, its bounds, and the thinning of a job's trace (pure functions), with properties."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import ValidationError
from config.parsing import parse_instant
from partners.traces import TRACE_MIN_METERS, Fix, batch_of, keeps, recorded_at_of, thin

T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
# About 1.1 m of latitude per 1e-5 degree.
DEG_PER_M = 1 / 111_195


def fix(seconds: float, north_m: float = 0.0) -> Fix:
    return Fix(T0 + timedelta(seconds=seconds), 28.6 + north_m * DEG_PER_M, 77.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-06T10:00:00Z", T0),
        ("2026-12-06T15:30:00+05:30", T0),
        ("2026-12-06T10:00:00.250000+00:00", T0 + timedelta(milliseconds=250)),
        ("2026-12-06t10:00:00z", T0),
    ],
)
def test_an_instant_is_read_with_its_offset_into_utc(text, expected):
    at = parse_instant(text, field="recordedAt")
    assert at == expected and at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-06T10:00:00",  # no offset: whose clock?
        "2026-12-06",
        "yesterday",
        "",
        "0001-01-01T00:00:00+05:00",  # before the first instant in UTC
        "2026-12-06T10:00:00Z" + " " * 30,  # too long to read
        1765015200,  # a number is not an instant here
        None,
        True,
    ],
)
def test_anything_else_is_a_validation_error_naming_the_field(value):
    with pytest.raises(ValidationError) as caught:
        parse_instant(value, field="fixes.3.recordedAt")
    assert caught.value.details == {"fixes.3.recordedAt": ["not a date and time with an offset"]}


def test_bounds_two_minutes_ahead_and_a_day_old():
    now = T0
    ok = {"latitude": 1, "longitude": 2}
    assert recorded_at_of(ok, now) == now  # none sent: the server's time
    for inside in (now + timedelta(minutes=2), now - timedelta(hours=24)):
        assert recorded_at_of({**ok, "recordedAt": inside.isoformat()}, now) == inside
    for outside in (now + timedelta(minutes=3), now - timedelta(hours=25)):
        with pytest.raises(ValidationError) as caught:
            recorded_at_of({**ok, "recordedAt": outside.isoformat()}, now)
        assert caught.value.details == {"recordedAt": ["out of bounds"]}


def test_a_batch_is_sorted_and_counts_what_is_out_of_bounds_but_refuses_a_malformed_fix():
    now = T0
    items = [
        {"latitude": 1, "longitude": 2, "recordedAt": (now - timedelta(seconds=s)).isoformat()} for s in (5, 30, 10)
    ]
    items.append({"latitude": 1, "longitude": 2, "recordedAt": (now + timedelta(minutes=3)).isoformat()})
    items.append({"latitude": 1, "longitude": 2, "recordedAt": (now - timedelta(hours=25)).isoformat()})
    fixes, rejected = batch_of({"fixes": items}, now)
    assert rejected == 2
    assert [f.recorded_at for f in fixes] == [now - timedelta(seconds=s) for s in (30, 10, 5)]
    items.append({"latitude": 1, "longitude": 2, "recordedAt": "2026-12-06T10:00:00"})
    with pytest.raises(ValidationError) as caught:
        batch_of({"fixes": items}, now)
    assert list(caught.value.details) == ["fixes.5.recordedAt"]


def test_thinning_keeps_a_point_per_ten_seconds_or_per_25_metres_whichever_first():
    # Standing still, a fix every 2 s: one point per 10 s.
    still = [fix(s) for s in range(0, 31, 2)]
    assert sorted(set(thin(still, 10))) == [0, 5, 10, 15]
    # Driving 15 m/s, a fix a second: one point per 25 m (every other fix: 30 m), well before 10 s.
    driving = [fix(s, 15 * s) for s in range(0, 11)]
    assert sorted(set(thin(driving, 10))) == [0, 2, 4, 6, 8, 10]
    # A dropped fix stands behind the last point kept before it.
    assert thin(still, 10)[:6] == [0, 0, 0, 0, 0, 5]
    assert keeps(None, fix(0), 10)
    assert not keeps(fix(0), fix(9.9, TRACE_MIN_METERS - 1), 10)
    assert keeps(fix(0), fix(10), 10) and keeps(fix(0), fix(1, TRACE_MIN_METERS + 1), 10)


# A partner's fixes over a few minutes: distinct instants, positions a few hundred metres around.
_fixes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600_000),  # milliseconds
        st.floats(min_value=-300, max_value=300),  # metres north
    ),
    max_size=60,
    unique_by=lambda item: item[0],
).map(lambda items: [Fix(T0 + timedelta(milliseconds=ms), 28.6 + m * DEG_PER_M, 77.2) for ms, m in items])


@settings(max_examples=300, deadline=None)
@given(_fixes, st.sampled_from([1.0, 10.0, 30.0]))
def test_thinning_properties(fixes, min_seconds):
    ordered = sorted(fixes, key=lambda f: f.recorded_at)
    cover = thin(ordered, min_seconds)
    kept = sorted(set(cover))
    assert len(cover) == len(ordered)
    if ordered:
        assert kept[0] == 0  # the first fix is always a point
    for a, b in itertools.pairwise(kept):  # consecutive points: far enough apart in time or space
        assert keeps(ordered[a], ordered[b], min_seconds)
    for i, stands_for in enumerate(cover):  # a dropped fix: near its point in time and space, and after it
        assert stands_for <= i and stands_for in kept
        if stands_for != i:
            assert not keeps(ordered[stands_for], ordered[i], min_seconds)
            assert all(not (stands_for < k < i) for k in kept)
    # The same fixes in any order thin the same way once sorted (a replayed batch finds its points).
    reordered = sorted(reversed(fixes), key=lambda f: f.recorded_at)
    assert thin(reordered, min_seconds) == cover
