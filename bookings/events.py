"""Payload builders for the booking events (contract 5.1-5.4). One function per event."""

from typing import Any

from bookings.models import Booking, BookingStatus
from bookings.serializers import booking_data, cancelled_by_role, display_name
from config.formats import iso
from partners.serializers import partner_location, partner_summary

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
    }


def cancelled(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": str(booking.pk),
        "bookingNumber": booking.number,
        "reason": booking.cancel_reason,
        "cancelledBy": cancelled_by_role(booking),
        "cancelledAt": iso(booking.updated_at),
    }


def location_update(booking_id: str, latitude: float, longitude: float, timestamp: str) -> dict[str, Any]:
    return {"bookingId": booking_id, "location": {"latitude": latitude, "longitude": longitude}, "timestamp": timestamp}
