"""Who gets an offer, and when a free partner brings a waiting booking due: the nearest eligible
partner, found without reading the whole city.

The search reads the partners inside a bounding box around the booking (the
``partner_position`` index), nearest first by a flat-Earth estimate, and widens the
box in rings up to ``DISPATCH_MAX_KM`` (nobody farther is eligible) until a ring holds
a candidate within its radius; only then is the great-circle distance computed, for a
handful of rows. Its cost follows the partners near the booking, not the partners in
the city.

No lock is taken on the partner's row: the location flush, the presence heartbeat and
availability changes write that row all the time, and a dispatch that skipped a locked
row would pass over the nearest partner for no reason. A partner is claimed by the offer
itself: the ``one_open_offer_per_partner`` constraint lets one open offer per partner
commit, and the claim (``bookings.services.offers._claim``) reads the partner's other jobs again
after its write; a claim that loses either way moves on to the next candidate.
"""

import math
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Booking, BookingRejection, BookingStatus, DispatchState, Service
from partners.geo import bounding_box, distance_m
from partners.models import KycStatus, Partner

# Search radii in metres; past the last one the search reads every remaining eligible partner.
# The first is small: a dense centre holds hundreds of partners within 2 km.
RINGS_M = (500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 200_000)
# Rows a ring reads, nearest first: enough to survive a few being locked or ineligible.
CANDIDATES = 8
# A partner with one of these is busy: an open offer or a job under way (contract 8.2).
BUSY_STATUSES = (BookingStatus.PARTNER_ASSIGNED, *ACTIVE_STATUSES)


def eligible_partners(booking: Booking) -> Iterator[Partner]:
    """The eligible partners within ``DISPATCH_MAX_KM``, nearest first, read ring by ring as the caller asks."""
    tried: list[int] = []  # offered already by this search (claimed by another booking meanwhile): not read again
    for radius in rings():
        for pk in _ring(booking, radius, tried):
            tried.append(pk)
            yield Partner.objects.get(pk=pk)


def nearest_eligible_partner(booking: Booking) -> Partner | None:
    """The nearest eligible partner within ``DISPATCH_MAX_KM``, or ``None``."""
    return next(eligible_partners(booking), None)


def rings() -> list[float]:
    """The search radii in metres, the last one ``DISPATCH_MAX_KM``."""
    limit = settings.DISPATCH_MAX_KM * 1000
    return [radius for radius in RINGS_M if radius < limit] + [limit]


def _ring(booking: Booking, radius: float, tried: list[int]) -> list[int]:
    """Ids of the eligible partners within ``radius`` metres, nearest first (at most ``CANDIDATES``)."""
    sql, params = _eligible_sql(booking)
    south, north, west, east = bounding_box(booking.latitude, booking.longitude, radius)
    sql += " AND p.last_latitude BETWEEN %s AND %s AND p.last_longitude BETWEEN %s AND %s"
    params += [south, north, west, east]
    if tried:
        sql += f" AND p.user_id NOT IN ({', '.join(['%s'] * len(tried))})"
        params += tried
    # Squared flat-Earth distance: orders the box's rows well enough to pick the few to measure.
    lat, lng, scale = booking.latitude, booking.longitude, math.cos(math.radians(booking.latitude)) ** 2
    sql += (
        " ORDER BY (p.last_latitude - %s) * (p.last_latitude - %s)"
        " + (p.last_longitude - %s) * (p.last_longitude - %s) * %s LIMIT %s"
    )
    params += [lat, lat, lng, lng, scale, CANDIDATES]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    measured = sorted((distance_m(lat, lng, row_lat, row_lng), pk) for pk, row_lat, row_lng in rows)
    # A box's corners lie beyond its radius: someone there may be farther than a partner
    # just outside the box, whom the next ring reads.
    return [pk for distance, pk in measured if distance <= radius]


def _eligible_sql(booking: Booking) -> tuple[str, list[Any]]:
    """Partners who may be offered ``booking`` now (contract 4 and 8.2), as SQL.

    Raw SQL, not the ORM: dispatch runs it once per ring on every create, lapse and
    rejection, and building and compiling the equivalent queryset cost several times
    what PostgreSQL takes to answer it.
    """
    booking_id = Booking._meta.pk.get_db_prep_value(booking.pk, connection)
    sql = (
        f"SELECT p.user_id, p.last_latitude, p.last_longitude FROM {_PARTNER} p"
        f" JOIN {_USER} u ON u.id = p.user_id"
        " WHERE p.kyc_status = %s AND NOT p.is_suspended AND p.is_available AND u.is_active"
        " AND p.online_until > %s AND p.user_id <> %s"
        " AND p.last_latitude IS NOT NULL AND p.last_longitude IS NOT NULL"
        f" AND EXISTS (SELECT 1 FROM {_OFFERS} s WHERE s.partner_id = p.user_id AND s.service_id = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {_REJECTIONS} r WHERE r.partner_id = p.user_id AND r.booking_id = %s)"
        f" AND NOT {_BUSY}"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [KycStatus.APPROVED, now, booking.customer_id, booking.service_id, booking_id, *BUSY_STATUSES]
    return sql, params


def dispatch_waiting_now(*, partner_ids: list[Any]) -> int:
    """Partners who may have become free: waiting bookings they could take are due at once. Returns how many.

    The next sweep (within ``DISPATCH_SWEEP_INTERVAL``) offers them, instead of their
    retry in up to ``DISPATCH_RETRY_SECONDS``. A partner takes one offer at a time, so
    one booking per partner is enough: the longest waiting of the services they offer,
    and not one they turned down.
    That also bounds what one partner can set off (toggling availability re-dispatches
    one booking, not every waiting one). Bookings another transaction holds are skipped,
    never waited for: that transaction is dispatching them already.
    """
    now = timezone.now()
    waiting = Booking.objects.filter(
        status=BookingStatus.PENDING, dispatch_state=DispatchState.UNASSIGNED, dispatch_due_at__gt=now
    )
    if not waiting.exists():
        # Partners come online in batches (a deploy's reconnect storm: hundreds a second), and
        # mostly nothing waits: one read for the batch instead of a compiled query per partner.
        return 0
    radius = settings.DISPATCH_MAX_KM * 1000
    brought = 0
    with transaction.atomic():
        for partner in Partner.objects.filter(pk__in=partner_ids, last_latitude__isnull=False):
            south, north, west, east = bounding_box(partner.last_latitude, partner.last_longitude, radius)
            theirs = (
                waiting.select_for_update(skip_locked=True)
                .filter(
                    service_id__in=Service.objects.filter(partners=partner).values("pk"),
                    latitude__range=(south, north),  # nobody is offered a job past DISPATCH_MAX_KM
                    longitude__range=(west, east),
                )
                .exclude(rejections__partner=partner)  # never offered to them again
                .order_by("created_at")
                .values_list("pk", flat=True)[:1]
            )
            brought += Booking.objects.filter(pk__in=list(theirs)).update(dispatch_due_at=now)
    return brought


def busy_elsewhere(partner_id: int, booking_id: Any) -> bool:
    """Whether the partner holds an offer or a job other than ``booking_id`` (read now, committed rows)."""
    sql = f"SELECT 1 FROM {_PARTNER} p WHERE p.user_id = %s AND {_BUSY_OTHER}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [partner_id, *BUSY_STATUSES, Booking._meta.pk.get_db_prep_value(booking_id, connection)])
        return cursor.fetchone() is not None


_q = connection.ops.quote_name
_PARTNER, _USER = _q(Partner._meta.db_table), _q(Partner._meta.get_field("user").related_model._meta.db_table)
_OFFERS = _q(Partner.services.through._meta.db_table)
_REJECTIONS, _BOOKINGS = _q(BookingRejection._meta.db_table), _q(Booking._meta.db_table)
_BUSY = (
    f"EXISTS (SELECT 1 FROM {_BOOKINGS} b WHERE b.partner_id = p.user_id"
    f" AND b.status IN ({', '.join(['%s'] * len(BUSY_STATUSES))}))"
)
_BUSY_OTHER = _BUSY[:-1] + " AND b.id <> %s)"
