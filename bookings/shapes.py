"""The booking on the wire (contract 5.4): its schema beside its builder (``config.shapes``).

REST responses, ``booking:created`` / ``booking:updated``, acks, the dashboard and both
documents all use this one declaration.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, DispatchState
from config.formats import iso
from config.realtime.catalogue import ID, INTEGER, LOCATION, NUMBER, PERSON, STRING, TIME, UUID, enum, nullable, obj
from config.shapes import shape
from partners.shapes import PARTNER_SUMMARY, display_name, partner_summary

S = BookingStatus
BOOKING = obj(
    {
        "id": UUID,
        "bookingNumber": STRING,
        "status": enum(S.values),
        "service": obj({"id": ID, "name": STRING}),
        "scheduledAt": TIME,
        "address": STRING,
        "location": LOCATION,
        "amount": NUMBER,
        "currency": STRING,
        "notes": STRING,
        "customer": PERSON,
        "partner": nullable(PARTNER_SUMMARY),
        "cancelReason": STRING,
        "cancelledBy": nullable(enum(["customer", "staff", "dispatch"])),
        "createdAt": TIME,
        "updatedAt": TIME,
    },
    {
        "dispatch": obj({"attempts": INTEGER, "state": enum(DispatchState.values)}),
        "attention": nullable(enum(["unassigned", "partner_suspended", "stale", "arrived_far"])),
    },
)


# The reason dispatch records when it gives up on a booking (contract 9.3).
NO_PARTNER = "no_partner"


def cancelled_by_role(booking: Booking) -> str | None:
    """``customer``, ``staff`` or ``dispatch`` (or ``None`` while not cancelled)."""
    if booking.status != BookingStatus.CANCELLED:
        return None
    if booking.cancelled_by_id is not None and booking.cancelled_by_id == booking.customer_id:
        return "customer"
    if booking.cancelled_by_id is None and booking.cancel_reason == NO_PARTNER:
        return "dispatch"
    return "staff"


def attention(booking: Booking) -> str | None:
    """What a booking needs from staff (contracts 9.3, 10.3): ``unassigned``, ``partner_suspended``,
    ``stale``, ``arrived_far`` or ``None``.

    Read from what the booking carries (its partner is loaded with it), not kept up to date by
    a sweep: a stale job is one whose last sign of life (the booking's last change, the
    partner's last location) is older than ``JOB_STALE_MINUTES``, which no write announces; an
    ``arrived_far`` one's partner set PARTNER_ARRIVED more than 1 km away (``bookings.arrival``)
    and has not come near since.
    """
    if booking.status == BookingStatus.PENDING and booking.dispatch_state == DispatchState.UNASSIGNED:
        return "unassigned"
    partner = booking.partner
    if booking.status not in ACTIVE_STATUSES or partner is None:
        return None
    if partner.is_suspended:
        return "partner_suspended"
    last_seen = max(booking.updated_at, partner.last_location_at or booking.updated_at)
    if timezone.now() - last_seen > timedelta(minutes=settings.JOB_STALE_MINUTES):
        return "stale"
    if booking.arrived_far_at is not None and (booking.nearby_at is None or booking.nearby_at < booking.arrived_far_at):
        return "arrived_far"
    return None


@shape("Booking", BOOKING)
def booking_data(booking: Booking) -> dict[str, Any]:
    """The booking of contract 5.4: REST responses, ``booking:created``/``updated`` and acks."""
    partner = booking.partner
    return {
        "id": str(booking.pk),
        "bookingNumber": booking.number,
        "status": booking.status,
        "service": {"id": str(booking.service_id), "name": booking.service.name},
        "scheduledAt": iso(booking.scheduled_at),
        "address": booking.address,
        "location": {"latitude": booking.latitude, "longitude": booking.longitude},
        "amount": float(booking.amount),
        "currency": booking.currency,
        "notes": booking.notes,
        "customer": {"id": str(booking.customer_id), "name": display_name(booking.customer)},
        "partner": partner_summary(partner) if partner is not None else None,
        "cancelReason": booking.cancel_reason,
        "cancelledBy": cancelled_by_role(booking),
        "createdAt": iso(booking.created_at),
        "updatedAt": iso(booking.updated_at),
        "dispatch": {"attempts": booking.dispatch_attempts, "state": booking.dispatch_state},
        "attention": attention(booking),
    }
