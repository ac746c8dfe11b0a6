"""Arrival (contract 10.3): the partner comes near the booking's place, or says they arrived far from it.

- **Near.** The relay (``bookings.relay``: no query per update) hands ``nearby_seen`` each
  position's distance to each booking it was relayed to. The first one within
  ``ARRIVAL_RADIUS_METERS`` marks the booking in the socket's session and claims it in a task
  off the read loop: a conditional UPDATE (``nearby_at IS NULL``) that one caller wins, on
  whichever process and through any reconnect; the winner's transaction sends
  ``partner:nearby`` to the booking's room after commit. The database is asked at most once per
  booking per session; the room hears it once per booking. The bookings relayed to are those in
  the statuses the lifecycle tracks (``ANNOUNCEMENTS``' ``tracked`` rows, which are
  ``ACTIVE_STATUSES``: ``tests/bookings/test_services.py`` holds it), and the claim reads them
  again under the UPDATE: a job that ended meanwhile is not claimed.
- **Far.** ``arrived_far_record`` runs inside the move to PARTNER_ARRIVED
  (``lifecycle.transition``) with the partner's last known position, which the socket handler
  first writes from this process's buffer (``partners.tracking.locations``). Farther than
  ``ARRIVED_FAR_METERS``, the distance is recorded and staff see ``attention: "arrived_far"``
  (``shapes.attention``) until the partner comes near (a later ``nearby_at``) or the booking ends.
"""

import asyncio
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from bookings import events, selectors
from bookings.models import ACTIVE_STATUSES, Booking
from config import metrics, rooms
from config.hot_settings import hot
from config.realtime.emit import emit
from config.realtime.orm import db
from partners.geo import distance_m

logger = logging.getLogger(__name__)

# Contract 10.3: a partner who sets PARTNER_ARRIVED farther than this from the place is flagged.
ARRIVED_FAR_METERS = 1000
# The socket session's set of bookings this session has claimed (or is claiming) nearby for.
NEARBY = "nearby"
# The socket session's {booking id: loop time} before which a failed claim is not tried again.
NEARBY_RETRY = "nearby_retry"
# A claim that failed (the database away) waits this long: not a query per position per booking
# while the database is down, each holding an ORM thread and the pool's wait.
NEARBY_RETRY_SECONDS = 10.0
# Claims under way on this process (a task holds no reference to itself).
_claims: set[asyncio.Task] = set()


def nearby_seen(session: dict[str, Any], booking_id: str, reach: dict[str, int]) -> None:
    """The relay's call for each booking a position went to: no query, no wait. ``reach`` is the
    ``{distanceMeters, etaSeconds}`` the relay measured for the update (``bookings.geo.arrival``)."""
    if not reach or reach["distanceMeters"] > hot.ARRIVAL_RADIUS_METERS:
        return
    claimed: set[str] = session.setdefault(NEARBY, set())
    if booking_id in claimed:
        return
    loop = asyncio.get_running_loop()
    retry: dict[str, float] = session.setdefault(NEARBY_RETRY, {})
    if retry.get(booking_id, 0.0) > loop.time():
        return
    claimed.add(booking_id)
    claim = _claim(session, booking_id, reach["distanceMeters"], reach["etaSeconds"])
    task = loop.create_task(claim)
    _claims.add(task)
    task.add_done_callback(_claims.discard)


async def _claim(session: dict[str, Any], booking_id: str, meters: int, eta: int) -> None:
    try:
        won = await db(nearby_claim)(booking_id=booking_id, partner_id=session["uid"], meters=meters, eta_seconds=eta)
    except Exception as exc:  # the database is away or the process overloaded: a position later tries again
        session[NEARBY].discard(booking_id)
        session[NEARBY_RETRY][booking_id] = asyncio.get_running_loop().time() + NEARBY_RETRY_SECONDS
        metrics.NEARBY_CLAIMS.labels("failed").inc()
        logger.warning("claiming partner:nearby for booking %s failed: %r", booking_id, exc)
        return
    metrics.NEARBY_CLAIMS.labels("sent" if won else "taken").inc()


def nearby_claim(*, booking_id: Any, partner_id: int, meters: int, eta_seconds: int) -> bool:
    """Record that the partner first came within ``ARRIVAL_RADIUS_METERS`` and tell the booking's
    room (``partner:nearby``, after commit). Only one caller ever wins a booking: ``False`` for the others."""
    with transaction.atomic():
        won = Booking.objects.filter(
            pk=booking_id, partner_id=partner_id, status__in=ACTIVE_STATUSES, nearby_at__isnull=True
        ).update(nearby_at=timezone.now(), nearby_meters=meters)
        if not won:
            return False
        emit(
            "partner:nearby",
            events.nearby(str(booking_id), meters, eta_seconds),
            namespace=rooms.CUSTOMER,
            room=rooms.booking(booking_id),
        )
        booking = selectors.shaped_bookings().get(pk=booking_id)
        if booking.arrived_far_at is not None:
            # The far arrival's flag clears: staff's monitor sees the booking without it.
            emit("booking:updated", events.booking(booking), namespace=rooms.ADMIN, room=rooms.MONITOR_BOOKINGS)
    return True


def arrived_far_record(booking: Booking) -> None:
    """On the move to PARTNER_ARRIVED (caller holds the row lock and saves the booking): a partner whose
    last known position is farther than ``ARRIVED_FAR_METERS`` from the place is recorded, for staff.
    No known position: nothing to judge."""
    partner = booking.partner
    if partner is None or partner.last_latitude is None or partner.last_longitude is None:
        return
    meters = round(distance_m(partner.last_latitude, partner.last_longitude, booking.latitude, booking.longitude))
    if meters > ARRIVED_FAR_METERS:
        booking.arrived_far_at = timezone.now()
        booking.arrived_far_meters = meters


def arrival_forget(booking: Booking) -> None:
    """The job went back to dispatch: the next partner's arrival is their own (caller saves)."""
    booking.nearby_at = booking.nearby_meters = booking.arrived_far_at = booking.arrived_far_meters = None
