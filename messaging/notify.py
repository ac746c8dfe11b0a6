"""Notifications: persisted, then pushed as ``notification:new`` (contract 5.6).

``messaging`` owns the inbox and sits above ``bookings`` and ``partners``
(docs/architecture.md): they announce what happened with their signals, sent inside their
transaction, and the receivers here store the notifications in that same transaction.
"""

from typing import Any

from bookings.models import Booking, BookingStatus
from bookings.shapes import NO_PARTNER
from bookings.signals import (
    booking_released,
    booking_status_changed,
    offer_expired,
    offer_withdrawn,
    partner_search_continues,
)
from config import rooms
from config.realtime.emit import emit
from messaging import events
from messaging.models import Notification
from partners.models import Earning, KycStatus, KycSubmission, Partner
from partners.signals import earning_recorded, kyc_decided

S = BookingStatus


def notification_create(
    *, user_id: int, type: str, title: str, body: str = "", data: dict[str, Any] | None = None
) -> Notification:
    """Store a notification and push it to every socket of the user (after commit)."""
    notification = Notification.objects.create(user_id=user_id, type=type, title=title, body=body, data=data or {})
    payload = events.notification(notification)  # events declares notification:new
    for namespace in rooms.PERSON_NAMESPACES:
        emit("notification:new", payload, namespace=namespace, room=rooms.user(user_id))
    return notification


def connect_receivers() -> None:
    """Called from ``MessagingConfig.ready``."""
    booking_status_changed.connect(_status_changed, dispatch_uid="messaging.booking_status_changed")
    offer_withdrawn.connect(_offer_withdrawn, dispatch_uid="messaging.offer_withdrawn")
    offer_expired.connect(_offer_expired, dispatch_uid="messaging.offer_expired")
    partner_search_continues.connect(_partner_search_continues, dispatch_uid="messaging.partner_search_continues")
    booking_released.connect(_booking_released, dispatch_uid="messaging.booking_released")
    kyc_decided.connect(_kyc_decided, dispatch_uid="messaging.kyc_decided")
    earning_recorded.connect(_earning_recorded, dispatch_uid="messaging.earning_recorded")


def _about(user_id: int, type: str, title: str, body: str, booking: Booking) -> None:
    """A notification about a booking: its id and number ride along for the app to open it."""
    notification_create(
        user_id=user_id,
        type=type,
        title=title,
        body=body,
        data={"bookingId": str(booking.pk), "bookingNumber": booking.number},
    )


def _assigned(booking: Booking, partner: Partner | None) -> None:
    _about(partner.pk, "booking_assigned", "New job offer", f"{booking.service.name} at {booking.address}", booking)


def _accepted(booking: Booking, partner: Partner | None) -> None:
    _about(
        booking.customer_id, "booking_accepted", "Partner assigned", f"{partner.name} accepted your booking", booking
    )


def _completed(booking: Booking, partner: Partner | None) -> None:
    _about(booking.customer_id, "booking_completed", "Booking complete", f"{booking.service.name} is done", booking)


def _cancelled(booking: Booking, partner: Partner | None) -> None:
    if partner is not None:
        _about(partner.pk, "booking_cancelled", "Booking cancelled", f"{booking.number} was cancelled", booking)
    if booking.cancelled_by_id != booking.customer_id:
        gave_up = booking.cancelled_by_id is None and booking.cancel_reason == NO_PARTNER
        body = f"We could not find a partner for {booking.number}" if gave_up else booking.cancel_reason
        _about(booking.customer_id, "booking_cancelled", "Booking cancelled", body or booking.number, booking)


# Who is notified when a booking arrives in each status (``None``: nobody; the live events of
# ``bookings.services.lifecycle.ANNOUNCEMENTS`` tell the apps). Every status has its row: a new
# one fails tests/messaging/test_services.py until it is decided here.
ON_STATUS = {
    S.PENDING: None,
    S.PARTNER_ASSIGNED: _assigned,
    S.PARTNER_ACCEPTED: _accepted,
    S.PARTNER_EN_ROUTE: None,
    S.PARTNER_ARRIVED: None,
    S.IN_PROGRESS: None,
    S.COMPLETED: _completed,
    S.CANCELLED: _cancelled,
}


def _status_changed(sender: Any, *, booking: Booking, from_status: str, partner: Partner | None, **kwargs: Any) -> None:
    notify = ON_STATUS[booking.status]
    if notify is not None:
        notify(booking, partner)


def _offer_withdrawn(sender: Any, *, booking: Booking, partner: Partner, **kwargs: Any) -> None:
    body = f"The offer of {booking.number} was withdrawn"
    _about(partner.pk, "booking_cancelled", "Offer withdrawn", body, booking)


def _offer_expired(sender: Any, *, booking: Booking, partner: Partner, **kwargs: Any) -> None:
    _about(partner.pk, "offer_expired", "Offer expired", f"The offer of {booking.number} has expired", booking)


def _partner_search_continues(sender: Any, *, booking: Booking, **kwargs: Any) -> None:
    body = f"We are still looking for a partner for {booking.number}"
    _about(booking.customer_id, "booking_searching", "Still looking", body, booking)


def _booking_released(sender: Any, *, booking: Booking, **kwargs: Any) -> None:
    if booking.customer_id:
        body = f"Your partner can no longer take {booking.number}; we are finding another"
        _about(booking.customer_id, "booking_reassigning", "Finding you another partner", body, booking)


def _kyc_decided(sender: Any, *, submission: KycSubmission, note: str, **kwargs: Any) -> None:
    title = "KYC approved" if submission.status == KycStatus.APPROVED else "KYC rejected"
    notification_create(
        user_id=submission.partner_id,
        type="kyc_decision",
        title=title,
        body=note,
        data={"submissionId": str(submission.pk)},
    )


def _earning_recorded(sender: Any, *, earning: Earning, booking: Booking, **kwargs: Any) -> None:
    notification_create(
        user_id=booking.partner_id,
        type="earnings",
        title="You earned money",
        body=f"{earning.amount} {earning.currency} for {booking.number}",
        data={"bookingId": str(booking.pk), "amount": float(earning.amount)},
    )
