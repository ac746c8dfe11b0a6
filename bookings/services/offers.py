"""Offers: dispatch, its clock (lapses, retries, giving up), staff assignment, and a partner
withdrawn from work. Who is eligible and nearest is ``bookings.dispatch``."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bookings import events
from bookings.dispatch import busy_elsewhere, dispatch_waiting_now, eligible_partners
from bookings.models import Booking, BookingRejection, DispatchState
from bookings.services.lifecycle import (
    DISPATCH,
    OFFER_EXPIRED,
    PARTNER_SUSPENDED,
    REASSIGNED,
    STAFF,
    S,
    check,
    hold_partner,
    locked,
    transition,
    withdraw,
)
from bookings.shapes import NO_PARTNER
from bookings.signals import booking_released, offer_expired, partner_search_continues
from config import rooms
from config.errors import Conflict, Forbidden, NotFound
from config.realtime.emit import emit
from partners.models import Partner
from partners.signals import partner_withdrawn, partners_dispatchable


def booking_dispatch(*, booking_id: Any) -> Partner | None:
    """Offer a PENDING booking to the nearest eligible partner; ``None`` leaves it waiting."""
    with transaction.atomic():
        booking = locked(booking_id)
        if booking.status != S.PENDING:
            return None
        return offer_to_nearest(booking)


def offer_to_nearest(booking: Booking) -> Partner | None:
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
            transition(booking, S.PARTNER_ASSIGNED, actor=None, role=DISPATCH, partner=partner)
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
        partner_search_continues.send(sender=Booking, booking=booking)


def _give_up(booking: Booking) -> None:
    """No partner came: the booking is cancelled by dispatch (``no_partner``) and the customer told."""
    booking.cancel_reason = NO_PARTNER
    booking.cancelled_by = None
    transition(booking, S.CANCELLED, actor=None, role=DISPATCH, note=NO_PARTNER)


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
                    offer_to_nearest(booking)
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
    transition(booking, S.PENDING, actor=None, role=DISPATCH, note=OFFER_EXPIRED)
    emit(
        "booking:offer_expired",
        events.offer_expired(booking),
        namespace=rooms.PARTNER,
        room=rooms.user(partner.pk),
    )
    offer_expired.send(sender=Booking, booking=booking, partner=partner)
    offer_to_nearest(booking)


def booking_assign(*, booking_id: Any, partner_id: Any, actor: AbstractBaseUser) -> Booking:
    """Staff override: offer a PENDING booking to any partner who is not suspended, or move an open offer.

    The partner is held against a suspension first (the same order a suspension locks in); a
    dispatch offering them something at the same moment meets the one-open-offer constraint,
    and whoever loses gets ``CONFLICT``.
    """
    if not actor.is_staff:
        raise Forbidden("only staff can assign partners")
    with transaction.atomic():
        hold_partner(partner_id)
        booking = locked(booking_id)
        partner = Partner.objects.filter(pk=partner_id).first()
        if partner is None:
            raise NotFound("no such partner")
        if partner.is_suspended:
            raise Conflict("this partner is suspended", details={"partnerId": ["suspended"]})
        check(booking, S.PARTNER_ASSIGNED, STAFF)
        if Booking.objects.filter(partner=partner, status=S.PARTNER_ASSIGNED).exists():
            raise Conflict("this partner already holds an open offer", details={"partnerId": ["has an open offer"]})
        previous = booking.partner if booking.status == S.PARTNER_ASSIGNED else None
        if previous is not None:
            BookingRejection.objects.get_or_create(booking=booking, partner=previous, defaults={"reason": REASSIGNED})
        note = REASSIGNED if previous else ""
        try:
            with transaction.atomic():
                transition(booking, S.PARTNER_ASSIGNED, actor=actor, role=STAFF, partner=partner, note=note)
        except IntegrityError as exc:  # a dispatch offered them a job in the same instant
            raise Conflict(
                "this partner already holds an open offer", details={"partnerId": ["has an open offer"]}
            ) from exc
        if previous is not None:
            withdraw(booking, previous, REASSIGNED)
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
        booking = locked(booking_id)
        if booking.status not in waiting or booking.partner_id != partner_id:
            continue
        previous = booking.partner
        transition(booking, S.PENDING, actor=actor, role=STAFF, note=reason)
        withdraw(booking, previous, reason)
        booking_released.send(sender=Booking, booking=booking)
        offer_to_nearest(booking)
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
