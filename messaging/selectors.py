"""Reads of conversations and notifications."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from bookings.selectors import parse_booking_id
from config.errors import ValidationError
from messaging.models import Message, Notification


def conversation(
    *, user: AbstractBaseUser, other_id: Any = None, booking_id: Any = None, after: Any = None
) -> QuerySet[Message]:
    """Messages the user sent or received, newest first; with ``after``, oldest first from that id."""
    qs = Message.objects.filter(Q(sender=user) | Q(recipient=user))
    if other_id not in (None, ""):
        if not str(other_id).isdigit():
            raise ValidationError("with must be a user id")
        qs = qs.filter(Q(sender_id=other_id) | Q(recipient_id=other_id))
    if booking_id not in (None, ""):
        qs = qs.filter(booking_id=parse_booking_id(booking_id))
    if after not in (None, ""):
        if not str(after).isdigit():
            raise ValidationError("after must be a message id")
        return qs.filter(pk__gt=int(after)).order_by("id")
    return qs.order_by("-id")


def notifications_for(user: AbstractBaseUser, *, unread: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    return qs.filter(read_at__isnull=True) if unread else qs
