"""Who gets an offer: the nearest eligible partner, found without reading the whole city.

The search reads the partners inside a bounding box around the booking (the
``partner_position`` index), nearest first by a flat-Earth estimate, and widens the
box in rings until a ring holds a candidate within its radius; only then is the
great-circle distance computed, for a handful of rows. Its cost follows the
partners near the booking, not the partners in the city.

The chosen partner's row is locked (``FOR UPDATE SKIP LOCKED``) and their eligibility
read again under the lock, so two dispatches running at once never offer two jobs to
one partner: the second skips a partner the first holds, and sees the first's offer
once it commits. The ``one_open_offer_per_partner`` constraint backs this up.
"""

import math
from typing import Any

from django.db import connection
from django.utils import timezone

from bookings.geo import bounding_box, distance_m
from bookings.models import ACTIVE_STATUSES, Booking, BookingRejection, BookingStatus
from partners.models import KycStatus, Partner

# Search radii in metres; past the last one the search reads every remaining eligible partner.
# The first is small: a dense centre holds hundreds of partners within 2 km.
RINGS_M = (500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 200_000)
# Rows a ring reads, nearest first: enough to survive a few being locked or ineligible.
CANDIDATES = 8
# A partner with one of these is busy: an open offer or a job under way (contract 8.2).
BUSY_STATUSES = (BookingStatus.PARTNER_ASSIGNED, *ACTIVE_STATUSES)


def nearest_eligible_partner(booking: Booking) -> Partner | None:
    """The nearest eligible partner, their row locked for this transaction; ``None`` if there is nobody."""
    tried: list[int] = []  # locked by another dispatch or no longer free: not read again
    for radius in (*RINGS_M, math.inf):
        for pk in _ring(booking, radius, tried):
            if _lock_if_still_free(pk):
                return Partner.objects.get(pk=pk)
            tried.append(pk)
    return None


def _ring(booking: Booking, radius: float, tried: list[int]) -> list[int]:
    """Ids of the eligible partners within ``radius`` metres, nearest first (at most ``CANDIDATES``).

    Unbounded (the last ring), it returns the nearest few wherever they are.
    """
    sql, params = _eligible_sql(booking)
    if math.isfinite(radius):
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


def _lock_if_still_free(pk: int) -> bool:
    """Lock the partner's row unless another dispatch holds it, and check they are still free under the lock.

    A read after the lock sees any offer committed meanwhile; an offer still being made
    holds the lock, so this skips the partner.
    """
    sql = f"SELECT p.user_id FROM {_PARTNER} p WHERE p.user_id = %s AND NOT {_BUSY}"
    if connection.features.has_select_for_update_skip_locked:
        sql += " FOR UPDATE SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk, *BUSY_STATUSES])
        return cursor.fetchone() is not None


_q = connection.ops.quote_name
_PARTNER, _USER = _q(Partner._meta.db_table), _q(Partner._meta.get_field("user").related_model._meta.db_table)
_OFFERS = _q(Partner.services.through._meta.db_table)
_REJECTIONS, _BOOKINGS = _q(BookingRejection._meta.db_table), _q(Booking._meta.db_table)
_BUSY = (
    f"EXISTS (SELECT 1 FROM {_BOOKINGS} b WHERE b.partner_id = p.user_id"
    f" AND b.status IN ({', '.join(['%s'] * len(BUSY_STATUSES))}))"
)
