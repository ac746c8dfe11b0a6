"""The booking lifecycle (contract section 4): every write to a booking is here.

Each public verb opens a transaction, locks the booking row
(``select_for_update``), checks its actor rule against ``TRANSITIONS`` and hands
over to ``_booking_transition``, the only place a status changes. Events leave
through ``config.realtime.emit`` after the transaction commits.
"""

import math
import random
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import events
from bookings.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Booking,
    BookingRejection,
    BookingStatus,
    BookingStatusChange,
    CustomerProfile,
    Service,
)
from bookings.selectors import parse_booking_id
from config.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from config.realtime import rooms
from config.realtime.emit import close_room, emit
from messaging.notify import notification_create
from partners.models import KycStatus, Partner

S = BookingStatus
CUSTOMER, PARTNER, STAFF, DISPATCH = "customer", "partner", "staff", "dispatch"

# (from, to) -> who may make that move.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (S.PENDING, S.PARTNER_ASSIGNED): frozenset({DISPATCH, STAFF}),
    (S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED): frozenset({PARTNER}),
    (S.PARTNER_ASSIGNED, S.PENDING): frozenset({PARTNER}),
    (S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE): frozenset({PARTNER}),
    (S.PARTNER_ACCEPTED, S.PARTNER_ARRIVED): frozenset({PARTNER}),
    (S.PARTNER_ACCEPTED, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED): frozenset({PARTNER}),
    (S.PARTNER_EN_ROUTE, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.PARTNER_ARRIVED, S.IN_PROGRESS): frozenset({PARTNER}),
    (S.IN_PROGRESS, S.COMPLETED): frozenset({PARTNER}),
    **{
        (status, S.CANCELLED): frozenset({CUSTOMER, STAFF})
        for status in (S.PENDING, S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE)
    },
}
# Statuses a partner may set with booking:status_update.
PARTNER_PROGRESS = (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED)
EARTH_RADIUS_KM = 6371.0088
SCHEDULE_GRACE = timedelta(minutes=5)


# ---------------------------------------------------------------- customers
def user_create(*, username: str, password: str, **fields: Any) -> AbstractBaseUser:
    """A new account; a taken username (whatever its case) is ``CONFLICT``. Caller holds a transaction."""
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        raise Conflict("this username is taken", details={"username": ["taken"]})
    try:
        with transaction.atomic():
            return users.create_user(username=username, password=password, **fields)
    except IntegrityError as exc:  # two sign-ups racing for one name
        raise Conflict("this username is taken", details={"username": ["taken"]}) from exc


def customer_register(*, username: str, password: str, email: str, name: str, phone: str) -> AbstractBaseUser:
    """A customer's account: the user (name on it) and the profile with the phone."""
    with transaction.atomic():
        user = user_create(username=username, password=password, email=email, first_name=name[:150])
        CustomerProfile.objects.create(user=user, phone=phone)
    return user


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
    """A customer's new booking: PENDING, announced, then offered to the nearest partner."""
    if scheduled_at < timezone.now() - SCHEDULE_GRACE:
        raise ValidationError("scheduledAt must not be in the past", details={"scheduledAt": ["in the past"]})
    with transaction.atomic():
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
        BookingStatusChange.objects.create(booking=booking, from_status="", to_status=S.PENDING, actor=customer)
        emit("booking:created", events.booking(booking), namespace=rooms.ADMIN, room=rooms.MONITOR_BOOKINGS)
        booking_dispatch(booking_id=booking.pk)
    booking.refresh_from_db()
    return booking


def _insert_with_number(**fields: Any) -> Booking:
    for _ in range(20):
        number = f"BK{random.randint(0, 999_999):06d}"
        try:
            with transaction.atomic():
                return Booking.objects.create(number=number, **fields)
        except IntegrityError:
            if not Booking.objects.filter(number=number).exists():
                raise
    raise RuntimeError("could not find a free booking number")


# ---------------------------------------------------------------- dispatch and assignment
def booking_dispatch(*, booking_id: Any) -> Partner | None:
    """Offer a PENDING booking to the nearest eligible partner; ``None`` leaves it for staff."""
    with transaction.atomic():
        booking = _locked(booking_id)
        if booking.status != S.PENDING:
            return None
        partner = nearest_eligible_partner(booking)
        if partner is None:
            return None
        _booking_transition(booking, S.PARTNER_ASSIGNED, actor=None, role=DISPATCH, partner=partner)
        return partner


def nearest_eligible_partner(booking: Booking) -> Partner | None:
    """Nearest partner (great-circle) who may take ``booking`` now (contract section 4)."""
    candidates = (
        Partner.objects.filter(
            services=booking.service_id,
            kyc_status=KycStatus.APPROVED,
            is_suspended=False,
            is_available=True,
            online_until__gt=timezone.now(),
            user__is_active=True,
            last_latitude__isnull=False,
            last_longitude__isnull=False,
        )
        .exclude(pk=booking.customer_id)
        .exclude(rejections__booking=booking)
        .exclude(bookings__status__in=ACTIVE_STATUSES)
        .values_list("pk", "last_latitude", "last_longitude")
    )
    best = min(
        candidates,
        key=lambda row: haversine_km(booking.latitude, booking.longitude, row[1], row[2]),
        default=None,
    )
    return Partner.objects.get(pk=best[0]) if best else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def booking_assign(*, booking_id: Any, partner_id: Any, actor: AbstractBaseUser) -> Booking:
    """Staff override: offer a PENDING booking to any partner who is not suspended."""
    if not actor.is_staff:
        raise Forbidden("only staff can assign partners")
    with transaction.atomic():
        booking = _locked(booking_id)
        partner = Partner.objects.filter(pk=partner_id).first()
        if partner is None:
            raise NotFound("no such partner")
        if partner.is_suspended:
            raise Conflict("this partner is suspended", details={"partnerId": ["suspended"]})
        _check(booking, S.PARTNER_ASSIGNED, STAFF)
        _booking_transition(booking, S.PARTNER_ASSIGNED, actor=actor, role=STAFF, partner=partner)
    return booking


# ---------------------------------------------------------------- the partner's moves
def booking_accept(*, booking_id: Any, partner_user: AbstractBaseUser) -> Booking:
    with transaction.atomic():
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
        booking.cancel_reason = reason[:500]
        booking.cancelled_by = actor
        _booking_transition(booking, S.CANCELLED, actor=actor, role=role, note=reason)
    return booking


# ---------------------------------------------------------------- internals
def _locked(booking_id: Any) -> Booking:
    booking = (
        Booking.objects.select_for_update(of=("self",))
        .select_related("service", "customer", "partner")
        .filter(pk=parse_booking_id(booking_id))
        .first()
    )
    if booking is None:
        raise NotFound("no such booking")
    return booking


def _require_assigned_partner(booking: Booking, partner_user: AbstractBaseUser) -> None:
    if booking.partner_id != partner_user.pk:
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
    if to_status == S.PARTNER_ASSIGNED:
        booking.partner = partner
    elif to_status == S.PENDING:
        booking.partner = None
    elif to_status == S.COMPLETED:
        booking.completed_at = timezone.now()
    booking.save()
    BookingStatusChange.objects.create(
        booking=booking,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        partner=booking.partner or previous_partner,
        note=note[:500],
    )
    _announce(booking, from_status, previous_partner)


def _announce(booking: Booking, from_status: str, previous_partner: Partner | None) -> None:
    from partners import services as partner_services

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
        partner_services.partner_bookings_changed(partner_id=(booking.partner_id or previous_partner.pk))
    if status in TERMINAL_STATUSES:
        # Nothing more is said about it: nobody stays in its room to hear a stale relay.
        close_room(rooms.booking(booking.pk), namespace=rooms.CUSTOMER)


def _announce_cancel(booking: Booking, partner: Partner | None) -> None:
    if partner is not None:
        emit("booking:cancelled", events.cancelled(booking), namespace=rooms.PARTNER, room=rooms.user(partner.pk))
        _notify(partner.pk, "booking_cancelled", "Booking cancelled", f"{booking.number} was cancelled", booking)
    if booking.cancelled_by_id != booking.customer_id:
        _notify(
            booking.customer_id,
            "booking_cancelled",
            "Booking cancelled",
            booking.cancel_reason or booking.number,
            booking,
        )


def _notify(user_id: int, type: str, title: str, body: str, booking: Booking) -> None:
    notification_create(
        user_id=user_id,
        type=type,
        title=title,
        body=body,
        data={"bookingId": str(booking.pk), "bookingNumber": booking.number},
    )
