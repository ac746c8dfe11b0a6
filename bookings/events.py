"""Payload builders for the booking events (contract 5.1-5.4). One function per event; the
booking itself is ``bookings.shapes.booking_data``."""

from typing import Any

from bookings.geo import arrival
from bookings.models import Booking, BookingStatus
from bookings.shapes import booking_data, cancelled_by_role
from config import rooms
from config.formats import iso
from config.realtime.catalogue import (
    INTEGER,
    LOCATION,
    NUMBER,
    PERSON,
    STRING,
    TIME,
    UUID,
    enum,
    nullable,
    obj,
    server_event,
)
from partners.shapes import PARTNER_LOCATED, display_name, partner_location, partner_summary

S = BookingStatus
# How far the partner is from the booking, on partner:assigned and partner:location_update (contract 8.2).
ARRIVAL = {"distanceMeters": INTEGER, "etaSeconds": INTEGER}
server_event(
    "booking:status_updated",
    namespaces=(rooms.CUSTOMER,),
    summary="The booking's status changed (to booking:<id>)",
    payload=obj(
        {"bookingId": UUID, "bookingNumber": STRING, "status": enum(S.values), "message": STRING, "updatedAt": TIME}
    ),
)
server_event(
    "partner:assigned",
    namespaces=(rooms.CUSTOMER,),
    summary="The partner accepted the booking (to booking:<id> and the customer)",
    payload=obj(
        {"bookingId": UUID, "partner": PARTNER_LOCATED},
        ARRIVAL,
    ),
)
server_event(
    "partner:location_update",
    namespaces=(rooms.CUSTOMER,),
    summary="The partner's position, while the booking is accepted..in progress (to booking:<id>)",
    payload=obj({"bookingId": UUID, "location": LOCATION, "timestamp": TIME}, ARRIVAL),
    volatile=True,
)
server_event(
    "partner:nearby",
    namespaces=(rooms.CUSTOMER,),
    summary=(
        "The partner first came within ARRIVAL_RADIUS_METERS of the booking's place: once per booking (to booking:<id>)"
    ),
    payload=obj({"bookingId": UUID, "distanceMeters": INTEGER, "etaSeconds": INTEGER}),
)
server_event(
    "booking:new_request",
    namespaces=(rooms.PARTNER,),
    summary="A booking is offered to this partner",
    payload=obj(
        {
            "bookingId": UUID,
            "bookingNumber": STRING,
            "service": STRING,
            "scheduledAt": TIME,
            "address": STRING,
            "amount": NUMBER,
            "location": LOCATION,
            "customer": PERSON,
        },
        ARRIVAL,
    ),
)
server_event(
    "booking:cancelled",
    namespaces=(rooms.PARTNER,),
    summary="The partner's booking was cancelled",
    payload=obj(
        {
            "bookingId": UUID,
            "bookingNumber": STRING,
            "reason": STRING,
            "cancelledBy": nullable(enum(["customer", "staff", "dispatch"])),
            "cancelledAt": TIME,
        }
    ),
)
server_event(
    "booking:offer_expired",
    namespaces=(rooms.PARTNER,),
    summary="The partner let the offer lapse (OFFER_TIMEOUT_SECONDS); it goes to another partner",
    payload=obj({"bookingId": UUID, "bookingNumber": STRING, "expiredAt": TIME}),
)
for _name, _summary in (("booking:created", "A booking was created"), ("booking:updated", "A booking changed")):
    server_event(
        _name, namespaces=(rooms.ADMIN,), summary=f"{_summary} (to monitor:bookings)", payload=booking_data.schema
    )

STATUS_MESSAGES = {
    BookingStatus.PENDING: "We are looking for a partner for your booking",
    BookingStatus.PARTNER_ASSIGNED: "A partner has been offered your booking",
    BookingStatus.PARTNER_ACCEPTED: "Partner has accepted your booking",
    BookingStatus.PARTNER_EN_ROUTE: "Partner is on the way",
    BookingStatus.PARTNER_ARRIVED: "Partner has arrived",
    BookingStatus.IN_PROGRESS: "Your service is in progress",
    BookingStatus.COMPLETED: "Your booking is complete",
    BookingStatus.CANCELLED: "Your booking has been cancelled",
}


def booking(booking: Booking) -> dict[str, Any]:
    """``booking:created`` / ``booking:updated`` and acks: the booking itself."""
    return booking_data(booking)


def status_updated(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": str(booking.pk),
        "bookingNumber": booking.number,
        "status": booking.status,
        "message": STATUS_MESSAGES[booking.status],
        "updatedAt": iso(booking.updated_at),
    }


def partner_assigned(booking: Booking) -> dict[str, Any]:
    partner = booking.partner
    return {
        "bookingId": str(booking.pk),
        "partner": {**partner_summary(partner), "location": partner_location(partner)},
        **arrival(partner.last_latitude, partner.last_longitude, booking.latitude, booking.longitude),
    }


def new_request(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": str(booking.pk),
        "bookingNumber": booking.number,
        "service": booking.service.name,
        "scheduledAt": iso(booking.scheduled_at),
        "address": booking.address,
        "amount": float(booking.amount),
        "location": {"latitude": booking.latitude, "longitude": booking.longitude},
        "customer": {"id": str(booking.customer_id), "name": display_name(booking.customer)},
        **arrival(booking.partner.last_latitude, booking.partner.last_longitude, booking.latitude, booking.longitude),
    }


def offer_expired(booking: Booking) -> dict[str, Any]:
    return {"bookingId": str(booking.pk), "bookingNumber": booking.number, "expiredAt": iso(booking.updated_at)}


def withdrawn(booking: Booking, reason: str) -> dict[str, Any]:
    """``booking:cancelled`` to a partner whose open offer staff took back (re-assigned, suspended)."""
    return {
        "bookingId": str(booking.pk),
        "bookingNumber": booking.number,
        "reason": reason,
        "cancelledBy": "staff",
        "cancelledAt": iso(booking.updated_at),
    }


def cancelled(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": str(booking.pk),
        "bookingNumber": booking.number,
        "reason": booking.cancel_reason,
        "cancelledBy": cancelled_by_role(booking),
        "cancelledAt": iso(booking.updated_at),
    }


def location_update(
    booking_id: str, latitude: float, longitude: float, timestamp: str, arrival: dict[str, int]
) -> dict[str, Any]:
    """``arrival`` is ``bookings.geo.arrival`` from this position to the booking."""
    return {
        "bookingId": booking_id,
        "location": {"latitude": latitude, "longitude": longitude},
        "timestamp": timestamp,
        **arrival,
    }


def nearby(booking_id: str, meters: int, eta_seconds: int) -> dict[str, Any]:
    """``partner:nearby``: how far the partner was when first within ``ARRIVAL_RADIUS_METERS``."""
    return {"bookingId": booking_id, "distanceMeters": meters, "etaSeconds": eta_seconds}
