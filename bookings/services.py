"""The booking lifecycle (contract section 4): every write to a booking is here.

Each public verb opens a transaction, locks the booking row
(``select_for_update``), checks its actor rule against ``TRANSITIONS`` and hands
over to ``_booking_transition``, the only place a status changes. Events leave
through ``config.realtime.emit`` after the transaction commits.
"""

import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from bookings import events, relay, tallies
from bookings.dispatch import busy_elsewhere, eligible_partners
from bookings.geo import bounding_box
from bookings.models import (
    ACTIVE_STATUSES,
    HELD_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Booking,
    BookingRejection,
    BookingStatus,
    BookingStatusChange,
    DispatchState,
    Service,
)
from bookings.selectors import parse_booking_id
from bookings.serializers import NO_PARTNER
from config import rooms
from config.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from config.realtime.emit import close_room, emit
from messaging.notify import notification_create
from partners import services as partner_services
from partners.models import Partner
from partners.signals import partner_withdrawn, partners_dispatchable

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
# Statuses a partner may set with booking:status_update.
PARTNER_PROGRESS = (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED)
# Why an offer left its partner without them deciding (history note, rejection reason, withdrawal reason).
OFFER_EXPIRED, REASSIGNED, PARTNER_SUSPENDED = "offer_expired", "reassigned", "partner_suspended"
SCHEDULE_GRACE = timedelta(minutes=5)


# ---------------------------------------------------------------- create
def booking_create(
    *,
    customer: AbstractBaseUser,
    service: Service,
    scheduled_at: datetime,
    address: str,
    latitude: float,
    longitude: float,
    notes: str = "",
) -> Booking:
    """A customer's new booking: PENDING, announced, then offered to the nearest partner.

    A customer has at most ``OPEN_BOOKINGS_MAX`` bookings that have not finished (each ties
    up partners with offers): the customer's row is locked so two creates at once count
    each other.
    """
    if scheduled_at < timezone.now() - SCHEDULE_GRACE:
        raise ValidationError("scheduledAt must not be in the past", details={"scheduledAt": ["in the past"]})
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=customer.pk).exists()
        if Booking.objects.filter(customer=customer, status__in=OPEN_STATUSES).count() >= settings.OPEN_BOOKINGS_MAX:
            raise Conflict(
                f"at most {settings.OPEN_BOOKINGS_MAX} bookings may be open at once",
                details={"bookings": ["too many open"]},
            )
        booking = _insert_with_number(
            customer=customer,
            service=service,
            scheduled_at=scheduled_at,
            address=address,
            latitude=latitude,
            longitude=longitude,
            notes=notes,
            amount=service.price,
            currency=service.currency,
        )
        BookingStatusChange.objects.create(
            booking=booking, from_status="", to_status=S.PENDING, actor=customer, role=CUSTOMER
        )
        emit("booking:created", events.booking(booking), namespace=rooms.ADMIN, room=rooms.MONITOR_BOOKINGS)
        booking_dispatch(booking_id=booking.pk)
    booking.refresh_from_db()
    return booking


def _insert_with_number(**fields: Any) -> Booking:
    for _ in range(20):
        number = f"BK{random.randint(0, 999_999):06d}"
        try:
            with transaction.atomic():
                booking = Booking.objects.create(number=number, **fields)
                tallies.booking_added(booking)
                return booking
        except IntegrityError:
            if not Booking.objects.filter(number=number).exists():
                raise
    raise RuntimeError("could not find a free booking number")


# ---------------------------------------------------------------- dispatch and assignment
def booking_dispatch(*, booking_id: Any) -> Partner | None:
    """Offer a PENDING booking to the nearest eligible partner; ``None`` leaves it waiting."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != S.PENDING:
            return None
        return _dispatch(booking)


def _dispatch(booking: Booking) -> Partner | None:
    """Offer a PENDING booking (row locked) to the nearest partner it can claim, else leave it waiting."""
    if booking.dispatch_attempts < settings.DISPATCH_MAX_OFFERS:
        for partner in eligible_partners(booking):
            if _claim(booking, partner):
                return partner
    _wait_for_partner(booking)
    return None


class _ClaimLostError(Exception):
    """The partner was claimed by another booking between the search and the offer."""


def _claim(booking: Booking, partner: Partner) -> bool:
    """Offer ``booking`` to ``partner`` unless another dispatch got them first.

    In a savepoint: the offer's write meets the ``one_open_offer_per_partner`` constraint
    (a concurrent offer to the same partner makes it wait, then fail), and the partner's other
    jobs are read again after it (an accept that committed meanwhile). Either way the
    savepoint, its history row and its events go, and the caller tries the next candidate.
    Nothing here locks the partner's row: unrelated writes to it never make dispatch skip them.
    """
    try:
        with transaction.atomic():
            _booking_transition(booking, S.PARTNER_ASSIGNED, actor=None, role=DISPATCH, partner=partner)
            if busy_elsewhere(partner.pk, booking.pk):
                raise _ClaimLostError
    except (IntegrityError, _ClaimLostError):
        booking.refresh_from_db()
        return False
    return True


def _wait_for_partner(booking: Booking) -> None:
    """Nobody to offer it to: staff see it unassigned; dispatch looks again later while offers remain,
    and gives up ``DISPATCH_GIVE_UP_MINUTES`` after the booking's time (cancelled, customer told)."""
    now = timezone.now()
    give_up_at = booking.scheduled_at + timedelta(minutes=settings.DISPATCH_GIVE_UP_MINUTES)
    if now >= give_up_at:
        _give_up(booking)
        return
    exhausted = booking.dispatch_attempts >= settings.DISPATCH_MAX_OFFERS
    retry_at = now + timedelta(seconds=settings.DISPATCH_RETRY_SECONDS)
    booking.dispatch_due_at = give_up_at if exhausted else min(retry_at, give_up_at)
    newly_unassigned = booking.dispatch_state != DispatchState.UNASSIGNED
    booking.dispatch_state = DispatchState.UNASSIGNED
    booking.save(update_fields=["dispatch_state", "dispatch_due_at", "updated_at"])
    if newly_unassigned:
        emit("booking:updated", events.booking(booking), namespace=rooms.ADMIN, room=rooms.MONITOR_BOOKINGS)
        _notify(
            booking.customer_id,
            "booking_searching",
            "Still looking",
            f"We are still looking for a partner for {booking.number}",
            booking,
        )


def _give_up(booking: Booking) -> None:
    """No partner came: the booking is cancelled by dispatch (``no_partner``) and the customer told."""
    booking.cancel_reason = NO_PARTNER
    booking.cancelled_by = None
    _booking_transition(booking, S.CANCELLED, actor=None, role=DISPATCH, note=NO_PARTNER)


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
    radius = settings.DISPATCH_MAX_KM * 1000
    brought = 0
    with transaction.atomic():
        for partner in Partner.objects.filter(pk__in=partner_ids, last_latitude__isnull=False):
            south, north, west, east = bounding_box(partner.last_latitude, partner.last_longitude, radius)
            waiting = (
                Booking.objects.select_for_update(skip_locked=True)
                .filter(
                    status=S.PENDING,
                    dispatch_state=DispatchState.UNASSIGNED,
                    dispatch_due_at__gt=now,
                    service_id__in=Service.objects.filter(partners=partner).values("pk"),
                    latitude__range=(south, north),  # nobody is offered a job past DISPATCH_MAX_KM
                    longitude__range=(west, east),
                )
                .exclude(rejections__partner=partner)  # never offered to them again
                .order_by("created_at")
                .values_list("pk", flat=True)[:1]
            )
            brought += Booking.objects.filter(pk__in=list(waiting)).update(dispatch_due_at=now)
    return brought


def dispatch_sweep(*, limit: int = 100) -> int:
    """Bookings whose dispatch clock ran out: lapse their offers, search again. Returns how many.

    Each booking is taken in its own transaction with ``FOR UPDATE SKIP LOCKED``, so
    every process may sweep at once and each due booking is handled exactly once.
    """
    handled = 0
    # Lapses first: an offer's deadline is a promise to the partner and the customer; a retry
    # of a booking nobody could take can wait for the next sweep.
    for due in (Q(status=S.PARTNER_ASSIGNED), ~Q(status=S.PARTNER_ASSIGNED)):
        while handled < limit:
            with transaction.atomic():
                booking = (
                    Booking.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("service", "customer", "partner")
                    .filter(due, dispatch_due_at__lte=timezone.now())
                    .order_by("dispatch_due_at")
                    .first()
                )
                if booking is None:
                    break
                if booking.status == S.PARTNER_ASSIGNED:
                    _expire_offer(booking)
                elif booking.status == S.PENDING:
                    _dispatch(booking)
                else:  # nothing is due for a booking past dispatch; never expected
                    Booking.objects.filter(pk=booking.pk).update(dispatch_due_at=None)
            handled += 1
    return handled


def dispatch_backlog() -> int:
    """Bookings whose dispatch clock has run out and that no sweep has taken yet (a metric)."""
    return Booking.objects.filter(dispatch_due_at__lte=timezone.now()).count()


def _expire_offer(booking: Booking) -> None:
    """The partner let the offer lapse: back to PENDING, never offered to them again, offered to the next."""
    partner = booking.partner
    BookingRejection.objects.get_or_create(booking=booking, partner=partner, defaults={"reason": OFFER_EXPIRED})
    _booking_transition(booking, S.PENDING, actor=None, role=DISPATCH, note=OFFER_EXPIRED)
    emit(
        "booking:offer_expired",
        events.offer_expired(booking),
        namespace=rooms.PARTNER,
        room=rooms.user(partner.pk),
    )
    _notify(partner.pk, "offer_expired", "Offer expired", f"The offer of {booking.number} has expired", booking)
    _dispatch(booking)


def booking_assign(*, booking_id: Any, partner_id: Any, actor: AbstractBaseUser) -> Booking:
    """Staff override: offer a PENDING booking to any partner who is not suspended, or move an open offer.

    The partner is held against a suspension first (the same order a suspension locks in); a
    dispatch offering them something at the same moment meets the one-open-offer constraint,
    and whoever loses gets ``CONFLICT``.
    """
    if not actor.is_staff:
        raise Forbidden("only staff can assign partners")
    with transaction.atomic():
        _hold_partner(partner_id)
        booking = _locked(booking_id)
        partner = Partner.objects.filter(pk=partner_id).first()
        if partner is None:
            raise NotFound("no such partner")
        if partner.is_suspended:
            raise Conflict("this partner is suspended", details={"partnerId": ["suspended"]})
        _check(booking, S.PARTNER_ASSIGNED, STAFF)
        if Booking.objects.filter(partner=partner, status=S.PARTNER_ASSIGNED).exists():
            raise Conflict("this partner already holds an open offer", details={"partnerId": ["has an open offer"]})
        previous = booking.partner if booking.status == S.PARTNER_ASSIGNED else None
        if previous is not None:
            BookingRejection.objects.get_or_create(booking=booking, partner=previous, defaults={"reason": REASSIGNED})
        note = REASSIGNED if previous else ""
        try:
            with transaction.atomic():
                _booking_transition(booking, S.PARTNER_ASSIGNED, actor=actor, role=STAFF, partner=partner, note=note)
        except IntegrityError as exc:  # a dispatch offered them a job in the same instant
            raise Conflict(
                "this partner already holds an open offer", details={"partnerId": ["has an open offer"]}
            ) from exc
        if previous is not None:
            _withdraw(booking, previous, REASSIGNED)
    return booking


# ---------------------------------------------------------------- the partner's moves
def booking_accept(*, booking_id: Any, partner_user: AbstractBaseUser) -> Booking:
    with transaction.atomic():
        _hold_partner(partner_user.pk)
        booking = _locked(booking_id)
        _require_assigned_partner(booking, partner_user)
        _booking_transition(booking, S.PARTNER_ACCEPTED, actor=partner_user, role=PARTNER)
    return booking


def booking_reject(*, booking_id: Any, partner_user: AbstractBaseUser, reason: str = "") -> Booking:
    """Back to PENDING, never offered to this partner again, and dispatched anew."""
    with transaction.atomic():
        booking = _locked(booking_id)
        _require_assigned_partner(booking, partner_user)
        _check(booking, S.PENDING, PARTNER)
        BookingRejection.objects.get_or_create(booking=booking, partner_id=partner_user.pk, defaults={"reason": reason})
        _booking_transition(booking, S.PENDING, actor=partner_user, role=PARTNER, note=reason)
        booking_dispatch(booking_id=booking.pk)
    booking.refresh_from_db()
    return booking


def booking_update_status(*, booking_id: Any, partner_user: AbstractBaseUser, status: str) -> Booking:
    if status not in PARTNER_PROGRESS:
        raise InvalidTransition(f"a partner cannot set the status {status}")
    with transaction.atomic():
        booking = _locked(booking_id)
        _require_assigned_partner(booking, partner_user)
        _booking_transition(booking, status, actor=partner_user, role=PARTNER)
    return booking


# ---------------------------------------------------------------- cancel
def booking_cancel(*, booking_id: Any, actor: AbstractBaseUser, reason: str = "") -> Booking:
    """Cancel as the booking's customer or as staff."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.customer_id == actor.pk:
            role = CUSTOMER
        elif actor.is_staff:
            role = STAFF
        else:
            raise Forbidden("this is not your booking")
        if role == STAFF and not reason.strip():
            raise ValidationError("staff say why they cancel", details={"reason": ["required"]})
        booking.cancel_reason = reason[:500]
        booking.cancelled_by = actor
        _booking_transition(booking, S.CANCELLED, actor=actor, role=role, note=reason)
    return booking


def booking_complete(*, booking_id: Any, actor: AbstractBaseUser, note: str = "") -> Booking:
    """Staff complete a job on the partner's behalf (PARTNER_ARRIVED or IN_PROGRESS): the partner earns as usual."""
    if not actor.is_staff:
        raise Forbidden("only staff can complete a job for its partner")
    with transaction.atomic():
        booking = _locked(booking_id)
        _booking_transition(booking, S.COMPLETED, actor=actor, role=STAFF, note=note or "completed by staff")
    return booking


def partner_jobs_release(*, partner_id: Any, actor: AbstractBaseUser, reason: str = PARTNER_SUSPENDED) -> int:
    """A partner who can no longer work (suspended, deactivated) loses every job not started yet.

    Open offers and accepted, en-route or arrived jobs go back to PENDING and are dispatched
    again; the partner hears ``booking:cancelled`` (``reason``), the customer the status and
    a notification. A job IN_PROGRESS stays (the work is under way) and shows
    ``attention: "partner_suspended"`` to staff. Caller holds a transaction and the partner's
    row lock (so a racing accept waits for this, then finds the partner suspended).
    Returns how many went back.
    """
    released = 0
    waiting = (S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED)
    for booking_id in Booking.objects.filter(partner_id=partner_id, status__in=waiting).values_list("pk", flat=True):
        booking = _locked(booking_id)
        if booking.status not in waiting or booking.partner_id != partner_id:
            continue
        previous = booking.partner
        _booking_transition(booking, S.PENDING, actor=actor, role=STAFF, note=reason)
        _withdraw(booking, previous, reason)
        if booking.customer_id:
            _notify(
                booking.customer_id,
                "booking_reassigning",
                "Finding you another partner",
                f"Your partner can no longer take {booking.number}; we are finding another",
                booking,
            )
        _dispatch(booking)
        released += 1
    return released


def connect_receivers() -> None:
    """Dispatch answers what partners announce (``partners.signals``): a partner who can no
    longer work hands their jobs back; a partner who may be free brings waiting bookings due."""
    partner_withdrawn.connect(_partner_withdrawn, dispatch_uid="bookings.partner_withdrawn")
    partners_dispatchable.connect(_partners_dispatchable, dispatch_uid="bookings.partners_dispatchable")


def _partner_withdrawn(sender: Any, *, partner_id: Any, actor: AbstractBaseUser, **kwargs: Any) -> None:
    # Contract 9.3 gives suspension and deactivation one reason: partner_suspended.
    partner_jobs_release(partner_id=partner_id, actor=actor)


def _partners_dispatchable(sender: Any, *, partner_ids: list[Any], **kwargs: Any) -> None:
    dispatch_waiting_now(partner_ids=partner_ids)


# ---------------------------------------------------------------- internals
def _hold_partner(partner_id: Any) -> None:
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


def _locked(booking_id: Any) -> Booking:
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


def _require_assigned_partner(booking: Booking, partner_user: AbstractBaseUser) -> None:
    if booking.partner_id != partner_user.pk:
        if booking.rejections.filter(partner_id=partner_user.pk, reason__in=(OFFER_EXPIRED, REASSIGNED)).exists():
            raise InvalidTransition("this offer is no longer yours: it expired or was re-assigned")
        raise Forbidden("this booking is not assigned to you")
    if booking.partner.is_suspended:
        raise Forbidden("This partner is suspended")


def _check(booking: Booking, to_status: str, role: str) -> None:
    allowed = TRANSITIONS.get((booking.status, to_status))
    if allowed is None or role not in allowed:
        raise InvalidTransition(f"cannot go from {booking.status} to {to_status}")


def _booking_transition(
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
    _check(booking, to_status, role)
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
        _notify(
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
        _notify(
            booking.customer_id,
            "booking_accepted",
            "Partner assigned",
            f"{booking.partner.name} accepted your booking",
            booking,
        )
    elif status == S.COMPLETED:
        _notify(
            booking.customer_id, "booking_completed", "Booking complete", f"{booking.service.name} is done", booking
        )
        partner_services.earning_record(booking=booking)
    elif status == S.CANCELLED:
        _announce_cancel(booking, previous_partner)

    if status in ACTIVE_STATUSES or from_status in ACTIVE_STATUSES:
        relay.partner_bookings_changed(partner_id=(booking.partner_id or previous_partner.pk))
    if status in TERMINAL_STATUSES:
        # Nothing more is said about it: nobody stays in its room to hear a stale relay.
        close_room(rooms.booking(booking.pk), namespace=rooms.CUSTOMER)


def _withdraw(booking: Booking, partner: Partner, reason: str) -> None:
    """Staff took the offer back (re-assigned, partner suspended): to the partner it is a cancellation."""
    emit(
        "booking:cancelled",
        events.withdrawn(booking, reason),
        namespace=rooms.PARTNER,
        room=rooms.user(partner.pk),
    )
    _notify(partner.pk, "booking_cancelled", "Offer withdrawn", f"The offer of {booking.number} was withdrawn", booking)


def _announce_cancel(booking: Booking, partner: Partner | None) -> None:
    if partner is not None:
        emit("booking:cancelled", events.cancelled(booking), namespace=rooms.PARTNER, room=rooms.user(partner.pk))
        _notify(partner.pk, "booking_cancelled", "Booking cancelled", f"{booking.number} was cancelled", booking)
    if booking.cancelled_by_id != booking.customer_id:
        gave_up = booking.cancelled_by_id is None and booking.cancel_reason == NO_PARTNER
        body = f"We could not find a partner for {booking.number}" if gave_up else booking.cancel_reason
        _notify(booking.customer_id, "booking_cancelled", "Booking cancelled", body or booking.number, booking)


def _notify(user_id: int, type: str, title: str, body: str, booking: Booking) -> None:
    notification_create(
        user_id=user_id,
        type=type,
        title=title,
        body=body,
        data={"bookingId": str(booking.pk), "bookingNumber": booking.number},
    )
