"""Reads of conversations and notifications."""

import re
import uuid
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
from messaging.models import Message, Notification, SafetyAlert
from partners.models import Partner

# After completion the two may still talk this long (a forgotten key, a receipt).
AFTER_COMPLETION = timedelta(hours=24)


def _literals(*words: str) -> str:
    """Code constants written into SQL rather than sent as parameters (each parameter costs the
    driver a quoting, on every message); only plain upper-case words can be."""
    if not all(re.fullmatch(r"[A-Z_]+", word) for word in words):
        raise ValueError(f"not plain words: {words}")
    return ", ".join(f"'{word}'" for word in words)


_ACTIVE = _literals(*ACTIVE_STATUSES)
_COMPLETED = _literals(BookingStatus.COMPLETED)


def talk_rule(*, sender_id: int, booking: Any = None) -> tuple[str, str, list[Any]]:
    """The rule of who may talk (contract 5.5, 9.3), in one place, as SQL about the recipient's
    user row ``u``: the expressions *linked* and *asked*, and their parameters in that order.

    *linked*: a booking between the two (``booking``, a database value: that one), in
    PARTNER_ACCEPTED..IN_PROGRESS, or COMPLETED within ``AFTER_COMPLETION``, whose partner is
    not suspended. *asked*: the recipient is staff and wrote to the sender before (staff are
    written to only in reply, contract 10.2; looked up for a staff recipient only, on the
    ``message_conversation`` index). Staff may write to anyone: the caller's part.
    Raw SQL because every message and typing check runs it and the ORM's compilation of
    these subqueries (and a round trip for each) cost more than the queries themselves.
    """
    bookings = connection.ops.quote_name(Booking._meta.db_table)
    partners = connection.ops.quote_name(Partner._meta.db_table)  # a suspended partner's link is gone
    messages = connection.ops.quote_name(Message._meta.db_table)
    params: list[Any] = [sender_id, sender_id, timezone.now() - AFTER_COMPLETION]
    only_booking = ""
    if booking is not None:
        only_booking = " AND b.id = %s"
        params.append(booking)
    params.append(sender_id)
    linked = (
        f"EXISTS (SELECT 1 FROM {bookings} b WHERE ((b.customer_id = %s AND b.partner_id = u.id) "
        f"OR (b.customer_id = u.id AND b.partner_id = %s)) "
        f"AND (b.status IN ({_ACTIVE}) OR (b.status = {_COMPLETED} AND b.completed_at >= %s)){only_booking} "
        f"AND NOT EXISTS (SELECT 1 FROM {partners} p WHERE p.user_id = b.partner_id AND p.is_suspended))"
    )
    asked = (
        f"CASE WHEN u.is_staff THEN EXISTS (SELECT 1 FROM {messages} m "
        f"WHERE m.sender_id = u.id AND m.recipient_id = %s) ELSE FALSE END"
    )
    return linked, asked, params


def conversation_facts(
    *, sender_id: int, recipient_id: int, booking_id: uuid.UUID | None = None, client_message_id: str | None = None
) -> dict[str, Any]:
    """What deciding a message (or a typing indicator) needs, in one round trip.

    ``recipient``: the active recipient's fields (``None``: no such active user); ``linked``
    and ``asked``: ``talk_rule``'s answers; ``booking_found``: whether ``booking_id`` names a
    booking; ``stored``: the id of the sender's message with ``client_message_id``, if one is
    stored.
    """
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    bookings = connection.ops.quote_name(Booking._meta.db_table)
    messages = connection.ops.quote_name(Message._meta.db_table)
    booking = None if booking_id is None else Booking._meta.pk.get_db_prep_value(booking_id, connection)
    linked, asked, rule_params = talk_rule(sender_id=sender_id, booking=booking)
    with connection.cursor() as cursor:
        cursor.execute(
            # A row whether or not the user exists: the stored message and the booking are
            # answers of their own. A NULL client_message_id or booking matches nothing.
            f"SELECT (SELECT m.id FROM {messages} m WHERE m.sender_id = %s AND m.client_message_id = %s), "
            f"%s IS NULL OR EXISTS (SELECT 1 FROM {bookings} b WHERE b.id = %s), "
            f"u.id, u.username, u.first_name, u.last_name, u.is_staff, {linked}, {asked} "
            f"FROM (SELECT 1 AS one) one LEFT JOIN {users} u ON u.id = %s AND u.is_active",
            [sender_id, client_message_id, booking, booking, *rule_params, recipient_id],
        )
        stored, booking_found, pk, username, first_name, last_name, is_staff, linked, asked = cursor.fetchone()
    recipient = None
    if pk is not None:
        recipient = {"pk": pk, "username": username, "first_name": first_name, "last_name": last_name}
        recipient["is_staff"] = bool(is_staff)
    return {
        "stored": stored,
        "booking_found": bool(booking_found),
        "recipient": recipient,
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


OPEN_ALERTS_MAX = 200


def open_safety_alerts() -> list[SafetyAlert]:
    """Safety alerts no staff member has acknowledged, oldest first (the dashboard's top): the newest
    ``OPEN_ALERTS_MAX`` of them, so old open ones (a flood of throwaway accounts, say) never hide
    the newest call for help from a desk that connects later."""
    open_ones = SafetyAlert.objects.filter(acknowledged_at=None).select_related("raised_by")
    return list(reversed(open_ones.order_by("-raised_at", "-id")[:OPEN_ALERTS_MAX]))
