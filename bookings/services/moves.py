"""The moves people make: the partner accepts, rejects and progresses a job; the customer or
staff cancel; staff complete a job for its partner."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from bookings.models import PARTNER_PROGRESS, Booking, BookingRejection
from bookings.services.lifecycle import (
    CUSTOMER,
    PARTNER,
    STAFF,
    S,
    check,
    hold_partner,
    locked,
    require_assigned_partner,
    transition,
)
from bookings.services.offers import booking_dispatch
from config.errors import Forbidden, InvalidTransition, ValidationError


def booking_accept(*, booking_id: Any, partner_user: AbstractBaseUser) -> Booking:
    with transaction.atomic():
        hold_partner(partner_user.pk)
        booking = locked(booking_id)
        require_assigned_partner(booking, partner_user)
        transition(booking, S.PARTNER_ACCEPTED, actor=partner_user, role=PARTNER)
    return booking


def booking_reject(*, booking_id: Any, partner_user: AbstractBaseUser, reason: str = "") -> Booking:
    """Back to PENDING, never offered to this partner again, and dispatched anew."""
    with transaction.atomic():
        booking = locked(booking_id)
        require_assigned_partner(booking, partner_user)
        check(booking, S.PENDING, PARTNER)
        BookingRejection.objects.get_or_create(booking=booking, partner_id=partner_user.pk, defaults={"reason": reason})
        transition(booking, S.PENDING, actor=partner_user, role=PARTNER, note=reason)
        booking_dispatch(booking_id=booking.pk)
    booking.refresh_from_db()
    return booking


def booking_update_status(*, booking_id: Any, partner_user: AbstractBaseUser, status: str) -> Booking:
    if status not in PARTNER_PROGRESS:
        raise InvalidTransition(f"a partner cannot set the status {status}")
    with transaction.atomic():
        booking = locked(booking_id)
        require_assigned_partner(booking, partner_user)
        transition(booking, status, actor=partner_user, role=PARTNER)
    return booking


def booking_cancel(*, booking_id: Any, actor: AbstractBaseUser, reason: str = "") -> Booking:
    """Cancel as the booking's customer or as staff."""
    with transaction.atomic():
        booking = locked(booking_id)
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
        transition(booking, S.CANCELLED, actor=actor, role=role, note=reason)
    return booking


def booking_complete(*, booking_id: Any, actor: AbstractBaseUser, note: str = "") -> Booking:
    """Staff complete a job on the partner's behalf (PARTNER_ARRIVED or IN_PROGRESS): the partner earns as usual."""
    if not actor.is_staff:
        raise Forbidden("only staff can complete a job for its partner")
    with transaction.atomic():
        booking = locked(booking_id)
        transition(booking, S.COMPLETED, actor=actor, role=STAFF, note=note or "completed by staff")
    return booking
