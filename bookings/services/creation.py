"""A customer's new booking: numbered, counted, announced to staff, then offered."""

import random
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from bookings import events, tallies
from bookings.models import OPEN_STATUSES, Booking, BookingStatusChange, Service
from bookings.services.lifecycle import CUSTOMER, S
from bookings.services.offers import booking_dispatch
from config import rooms
from config.errors import Conflict, ValidationError
from config.realtime.emit import emit

SCHEDULE_GRACE = timedelta(minutes=5)


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
        booking = insert_with_number(
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


def insert_with_number(**fields: Any) -> Booking:
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
