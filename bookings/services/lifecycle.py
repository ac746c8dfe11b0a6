"""The booking lifecycle's core (contract section 4): who may make which move, and the one
place a status changes.

Each verb of the package opens a transaction, locks the booking row (``locked``), checks
its actor rule against ``TRANSITIONS`` and hands over to ``transition``, which records
the history row and announces the move as its status's row of ``ANNOUNCEMENTS`` says: the
events, ``bookings.signals.booking_status_changed`` (``messaging`` stores the notifications,
listening), the earning, the relay's re-read, the room's close. Events leave through
``config.realtime.emit`` after the transaction commits.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from bookings import arrival, events, relay, tallies
from bookings.dispatch import dispatch_waiting_now
from bookings.models import (
    HELD_STATUSES,
    Booking,
    BookingStatus,
    BookingStatusChange,
    DispatchState,
)
from bookings.selectors import parse_booking_id
from bookings.signals import booking_status_changed, offer_withdrawn
from config import rooms
from config.errors import Forbidden, InvalidTransition, NotFound
from config.realtime.emit import close_room, emit
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


class Tell(NamedTuple):
    """One event a move sends: its name, its payload's builder, and to whom (``None``: nobody)."""

    event: str
    payload: Callable[[Booking], dict[str, Any]]
    namespace: str
    audience: Callable[[Booking, Partner | None], str | list[str] | None]


def _booking_room(booking: Booking, partner: Partner | None) -> str:
    return rooms.booking(booking.pk)


def _monitor(booking: Booking, partner: Partner | None) -> str:
    return rooms.MONITOR_BOOKINGS


def _customer(booking: Booking, partner: Partner | None) -> list[str]:
    return [rooms.booking(booking.pk), rooms.user(booking.customer_id)]


def _partner(booking: Booking, partner: Partner | None) -> str | None:
    return rooms.user(partner.pk) if partner is not None else None


class Announcement(NamedTuple):
    """What a booking's arrival in a status tells. ``tells``: the events, in order (the
    notifications are ``messaging``'s, on ``booking_status_changed``). ``pays``: the partner's
    earning is recorded. ``tracked``: the partner's position is relayed to the booking's room in
    this status, so a move into or out of it has every process re-read the partner's relay
    list. ``final``: nothing more is said, the booking's room is closed."""

    tells: tuple[Tell, ...]
    pays: bool = False
    tracked: bool = False
    final: bool = False


# Every move: the customer's view of the booking, and staff's monitor.
EVERY_MOVE = (
    Tell("booking:status_updated", events.status_updated, rooms.CUSTOMER, _booking_room),
    Tell("booking:updated", events.booking, rooms.ADMIN, _monitor),
)
# The new status -> what the move announces; ``partner`` is the booking's, or the one it just left.
ANNOUNCEMENTS: dict[str, Announcement] = {
    S.PENDING: Announcement(EVERY_MOVE),
    S.PARTNER_ASSIGNED: Announcement(
        (*EVERY_MOVE, Tell("booking:new_request", events.new_request, rooms.PARTNER, _partner))
    ),
    S.PARTNER_ACCEPTED: Announcement(
        (*EVERY_MOVE, Tell("partner:assigned", events.partner_assigned, rooms.CUSTOMER, _customer)), tracked=True
    ),
    S.PARTNER_EN_ROUTE: Announcement(EVERY_MOVE, tracked=True),
    S.PARTNER_ARRIVED: Announcement(EVERY_MOVE, tracked=True),
    S.IN_PROGRESS: Announcement(EVERY_MOVE, tracked=True),
    S.COMPLETED: Announcement(EVERY_MOVE, pays=True, final=True),
    S.CANCELLED: Announcement(
        (*EVERY_MOVE, Tell("booking:cancelled", events.cancelled, rooms.PARTNER, _partner)), final=True
    ),
}


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

    Records the history row and announces the move (``ANNOUNCEMENTS``).
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
        arrival.arrival_forget(booking)
    else:
        booking.dispatch_state = DispatchState.DONE
        if to_status == S.COMPLETED:
            booking.completed_at = timezone.now()
        elif to_status == S.PARTNER_ARRIVED:
            arrival.arrived_far_record(booking)
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
    """Say the move as its row of ``ANNOUNCEMENTS`` reads, in the row's order: the events, the
    signal (``messaging`` notifies), the earning, the relay's re-read, the room's close."""
    row = ANNOUNCEMENTS[booking.status]
    partner = booking.partner or previous_partner
    for tell in row.tells:
        room = tell.audience(booking, partner)
        if room is not None:
            emit(tell.event, tell.payload(booking), namespace=tell.namespace, room=room)
    booking_status_changed.send(sender=Booking, booking=booking, from_status=from_status, partner=partner)
    if row.pays:
        partner_services.earning_record(booking=booking)
    if row.tracked or ANNOUNCEMENTS[from_status].tracked:
        relay.partner_bookings_changed(partner_id=partner.pk)
    if row.final:
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
    offer_withdrawn.send(sender=Booking, booking=booking, partner=partner, reason=reason)
