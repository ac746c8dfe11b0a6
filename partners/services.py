"""Partners at work: KYC, suspension, availability, earnings and presence (sign-up: ``partners.accounts``)."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from config import rooms
from config.binary_arrays import array_cursor
from config.errors import Conflict, Forbidden, NotFound
from config.platform_day import start_of_today
from config.realtime.emit import emit
from partners import events
from partners.models import Earning, KycStatus, KycSubmission, LocationFix, Partner
from partners.signals import earning_recorded, kyc_decided, partner_withdrawn, partners_dispatchable
from partners.traces import TRACE_MIN_GAP

if TYPE_CHECKING:
    from bookings.models import Booking
    from partners.traces import Fix

CENT = Decimal("0.01")


# ---------------------------------------------------------------- KYC
def kyc_submit(*, partner: Partner, document_type: str, document_number: str) -> KycSubmission:
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.kyc_submissions.filter(status=KycStatus.PENDING).exists():
            raise Conflict("a KYC submission is already waiting for review")
        submission = KycSubmission.objects.create(
            partner=partner, document_type=document_type, document_number=document_number
        )
        if partner.kyc_status != KycStatus.APPROVED:
            partner.kyc_status = KycStatus.PENDING
            partner.save(update_fields=["kyc_status"])
        emit("kyc:submitted", events.kyc_submitted(submission), namespace=rooms.ADMIN, room=rooms.ADMINS)
    return submission


def kyc_review(*, submission_id: Any, reviewer: AbstractBaseUser, approve: bool, note: str = "") -> KycSubmission:
    """Staff decide a PENDING submission; the partner's KYC status follows it."""
    if not reviewer.is_staff:
        raise Forbidden("only staff can review KYC")
    with transaction.atomic():
        submission = (
            KycSubmission.objects.select_for_update().select_related("partner").filter(pk=submission_id).first()
        )
        if submission is None:
            raise NotFound("no such KYC submission")
        if submission.status != KycStatus.PENDING:
            raise Conflict(f"this submission was already {submission.status.lower()}")
        submission.status = KycStatus.APPROVED if approve else KycStatus.REJECTED
        submission.reviewed_at = timezone.now()
        submission.reviewed_by = reviewer
        submission.review_note = note[:500]
        submission.save()
        partner = submission.partner
        partner.kyc_status = submission.status
        partner.save(update_fields=["kyc_status"])
        kyc_decided.send(sender=KycSubmission, submission=submission, note=note)
    return submission


# ---------------------------------------------------------------- suspension and availability
def partner_suspend(*, partner_id: Any, actor: AbstractBaseUser, suspended: bool = True) -> Partner:
    """Suspend (or reinstate) a partner; a suspension takes back every job not started yet (open
    offers, accepted, en route, arrived: dispatched again), flags a job in progress for staff, and
    disconnects their sockets on every process, all in one transaction.

    The disconnect comes from ``partners.access`` (the profile's save), like any other change of rights;
    the jobs go back through dispatch's receiver of ``partner_withdrawn``.
    """
    if not actor.is_staff:
        raise Forbidden("only staff can suspend partners")
    with transaction.atomic():
        partner = Partner.objects.select_for_update().filter(pk=partner_id).first()
        if partner is None:
            raise NotFound("no such partner")
        partner.is_suspended = suspended
        partner.save(update_fields=["is_suspended"])
        if suspended:
            partner_withdrawn.send(sender=Partner, partner_id=partner.pk, actor=actor)
    return partner


def partner_set_availability(*, partner_id: Any, available: bool) -> bool:
    if not Partner.objects.filter(pk=partner_id, is_suspended=False).update(is_available=available):
        raise Forbidden("This partner is suspended")
    if available:
        partners_dispatchable.send(sender=Partner, partner_ids=[partner_id])
    return available


# ---------------------------------------------------------------- earnings
def earning_store(*, booking: "Booking") -> Earning:
    """The partner's share of a completed booking, stored once; tells no one (the demo seeds use it as is)."""
    share = Decimal(1) - Decimal(settings.PLATFORM_COMMISSION)
    amount = (booking.amount * share).quantize(CENT, rounding=ROUND_HALF_UP)
    earning, _ = Earning.objects.get_or_create(
        booking=booking, defaults={"partner_id": booking.partner_id, "amount": amount, "currency": booking.currency}
    )
    return earning


def earning_record(*, booking: "Booking") -> Earning:
    """Called when a booking completes, inside its transaction."""
    earning = earning_store(booking=booking)
    totals = earnings_totals(partner_id=booking.partner_id)
    emit(
        "earnings:updated",
        events.earnings_updated(earning, **totals),
        namespace=rooms.PARTNER,
        room=rooms.user(booking.partner_id),
    )
    earning_recorded.send(sender=Earning, earning=earning, booking=booking)
    return earning


def earnings_totals(*, partner_id: Any) -> dict[str, Decimal]:
    rows = Earning.objects.filter(partner_id=partner_id)
    start_of_day = start_of_today()
    return {
        "today": rows.filter(created_at__gte=start_of_day).aggregate(s=Sum("amount"))["s"] or Decimal(0),
        "total": rows.aggregate(s=Sum("amount"))["s"] or Decimal(0),
    }


# ---------------------------------------------------------------- tracking and presence
def partner_locations_store(locations: dict[int, tuple[float, float, Any]]) -> None:
    """Write buffered last-known locations: one ``UPDATE ... FROM`` per 500 partners, in one transaction.

    A location older than the one stored is skipped (another process wrote a newer fix of the
    partner's), so the stored position never moves back in time either.

    Raw SQL because the ORM would compile one statement per partner (about 1.5 ms of
    CPU each, holding the GIL the socket loop needs). On PostgreSQL the rows travel as one binary
    array per column (``config.binary_arrays``); SQLite (>= 3.33) takes a VALUES list.
    """
    table = connection.ops.quote_name(Partner._meta.db_table)
    rows = [(pk, lat, lng, at) for pk, (lat, lng, at) in locations.items()]
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
            cursor.execute(
                f"WITH v(id, lat, lng, at) AS ({rows_sql}) "
                f"UPDATE {table} SET last_latitude = v.lat, last_longitude = v.lng, last_location_at = v.at "
                f"FROM v WHERE {table}.user_id = v.id "
                f"AND ({table}.last_location_at IS NULL OR {table}.last_location_at < v.at)",
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


def partners_online(*, partner_ids: list[int], online: bool = True) -> None:
    """Mark partners dispatchable for ``PRESENCE_TTL`` seconds (or not at all)."""
    now = timezone.now()
    partners = Partner.objects.filter(pk__in=partner_ids)
    arriving = (
        list(partners.filter(Q(online_until__isnull=True) | Q(online_until__lt=now)).values_list("pk", flat=True))
        if online
        else []
    )
    partners.update(online_until=now + timedelta(seconds=settings.PRESENCE_TTL) if online else None)
    if arriving:  # not on every heartbeat: only for who comes online
        partners_dispatchable.send(sender=Partner, partner_ids=arriving)
