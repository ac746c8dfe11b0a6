"""Reads of conversations and notifications."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus
from bookings.selectors import parse_booking_id
from config.parsing import parse_id, parse_user_id
from messaging.models import Message, Notification
from partners.models import Partner

# After completion the two may still talk this long (a forgotten key, a receipt).
AFTER_COMPLETION = timedelta(hours=24)


def recipient_with_link(*, sender_id: int, recipient_id: int, booking_id: Any = None) -> dict[str, Any] | None:
    """The active recipient, whether a booking links them to the sender, and whether the
    recipient (when staff) wrote to the sender before (``None``: no such user).

    The rule of who may talk (contract 5.5, 9.3), in one place: a booking between the two,
    in PARTNER_ACCEPTED..IN_PROGRESS, or COMPLETED within ``AFTER_COMPLETION``, whose partner
    is not suspended; staff are written to only in reply (contract 10.2), so ``asked`` is
    looked up for a staff recipient only (the ``message_conversation`` index).
    Raw SQL because every message and typing check runs it and the ORM's
    compilation of this query costs more than the query itself.
    """
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    bookings = connection.ops.quote_name(Booking._meta.db_table)
    partners = connection.ops.quote_name(Partner._meta.db_table)  # a suspended partner's link is gone
    messages = connection.ops.quote_name(Message._meta.db_table)
    active = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    params: list[Any] = [
        sender_id,
        recipient_id,
        recipient_id,
        sender_id,
        *ACTIVE_STATUSES,
        BookingStatus.COMPLETED,
        timezone.now() - AFTER_COMPLETION,
    ]
    only_booking = ""
    if booking_id is not None:
        only_booking = " AND b.id = %s"
        params.append(Booking._meta.pk.get_db_prep_value(parse_booking_id(booking_id), connection))
    params += [sender_id, recipient_id]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.id, u.username, u.first_name, u.last_name, u.is_staff, EXISTS ("
            f"SELECT 1 FROM {bookings} b WHERE ((b.customer_id = %s AND b.partner_id = %s) "
            f"OR (b.customer_id = %s AND b.partner_id = %s)) "
            f"AND (b.status IN ({active}) OR (b.status = %s AND b.completed_at >= %s)){only_booking} "
            f"AND NOT EXISTS (SELECT 1 FROM {partners} p WHERE p.user_id = b.partner_id AND p.is_suspended)), "
            f"CASE WHEN u.is_staff THEN EXISTS (SELECT 1 FROM {messages} m "
            f"WHERE m.sender_id = u.id AND m.recipient_id = %s) ELSE FALSE END "
            f"FROM {users} u WHERE u.id = %s AND u.is_active",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, username, first_name, last_name, is_staff, linked, asked = row
    return {
        "pk": pk,
        "username": username,
        "first_name": first_name,
        "last_name": last_name,
        "is_staff": bool(is_staff),
        "linked": bool(linked),
        "asked": bool(asked),
    }


def conversation(
    *, user: AbstractBaseUser, other_id: Any = None, booking_id: Any = None, after: Any = None
) -> QuerySet[Message]:
    """Messages the user sent or received, newest first; with ``after``, oldest first from that id."""
    qs = Message.objects.filter(Q(sender=user) | Q(recipient=user))
    if other_id is not None:
        other = parse_user_id(other_id, field="with")
        qs = qs.filter(Q(sender_id=other) | Q(recipient_id=other))
    if booking_id is not None:
        qs = qs.filter(booking_id=parse_booking_id(booking_id))
    if after is not None:
        return qs.filter(pk__gt=parse_id(after, field="after")).order_by("id")
    return qs.order_by("-id")


def notifications_for(user: AbstractBaseUser, *, unread: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    return qs.filter(read_at__isnull=True) if unread else qs
