"""The booking lifecycle's core (contract section 4): who may make which move, and the one
place a status changes.

Each verb of the package opens a transaction, locks the booking row (``locked``), checks
its actor rule against ``TRANSITIONS`` and hands over to ``transition``, which records
the history row and schedules the move's events and notifications. Events leave through
``config.realtime.emit`` after the transaction commits.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from bookings import events, relay, tallies
from bookings.dispatch import dispatch_waiting_now
from bookings.models import (
    ACTIVE_STATUSES,
    HELD_STATUSES,
    TERMINAL_STATUSES,
    Booking,
    BookingStatus,
    BookingStatusChange,
    DispatchState,
)
from bookings.selectors import parse_booking_id
from bookings.shapes import NO_PARTNER
from config import rooms
from config.errors import Forbidden, InvalidTransition, NotFound
from config.realtime.emit import close_room, emit
from messaging.notify import notification_create
from partners import services as partner_services
from partners.models import Partner

S = BookingStatus
CUSTOMER, PARTNER, STAFF, DISPATCH = "customer", "partner", "staff", "dispatch"

# (from, to) -> who may make that move.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.PENDING, S.PARTNER_ASSIGNED): frozenset({DISPATCH, STAFF}),
    (S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED): frozenset({PARTNER}),
    # The partner rejects, the offer lapses (dispatch) or staff withdraw it (suspension).
    (S.PARTNER_ASSIGNED, S.PENDING): frozenset({PARTNER, DISPATCH, STAFF}),
    # Staff re-assign: the offer moves to another partner.
    (S.PARTNER_ASSIGNED, S.PARTNER_ASSIGNED): frozenset({STAFF}),
    (S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE): frozenset({PARTNER}),
    (S.PARTNER_ACCEPTED, S.PARTNER_ARRIVED): frozenset({PARTNER}),
    (S.PARTNER_ACCEPTED, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED): frozenset({PARTNER}),
    (S.PARTNER_EN_ROUTE, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.PARTNER_ARRIVED, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.IN_PROGRESS, S.COMPLETED): frozenset({PARTNER, STAFF}),
    # Staff close a job on the partner's behalf (a phone died mid-job): nothing stays active for ever.
    (S.PARTNER_ARRIVED, S.COMPLETED): frozenset({STAFF}),
    # A suspended or deactivated partner's job that has not started goes back to dispatch (contract 9.3).
    **{
        (status, S.PENDING): frozenset({STAFF})
        for status in (S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED)
    },
    # The customer cancels until the partner arrives; staff from any active status; dispatch gives up.
    **{
        (status, S.CANCELLED): frozenset({CUSTOMER, STAFF})
        for status in (S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE)
    },
    (S.PENDING, S.CANCELLED): frozenset({CUSTOMER, STAFF, DISPATCH}),
    (S.PARTNER_ARRIVED, S.CANCELLED): frozenset({STAFF}),
    (S.IN_PROGRESS, S.CANCELLED): frozenset({STAFF}),
}
# Why an offer left its partner without them deciding (history note, rejection reason, withdrawal reason).
OFFER_EXPIRED, REASSIGNED, PARTNER_SUSPENDED = "offer_expired", "reassigned", "partner_suspended"


def hold_partner(partner_id: Any) -> None:
    """Keep the partner's suspension out until this transaction ends (``FOR KEY SHARE``).

    A suspension locks the partner's row ``FOR UPDATE`` before it releases their jobs: an
    accept that holds this first is released by it after it commits; one that comes second
    waits, then reads the partner suspended. The weakest row lock: the location flush and the
    presence heartbeat, which update the same row, never wait for it nor it for them.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Partner._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {table} WHERE user_id = %s FOR KEY SHARE", [partner_id])


def locked(booking_id: Any) -> Booking:
    related = ("service", "customer", "partner")
    booking = (
        Booking.objects.select_for_update(of=("self",))
        .select_related(*related)
        .filter(pk=parse_booking_id(booking_id))
        .first()
    )
    if booking is None:
        raise NotFound("no such booking")
    if booking.partner_id is not None and (booking.partner is None or booking.partner.pk != booking.partner_id):
        # We waited for another transaction's lock: PostgreSQL re-read the booking but kept the
        # partner row it had joined before (none, for a booking that was just offered), so read
        # the relations again, under the lock we now hold. (Found by the soak: a customer's
        # cancel racing an offer saw a booking with a partner id and no partner.)
        booking = Booking.objects.select_related(*related).get(pk=booking.pk)
    return booking


def require_assigned_partner(booking: Booking, partner_user: AbstractBaseUser) -> None:
    if booking.partner_id != partner_user.pk:
        if booking.rejections.filter(partner_id=partner_user.pk, reason__in=(OFFER_EXPIRED, REASSIGNED)).exists():
            raise InvalidTransition("this offer is no longer yours: it expired or was re-assigned")
        raise Forbidden("this booking is not assigned to you")
    if booking.partner.is_suspended:
        raise Forbidden("This partner is suspended")


def check(booking: Booking, to_status: str, role: str) -> None:
    allowed = TRANSITIONS.get((booking.status, to_status))
    if allowed is None or role not in allowed:
        raise InvalidTransition(f"cannot go from {booking.status} to {to_status}")


def transition(
    booking: Booking,
    to_status: str,
    *,
    actor: AbstractBaseUser | None,
    role: str,
    partner: Partner | None = None,
    note: str = "",
) -> None:
    """The only place a booking's status changes. Caller holds the row lock.

    Records the history row and schedules the events and notifications of the move.
    """
    check(booking, to_status, role)
    from_status = booking.status
    previous_partner = booking.partner
    booking.status = to_status
    booking.dispatch_due_at = None
    if to_status == S.PARTNER_ASSIGNED:
        booking.partner = partner
        booking.dispatch_attempts += 1
        booking.dispatch_state = DispatchState.OFFERED
        booking.dispatch_due_at = timezone.now() + timedelta(seconds=settings.OFFER_TIMEOUT_SECONDS)
    elif to_status == S.PENDING:
        booking.partner = None
        booking.dispatch_state = DispatchState.SEARCHING
    else:
        booking.dispatch_state = DispatchState.DONE
        if to_status == S.COMPLETED:
            booking.completed_at = timezone.now()
    booking.save()
    tallies.booking_moved(booking, from_status)
    BookingStatusChange.objects.create(
        booking=booking,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        role=role,
        partner=booking.partner or previous_partner,
        note=note[:500],
    )
    _announce(booking, from_status, previous_partner)
    if from_status in HELD_STATUSES and (to_status not in HELD_STATUSES or booking.partner != previous_partner):
        dispatch_waiting_now(partner_ids=[previous_partner.pk])  # free for another booking


def _announce(booking: Booking, from_status: str, previous_partner: Partner | None) -> None:

    status = booking.status
    emit(
        "booking:status_updated",
        events.status_updated(booking),
        namespace=rooms.CUSTOMER,
        room=rooms.booking(booking.pk),
    )
    emit("booking:updated", events.booking(booking), namespace=rooms.ADMIN, room=rooms.MONITOR_BOOKINGS)

    if status == S.PARTNER_ASSIGNED:
        emit(
            "booking:new_request",
            events.new_request(booking),
            namespace=rooms.PARTNER,
            room=rooms.user(booking.partner_id),
        )
        notify(
            booking.partner_id,
            "booking_assigned",
            "New job offer",
            f"{booking.service.name} at {booking.address}",
            booking,
        )
    elif status == S.PARTNER_ACCEPTED:
        emit(
            "partner:assigned",
            events.partner_assigned(booking),
            namespace=rooms.CUSTOMER,
            room=[rooms.booking(booking.pk), rooms.user(booking.customer_id)],
        )
        notify(
            booking.customer_id,
            "booking_accepted",
            "Partner assigned",
            f"{booking.partner.name} accepted your booking",
            booking,
        )
    elif status == S.COMPLETED:
        notify(booking.customer_id, "booking_completed", "Booking complete", f"{booking.service.name} is done", booking)
        partner_services.earning_record(booking=booking)
    elif status == S.CANCELLED:
        _announce_cancel(booking, previous_partner)

    if status in ACTIVE_STATUSES or from_status in ACTIVE_STATUSES:
        relay.partner_bookings_changed(partner_id=(booking.partner_id or previous_partner.pk))
    if status in TERMINAL_STATUSES:
        # Nothing more is said about it: nobody stays in its room to hear a stale relay.
        close_room(rooms.booking(booking.pk), namespace=rooms.CUSTOMER)


def withdraw(booking: Booking, partner: Partner, reason: str) -> None:
    """Staff took the offer back (re-assigned, partner suspended): to the partner it is a cancellation."""
    emit(
        "booking:cancelled",
        events.withdrawn(booking, reason),
        namespace=rooms.PARTNER,
        room=rooms.user(partner.pk),
    )
    notify(partner.pk, "booking_cancelled", "Offer withdrawn", f"The offer of {booking.number} was withdrawn", booking)


def _announce_cancel(booking: Booking, partner: Partner | None) -> None:
    if partner is not None:
        emit("booking:cancelled", events.cancelled(booking), namespace=rooms.PARTNER, room=rooms.user(partner.pk))
        notify(partner.pk, "booking_cancelled", "Booking cancelled", f"{booking.number} was cancelled", booking)
    if booking.cancelled_by_id != booking.customer_id:
        gave_up = booking.cancelled_by_id is None and booking.cancel_reason == NO_PARTNER
        body = f"We could not find a partner for {booking.number}" if gave_up else booking.cancel_reason
        notify(booking.customer_id, "booking_cancelled", "Booking cancelled", body or booking.number, booking)


def notify(user_id: int, type: str, title: str, body: str, booking: Booking) -> None:
    notification_create(
        user_id=user_id,
        type=type,
        title=title,
        body=body,
        data={"bookingId": str(booking.pk), "bookingNumber": booking.number},
    )
