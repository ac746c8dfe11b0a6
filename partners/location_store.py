"""Where partners' positions are written: their last locations and their job traces' points.

Batched raw SQL, called on the ORM threads (``partners.tracking``: the buffer's flush, an offline
batch, the retention prune), which share the GIL with the socket loop: what a write costs this
process in Python decides how it is written (docs/performance.md, "Where the time goes").
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from config.binary_arrays import array_cursor
from partners.models import LocationFix, Partner
from partners.traces import TRACE_MIN_GAP, Fix


def partner_locations_store(locations: dict[int, tuple[float, float, Any]]) -> None:
    """Write buffered last-known locations: one ``UPDATE ... FROM`` per 500 partners, in one transaction.

    A location older than the one stored is skipped (another process wrote a newer fix of the
    partner's), so the stored position never moves back in time either.

    Raw SQL because the ORM would compile one statement per partner (about 1.5 ms of
    CPU each, holding the GIL the socket loop needs). On PostgreSQL the rows travel as one binary
    array per column (``config.binary_arrays``); SQLite (>= 3.33) takes a VALUES list.
    """
    table = connection.ops.quote_name(Partner._meta.db_table)
    rows = [(pk, lat, lng, at) for pk, (lat, lng, at) in sorted(locations.items())]
    postgresql = connection.vendor == "postgresql"
    with transaction.atomic(), array_cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            if postgresql:
                rows_sql = "SELECT * FROM unnest(%b::bigint[], %b::float8[], %b::float8[], %b::timestamptz[])"
                params = [list(column) for column in zip(*chunk, strict=True)]
            else:
                rows_sql = "VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                params = [value for row in chunk for value in row]
            # On PostgreSQL the rows are locked in primary-key order first (``locked``; an UPDATE ... FROM
            # visits them in its plan's order): the presence writes (``services.partners_online``) lock
            # the same rows so, side by side at a stop, or a heartbeat beside this flush, and two orders
            # deadlock. Every row lock is taken there; the UPDATE touches only rows it already holds.
            locked = (
                f", locked AS (SELECT user_id FROM {table} WHERE user_id IN (SELECT id FROM v) "
                f"ORDER BY user_id FOR NO KEY UPDATE)"
                if postgresql
                else ""
            )
            cursor.execute(
                f"WITH v(id, lat, lng, at) AS ({rows_sql}){locked} "
                f"UPDATE {table} SET last_latitude = v.lat, last_longitude = v.lng, last_location_at = v.at "
                f"FROM v WHERE {table}.user_id = v.id "
                + (f"AND {table}.user_id IN (SELECT user_id FROM locked) " if postgresql else "")
                + f"AND ({table}.last_location_at IS NULL OR {table}.last_location_at < v.at)",
                params,
            )


def location_fixes_store(fixes: "list[tuple[int, Fix]]") -> None:
    """Write trace points ``(partner id, fix)``, each once: a (partner, ``recorded_at``) stored
    already is skipped (``ON CONFLICT DO NOTHING``), and so is a partner deleted since the point
    was buffered (else the foreign key fails the whole write, and every write after it: nobody's
    trace is written again), and a point with one of the partner's stored points within the gap
    either side. One INSERT per 5,000 rows, in one transaction.

    Raw SQL for the reason above. On PostgreSQL the rows travel as one binary array per column
    (``unnest``, ``config.binary_arrays``): a VALUES list cost about 38 µs of CPU per point, text
    arrays 13, binary ones 3 (``bench/flush_writes.py``). SQLite takes a VALUES list.
    """
    gap = timedelta(seconds=max(0.0, min(TRACE_MIN_GAP, settings.TRACE_MIN_SECONDS)))
    fixes = _spaced(fixes, gap)
    write = _fixes_unnest if connection.vendor == "postgresql" else _fixes_values
    with transaction.atomic(), array_cursor() as cursor:
        for start in range(0, len(fixes), 5000):
            write(cursor, fixes[start : start + 5000], gap)


_COLUMNS = "partner_id, recorded_at, latitude, longitude, accuracy, speed, heading"


def _fixes_sql(rows: str) -> str:
    """The INSERT of trace points read from ``v``, which ``rows`` (a WITH clause) defines."""
    table = connection.ops.quote_name(LocationFix._meta.db_table)
    partners = connection.ops.quote_name(Partner._meta.db_table)
    # OFFSET 0 keeps PostgreSQL from turning the probe into an anti join whose range filter
    # reads all the partner's points for each row (10 times slower on 5,000 points).
    return (
        f"{rows} INSERT INTO {table} ({_COLUMNS}) "
        f"SELECT v.partner_id, v.recorded_at, v.latitude, v.longitude, v.accuracy, v.speed, v.heading FROM v "
        f"WHERE v.partner_id IN (SELECT user_id FROM {partners}) AND NOT EXISTS (SELECT 1 FROM {table} s "
        f"WHERE s.partner_id = v.partner_id AND s.recorded_at > v.lo AND s.recorded_at < v.hi "
        f"LIMIT 1 OFFSET 0) "
        f"ON CONFLICT DO NOTHING"
    )


def _fixes_unnest(cursor: Any, chunk: "list[tuple[int, Fix]]", gap: timedelta) -> None:
    rows = (
        f"WITH v AS (SELECT u.*, u.recorded_at - %s::interval AS lo, u.recorded_at + %s::interval AS hi FROM unnest("
        f"%b::bigint[], %b::timestamptz[], %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::float8[]"
        f") AS u({_COLUMNS}))"
    )
    columns = [
        [pk for pk, _ in chunk],
        [fix.recorded_at for _, fix in chunk],
        [fix.latitude for _, fix in chunk],
        [fix.longitude for _, fix in chunk],
        [fix.accuracy for _, fix in chunk],
        [fix.speed for _, fix in chunk],
        [fix.heading for _, fix in chunk],
    ]
    cursor.execute(_fixes_sql(rows), [gap, gap, *columns])


def _fixes_values(cursor: Any, chunk: "list[tuple[int, Fix]]", gap: timedelta) -> None:
    adapt = connection.ops.adapt_datetimefield_value
    for start in range(0, len(chunk), 500):  # SQLite's bound on a statement's parameters
        part = chunk[start : start + 500]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
        params = [
            value
            for pk, fix in part
            for value in (
                pk,
                adapt(fix.recorded_at),
                adapt(fix.recorded_at - gap),
                adapt(fix.recorded_at + gap),
                fix.latitude,
                fix.longitude,
                fix.accuracy,
                fix.speed,
                fix.heading,
            )
        ]
        columns = "partner_id, recorded_at, lo, hi, latitude, longitude, accuracy, speed, heading"
        rows = f"WITH v({columns}) AS (VALUES {values})"
        cursor.execute(_fixes_sql(rows), params)


def _spaced(fixes: "list[tuple[int, Fix]]", gap: timedelta) -> "list[tuple[int, Fix]]":
    """The points of one write, per partner no two within ``gap`` (the first in time stays): the
    write's check against stored points cannot see the rows of its own statement."""
    if not gap:
        return fixes
    spaced: list[tuple[int, Fix]] = []
    for pk, fix in sorted(fixes, key=lambda item: (item[0], item[1].recorded_at)):
        if spaced and spaced[-1][0] == pk and fix.recorded_at - spaced[-1][1].recorded_at < gap:
            continue
        spaced.append((pk, fix))
    return spaced


def location_batch_store(*, partner_id: int, fixes: "list[Fix]") -> set[Any]:
    """Store an offline batch's trace points; returns the instants among them stored already.

    Read then written (two statements): what was there is the ack's ``duplicates``. Two batches
    of one partner racing each other may both count a fix new; it is still stored once.
    """
    times = [fix.recorded_at for fix in fixes]
    stored = LocationFix.objects.filter(partner_id=partner_id, recorded_at__in=times)
    existing = set(stored.values_list("recorded_at", flat=True))
    location_fixes_store([(partner_id, fix) for fix in fixes if fix.recorded_at not in existing])
    return existing


def location_fixes_prune(*, before: Any, limit: int) -> int:
    """Delete at most ``limit`` of the oldest fixes recorded before ``before``; how many went.

    Its own short transaction, by ``recorded_at``'s index: live inserts (recent instants) never
    wait on it, and on PostgreSQL two processes pruning at once skip each other's rows.
    """
    table = connection.ops.quote_name(LocationFix._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE (partner_id, recorded_at) IN (SELECT partner_id, recorded_at FROM {table} "
            f"WHERE recorded_at < %s ORDER BY recorded_at LIMIT %s{lock})",
            [connection.ops.adapt_datetimefield_value(before), limit],
        )
        return cursor.rowcount
