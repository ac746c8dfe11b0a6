"""Reads of bookings, with the viewer's rights applied."""

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Booking, BookingStatus, DispatchState
from config.errors import Forbidden, NotFound
from config.parsing import parse_uuid


def parse_booking_id(value: Any) -> uuid.UUID:
    """A booking id: a UUID (``VALIDATION_ERROR`` when malformed; looking it up says ``NOT_FOUND``)."""
    return parse_uuid(value, field="bookingId")


def booking_id_from(payload: Any) -> uuid.UUID:
    """A booking id sent bare (as in the original document) or as ``{bookingId}``."""
    return parse_booking_id(payload.get("bookingId") if isinstance(payload, dict) else payload)


def shaped_bookings() -> QuerySet[Booking]:
    """Bookings with what ``shapes.booking_data`` reads (service, customer, partner): one query."""
    return Booking.objects.select_related("service", "customer", "partner")


def bookings_for(user: AbstractBaseUser) -> QuerySet[Booking]:
    """Bookings a user may list: all for staff, else their own as customer or as partner."""
    qs = shaped_bookings()
    if user.is_staff:
        return qs
    return qs.filter(Q(customer=user) | Q(partner_id=user.pk))


def booking_for_viewer(*, booking_id: Any, user: AbstractBaseUser) -> Booking:
    booking = shaped_bookings().filter(pk=parse_booking_id(booking_id)).first()
    if booking is None:
        raise NotFound("no such booking")
    if not (user.is_staff or booking.customer_id == user.pk or booking.partner_id == user.pk):
        raise Forbidden("this is not your booking")
    return booking


def booking_for_customer(*, booking_id: Any, user: AbstractBaseUser) -> Booking:
    """The booking if ``user`` is its customer (what ``booking:track`` may watch)."""
    return customers_booking(booking_for_viewer(booking_id=booking_id, user=user), user)


def customers_booking(booking: Booking | None, user: AbstractBaseUser) -> Booking:
    """``booking`` (read already) if ``user`` may watch it as its customer, or staff; else what
    ``booking_for_customer`` raises: ``NOT_FOUND`` for none, ``FORBIDDEN`` for someone else's."""
    if booking is None:
        raise NotFound("no such booking")
    if booking.customer_id != user.pk and not user.is_staff:
        raise Forbidden("this is not your booking")
    return booking


def bookings_by_id(*, booking_ids: list[uuid.UUID]) -> dict[uuid.UUID, Booking]:
    """The bookings of these ids that exist, with what ``booking_data`` reads (service, customer,
    partner): one query for many, where ``booking_for_viewer`` compiles one per booking (the ORM's
    compilation is most of such a read's cost; ``booking:track``'s reads of a moment, issue 34)."""
    rows = shaped_bookings().filter(pk__in=booking_ids)
    return {booking.pk: booking for booking in rows.order_by()}


def watchable_booking_ids(*, user: AbstractBaseUser, booking_ids: list[str], finished: bool = False) -> set[str]:
    """Which of these bookings ``user`` may watch now (``booking:track``'s rule): theirs as customer
    unless they are staff, and unfinished unless ``finished``. One query, for the rooms a socket holds."""
    ids = []
    for value in booking_ids:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    qs = Booking.objects.filter(pk__in=ids)
    if not finished:
        qs = qs.exclude(status__in=TERMINAL_STATUSES)
    if not user.is_staff:
        qs = qs.filter(customer_id=user.pk)
    return {str(pk) for pk in qs.values_list("pk", flat=True)}


def bookings_matching(queryset: QuerySet[Booking], term: str) -> QuerySet[Booking]:
    """The bookings a search names: its number, or the exact username of its customer or partner.

    Each is an indexed lookup (the number's and the username's unique indexes, then the
    customer's and partner's booking indexes), so a search costs the same at any history size;
    a substring search over a million bookings would read them all.
    """
    term = term.strip()
    if not term:
        return queryset
    users = list(get_user_model().objects.filter(username=term).values_list("pk", flat=True))
    return queryset.filter(Q(number=term.upper()) | Q(customer_id__in=users) | Q(partner_id__in=users))


def bookings_needing_staff() -> QuerySet[Booking]:
    """Open bookings whose ``attention`` is set (``shapes.attention``), oldest first: the dashboard's top rows."""
    stale = timezone.now() - timedelta(minutes=settings.JOB_STALE_MINUTES)
    quiet = Q(updated_at__lt=stale) & (
        Q(partner__last_location_at__isnull=True) | Q(partner__last_location_at__lt=stale)
    )
    # Arrived far away (contract 10.3) and not seen near since.
    far = Q(arrived_far_at__isnull=False) & (Q(nearby_at__isnull=True) | Q(nearby_at__lt=F("arrived_far_at")))
    return (
        shaped_bookings()
        .filter(
            Q(status=BookingStatus.PENDING, dispatch_state=DispatchState.UNASSIGNED)
            | (Q(status__in=ACTIVE_STATUSES) & (Q(partner__is_suspended=True) | quiet | far))
        )
        .order_by("created_at")
    )


# Where a partner's position goes: (booking id, booking latitude, booking longitude).
RelayTarget = tuple[str, float, float]


def relay_targets_of(*, partner_ids: list[int]) -> dict[int, list[RelayTarget]]:
    """Per partner, the active bookings whose rooms their location is relayed to, with their places
    (for the ETA); partners with none are absent.

    Raw SQL: it runs on every partner connect and every change of a partner's
    bookings, and the ORM's compilation would cost more than the query.
    """
    if not partner_ids:
        return {}
    table = connection.ops.quote_name(Booking._meta.db_table)
    statuses = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    partners = ", ".join(["%s"] * len(partner_ids))
    found: dict[int, list[RelayTarget]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT partner_id, id, latitude, longitude FROM {table} "
            f"WHERE partner_id IN ({partners}) AND status IN ({statuses})",
            [*partner_ids, *ACTIVE_STATUSES],
        )
        for partner_id, booking_id, latitude, longitude in cursor.fetchall():
            found.setdefault(partner_id, []).append((str(uuid.UUID(str(booking_id))), latitude, longitude))
    return found
