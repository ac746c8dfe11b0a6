"""A job's fixes in the database: stored once per (partner, instant), deleted past retention by the clock,
a chunk at a time, without holding up live inserts."""

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from partners.location_store import (
    location_batch_store,
    location_fixes_prune,
    location_fixes_store,
    partner_locations_store,
)
from partners.models import LocationFix, Partner
from partners.traces import Fix
from partners.tracking import LocationBuffer, prune_once
from tests.factories import PartnerFactory, UserFactory
from tests.live import ServerProcess, database_url, eventually, server_env

NOW = datetime.now(UTC).replace(microsecond=0)


def fixes(partner, *ages: timedelta) -> list[tuple[int, Fix]]:
    return [(partner.pk, Fix(NOW - age, 28.6, 77.2, 5.0, 3.0, 90.0)) for age in ages]


def instants(partner) -> list[datetime]:
    rows = LocationFix.objects.filter(partner=partner).order_by("recorded_at")
    return list(rows.values_list("recorded_at", flat=True))


@pytest.mark.django_db
def test_a_fix_is_stored_once_per_partner_and_instant():
    a, b = PartnerFactory(), PartnerFactory()
    location_fixes_store([*fixes(a, timedelta(0), timedelta(seconds=10)), *fixes(b, timedelta(0))])
    location_fixes_store(fixes(a, timedelta(0)))  # again: skipped
    assert instants(a) == [NOW - timedelta(seconds=10), NOW] and instants(b) == [NOW]
    row = LocationFix.objects.get(partner=a, recorded_at=NOW)
    assert (row.latitude, row.longitude, row.accuracy, row.speed, row.heading) == (28.6, 77.2, 5.0, 3.0, 90.0)
    batch = [fix for _, fix in fixes(a, timedelta(seconds=10), timedelta(seconds=20))]
    assert location_batch_store(partner_id=a.pk, fixes=batch) == {NOW - timedelta(seconds=10)}
    assert len(instants(a)) == 3


@pytest.mark.django_db
def test_one_write_takes_points_with_and_without_readings_and_the_largest_partner_id():
    """On PostgreSQL each column travels as one binary array (its element type picked from the
    values): NULLs among numbers, a small id with the largest (``auth.User``'s key is an int4)."""
    small, big = PartnerFactory(), PartnerFactory(user=UserFactory(id=2**31 - 1))
    location_fixes_store(
        [
            (small.pk, Fix(NOW, 28.6, 77.2)),
            (small.pk, Fix(NOW - timedelta(seconds=10), 28.5, 77.1, 5.0, None, 90.0)),
            (big.pk, Fix(NOW, 1.0, 2.0, 3.0, 4.0, 5.0)),
        ]
    )
    rows = LocationFix.objects.order_by("partner_id", "recorded_at")
    assert list(rows.values_list("partner_id", "recorded_at", "latitude", "accuracy", "speed", "heading")) == [
        (small.pk, NOW - timedelta(seconds=10), 28.5, 5.0, None, 90.0),
        (small.pk, NOW, 28.6, None, None, None),
        (big.pk, NOW, 1.0, 3.0, 4.0, 5.0),
    ]
    partner_locations_store({small.pk: (1.5, 2.5, NOW), big.pk: (-3.5, 4.5, NOW)})
    stored = Partner.objects.order_by("pk").values_list("pk", "last_latitude", "last_longitude", "last_location_at")
    assert list(stored) == [(small.pk, 1.5, 2.5, NOW), (big.pk, -3.5, 4.5, NOW)]


@pytest.mark.django_db(transaction=True)  # the buffer writes on the ORM's threads
def test_the_live_buffer_writes_its_trace_points_with_the_last_locations(settings):
    settings.TRACE_MIN_SECONDS = 10
    partner = PartnerFactory()
    buffer = LocationBuffer()
    for seconds in (0, 4, 8, 12, 30):  # standing still: a point per 10 s
        at = (NOW + timedelta(seconds=seconds)).isoformat()
        assert buffer.record(partner.pk, {"latitude": 28.6, "longitude": 77.2, "recordedAt": at}, trace=True)
    buffer.record(partner.pk, {"latitude": 28.6, "longitude": 77.2}, trace=False)  # off the trace: position only
    assert buffer.trace_size == 3
    async_to_sync(buffer.flush)()
    assert instants(partner) == [NOW, NOW + timedelta(seconds=12), NOW + timedelta(seconds=30)]
    assert buffer.trace == {} and buffer.trace_size == 0 and buffer.pending == {}


@pytest.mark.django_db(transaction=True)
def test_retention_deletes_old_fixes_a_chunk_at_a_time_oldest_first(settings):
    settings.TRACE_RETENTION_DAYS = 90
    partner = PartnerFactory()
    old = [timedelta(days=91, minutes=m) for m in range(7)]
    location_fixes_store(fixes(partner, *old, timedelta(days=89), timedelta(0)))
    assert location_fixes_prune(before=NOW - timedelta(days=90), limit=3) == 3
    oldest_left = NOW - timedelta(days=91, minutes=3)
    assert instants(partner)[0] == oldest_left  # the three oldest went first
    assert async_to_sync(prune_once)(chunk=3) == 4  # chunks of 3, 3 and 1
    assert instants(partner) == [NOW - timedelta(days=89), NOW]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_chunk_being_deleted_holds_up_neither_live_inserts_nor_another_process_pruning():
    import psycopg

    partner = PartnerFactory()
    location_fixes_store(fixes(partner, *[timedelta(days=100, seconds=s) for s in range(6)]))
    table = LocationFix._meta.db_table
    with psycopg.connect(database_url().replace("postgres://", "postgresql://")) as other:
        # Another process's chunk, not committed yet: the two oldest rows locked.
        deleted = other.execute(
            f"DELETE FROM {table} WHERE (partner_id, recorded_at) IN (SELECT partner_id, recorded_at FROM {table} "
            "WHERE recorded_at < %s ORDER BY recorded_at LIMIT 2 FOR UPDATE SKIP LOCKED)",
            [NOW - timedelta(days=90)],
        ).rowcount
        assert deleted == 2
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")  # a wait would fail the test, not hang it
        location_fixes_store(fixes(partner, timedelta(0)))  # a live insert goes through
        assert location_fixes_prune(before=NOW - timedelta(days=90), limit=10) == 4  # the locked two skipped
        other.rollback()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    assert len(instants(partner)) == 3  # the other's two (rolled back) and the live one


@pytest.mark.django_db(transaction=True)
def test_the_clock_deletes_fixes_past_retention_on_a_running_server():
    partner = PartnerFactory()
    location_fixes_store(fixes(partner, timedelta(days=2), timedelta(days=1, hours=1), timedelta(hours=23)))
    server = ServerProcess(server_env(TRACE_RETENTION_DAYS="1", TRACE_PRUNE_INTERVAL="0.2")).start()
    try:
        eventually(lambda: instants(partner) == [NOW - timedelta(hours=23)], timeout=10, what="the old fixes gone")
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)  # the buffer writes on the ORM's threads
def test_a_partner_deleted_with_points_buffered_does_not_block_everyone_elses_trace():
    """A partner's account deleted while this process held trace points of theirs: the insert broke
    the foreign key, the whole write failed and was queued again, every flush after it failed the
    same way, and no partner's trace on the process was ever written again (until the queue filled
    and dropped points). The deleted partner's points go; everyone else's are written."""
    kept, gone = PartnerFactory(), PartnerFactory()
    buffer = LocationBuffer()
    for partner in (kept, gone):
        at = NOW.isoformat()
        assert buffer.record(partner.pk, {"latitude": 28.6, "longitude": 77.2, "recordedAt": at}, trace=True)
    gone.user.delete()
    async_to_sync(buffer.flush)()
    assert instants(kept) == [NOW]
    assert buffer.trace == {} and buffer.trace_size == 0


@pytest.mark.django_db(transaction=True)  # the buffer writes on the ORM's threads
def test_a_hostile_phone_cannot_store_more_than_a_point_a_second_of_its_time(settings):
    """Thinning's "or per 25 m moved" let a client store every fix: 500 fixes 1 µs apart, each 25 m
    from the one before, all kept; the next batch shifted by a microsecond, 500 more, and so on at
    the batch rate limit (about 500 rows a second per partner). A job's trace keeps at most one
    point per second of recorded time however far the fixes jump (no phone fixes faster), within a
    batch, across batches and against the live trace."""
    settings.TRACE_MIN_SECONDS = 10
    partner = PartnerFactory()
    buffer = LocationBuffer()
    start = NOW - timedelta(minutes=30)

    def batch(shift_us: int) -> list[Fix]:
        hops = [(i * 25.5) / 111_195 for i in range(500)]  # each fix 25.5 m north of the one before
        return [
            Fix(start + timedelta(microseconds=2000 * i + shift_us), 28.6 + hop, 77.2) for i, hop in enumerate(hops)
        ]

    for shift in range(5):
        async_to_sync(buffer.store_batch)(partner.pk, batch(shift))
    for i in range(20):  # late live fixes, 1 µs apart, far from each other: stored once a second at most
        fix = {"latitude": 10 + i, "longitude": 77.2, "recordedAt": (start + timedelta(microseconds=3 + i)).isoformat()}
        buffer.record(partner.pk, fix, trace=True)
    async_to_sync(buffer.flush)()
    assert len(instants(partner)) == 1  # all within one second (500 fixes 2 ms apart)
