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

from django.db.models import F, QuerySet
from django.utils import timezone

from bookings.geo import bounding_box, distance_m
from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus
from partners.models import KycStatus, Partner

# Search radii in metres; past the last one the search reads every remaining eligible partner.
RINGS_M = (2_000, 5_000, 10_000, 25_000, 50_000, 200_000)
# Rows a ring reads, nearest first: enough to survive a few being locked or ineligible.
CANDIDATES = 8
# A partner with one of these is busy: an open offer or a job under way (contract 8.2).
BUSY_STATUSES = (BookingStatus.PARTNER_ASSIGNED, *ACTIVE_STATUSES)


def eligible_partners(booking: Booking) -> QuerySet[Partner]:
    """Partners who may be offered ``booking`` now (contract 4 and 8.2), wherever they are."""
    return (
        Partner.objects.filter(
            services=booking.service_id,
            kyc_status=KycStatus.APPROVED,
            is_suspended=False,
            is_available=True,
            online_until__gt=timezone.now(),
            user__is_active=True,
            last_latitude__isnull=False,
            last_longitude__isnull=False,
        )
        .exclude(pk=booking.customer_id)
        .exclude(rejections__booking=booking)
        .exclude(bookings__status__in=BUSY_STATUSES)
    )


def nearest_eligible_partner(booking: Booking) -> Partner | None:
    """The nearest eligible partner, their row locked for this transaction; ``None`` if there is nobody."""
    eligible = eligible_partners(booking)
    tried: set[int] = set()  # locked by another dispatch or no longer eligible: not read again
    for radius in (*RINGS_M, math.inf):
        for pk in _ring(eligible.exclude(pk__in=tried), booking, radius):
            partner = _lock_if_still_eligible(eligible, pk)
            if partner is not None:
                return partner
            tried.add(pk)
    return None


def _ring(eligible: QuerySet[Partner], booking: Booking, radius: float) -> list[int]:
    """Ids of the eligible partners within ``radius`` metres, nearest first (at most ``CANDIDATES``).

    Unbounded (the last ring), it returns the nearest few wherever they are.
    """
    rows = eligible
    if math.isfinite(radius):
        south, north, west, east = bounding_box(booking.latitude, booking.longitude, radius)
        rows = rows.filter(last_latitude__range=(south, north), last_longitude__range=(west, east))
    # Squared flat-Earth distance: orders the box's rows well enough to pick the few to measure.
    scale = math.cos(math.radians(booking.latitude)) ** 2
    flat = (F("last_latitude") - booking.latitude) ** 2 + (F("last_longitude") - booking.longitude) ** 2 * scale
    found = rows.annotate(flat=flat).order_by("flat").values_list("pk", "last_latitude", "last_longitude")
    measured = sorted(
        (distance_m(booking.latitude, booking.longitude, lat, lng), pk) for pk, lat, lng in found[:CANDIDATES]
    )
    # A box's corners lie beyond its radius: someone there may be farther than a partner
    # just outside the box, whom the next ring reads.
    return [pk for distance, pk in measured if distance <= radius]


def _lock_if_still_eligible(eligible: QuerySet[Partner], pk: int) -> Partner | None:
    return eligible.filter(pk=pk).select_for_update(skip_locked=True, of=("self",)).first()
