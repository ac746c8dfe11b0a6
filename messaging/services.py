"""Messages, read receipts and who may talk to whom (contract 5.5)."""

from contextlib import nullcontext
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from bookings.models import Booking
from bookings.selectors import parse_booking_id
from config import rooms
from config.errors import Forbidden, NotFound, ValidationError
from config.parsing import parse_id, parse_user_id
from config.realtime.emit import emit
from messaging import events, selectors
from messaging.models import Message, Notification
from messaging.notify import notification_create
from partners.models import Partner

MAX_LENGTH = 2000
NOT_A_CONVERSATION = "you cannot message this person"


def person_namespaces(user: AbstractBaseUser) -> tuple[str, ...]:
    """Where a user-directed event reaches ``user`` (staff also read in /admin)."""
    return (*rooms.PERSON_NAMESPACES, rooms.ADMIN) if user.is_staff else rooms.PERSON_NAMESPACES


def sender_summary(user: AbstractBaseUser) -> dict[str, Any]:
    """``person_role`` is set on socket users (the role the socket acts in); others are looked up."""
    role = getattr(user, "person_role", None)
    if role is None:
        role = "staff" if user.is_staff else "partner" if Partner.objects.filter(pk=user.pk).exists() else "customer"
    return {"id": str(user.pk), "name": user.get_full_name() or user.username, "role": role}


def conversation_check(*, sender: AbstractBaseUser, recipient_id: Any, booking_id: Any = None) -> AbstractBaseUser:
    """The recipient, if ``sender`` may message (or show typing to) them; else ``FORBIDDEN``.

    Staff may message anyone; a customer or partner writes to staff only in reply, once
    that staff member wrote to them (contract 10.2); otherwise a booking must link the two
    (``messaging.selectors.conversation_facts``). An unknown recipient, and staff who did
    not write first, get the same answer as one you may not message, so the answer tells
    nobody which user ids exist or which are staff.
    """
    recipient, _ = _conversation(sender=sender, recipient_id=recipient_id, booking_id=booking_id)
    assert recipient is not None  # no clientMessageId: never a stored message
    return recipient


def _conversation(
    *, sender: AbstractBaseUser, recipient_id: Any, booking_id: Any, client_message_id: str | None = None
) -> tuple[AbstractBaseUser | None, int | None]:
    """``(recipient, None)`` if ``sender`` may write to them now, or ``(None, id)`` of the message
    already stored with ``client_message_id``; else the refusal (``conversation_check``)."""
    recipient_pk = parse_user_id(recipient_id, field="recipientId")
    if recipient_pk == sender.pk:
        raise ValidationError("you cannot message yourself")
    booking_pk = parse_booking_id(booking_id) if booking_id is not None else None
    facts = selectors.conversation_facts(
        sender_id=sender.pk, recipient_id=recipient_pk, booking_id=booking_pk, client_message_id=client_message_id
    )
    if facts["stored"] is not None:
        return None, facts["stored"]
    if not facts["booking_found"]:
        raise NotFound("no such booking")
    found = facts["recipient"]
    if found is None or not (sender.is_staff or facts["linked"] or facts["asked"]):
        raise Forbidden(NOT_A_CONVERSATION)
    recipient = get_user_model()(**found, is_active=True)
    recipient.linked = facts["linked"]
    return recipient, None


def message_send(
    *,
    sender: AbstractBaseUser,
    recipient_id: Any,
    body: Any,
    booking_id: Any = None,
    client_message_id: Any = None,
    recipient_online: bool = True,
) -> tuple[Message, bool]:
    """Store a message once per ``clientMessageId``; ``(message, created)``.

    A resend of a stored ``clientMessageId`` returns the first message and
    announces nothing again: the recipient already had it.

    One statement when the message is stored (issue 34): an INSERT of the message if
    ``sender`` may write to the recipient now (``selectors.talk_rule``), atomic by itself, so
    no transaction of its own unless a notification is stored with it (recipient offline).
    When it stores nothing, one query says why: a resend, no such booking, or no right.
    """
    if not isinstance(body, str) or not len(body.strip()) >= 1 or len(body) > MAX_LENGTH:
        raise ValidationError(f"message must be 1 to {MAX_LENGTH} characters")
    if client_message_id is not None and (
        not isinstance(client_message_id, str) or not 0 < len(client_message_id) <= 64
    ):
        raise ValidationError("clientMessageId must be a string of 1 to 64 characters")
    recipient_pk = parse_user_id(recipient_id, field="recipientId")
    if recipient_pk == sender.pk:
        raise ValidationError("you cannot message yourself")
    message = Message(
        sender=sender,
        recipient_id=recipient_pk,
        booking_id=parse_booking_id(booking_id) if booking_id is not None else None,
        body=body,
        client_message_id=client_message_id,
        created_at=timezone.now(),
    )
    with nullcontext() if recipient_online else transaction.atomic():
        stored = _insert_if_allowed(message, sender)
        if stored is None:
            recipient, first = _conversation(
                sender=sender, recipient_id=recipient_pk, booking_id=booking_id, client_message_id=client_message_id
            )
            if recipient is None:  # a resend, or two devices racing with one clientMessageId: the first wins
                return Message.objects.get(pk=first), False
            # Refused by the INSERT, allowed a moment later (a booking accepted in between):
            # the refusal stands, and the client's retry is stored.
            raise Forbidden(NOT_A_CONVERSATION)
        message.pk, recipient_is_staff = stored
        _announce_message(message, sender, recipient_is_staff, recipient_online)
    return message, True


def _insert_if_allowed(message: Message, sender: AbstractBaseUser) -> tuple[int, bool] | None:
    """INSERT the message if its sender may write to its recipient (``selectors.talk_rule``), its
    booking exists and no message with its clientMessageId is stored: its id and whether the
    recipient is staff; else ``None``.

    Raw: the ORM's compilation of ``create`` cost more than the statement. ``ON CONFLICT DO
    NOTHING`` rather than an IntegrityError, which inside a caller's transaction would need a
    savepoint (two more round trips) to survive.
    """
    booking = Booking._meta.pk.get_db_prep_value(message.booking_id, connection)
    linked, asked, rule_params = selectors.talk_rule(sender_id=sender.pk, booking=booking)
    fields = [Message._meta.get_field(name) for name in ("sender", "recipient", "booking", "body")]
    fields += [Message._meta.get_field(name) for name in ("client_message_id", "created_at")]
    values = [field.get_db_prep_save(getattr(message, field.attname), connection) for field in fields]
    values[1:2] = []  # the recipient is the row the rule allows
    quote = connection.ops.quote_name
    users = quote(get_user_model()._meta.db_table)
    booking_exists = ""
    if booking is not None:
        booking_exists = f" AND EXISTS (SELECT 1 FROM {quote(Booking._meta.db_table)} bk WHERE bk.id = %s)"
        rule_params.append(booking)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Message._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
            f"SELECT %s, u.id, %s, %s, %s, %s FROM {users} u WHERE u.id = %s AND u.is_active "
            f"AND (%s OR {linked} OR {asked}){booking_exists} "
            f"ON CONFLICT DO NOTHING RETURNING {quote(Message._meta.pk.column)}, "
            f"(SELECT v.is_staff FROM {users} v WHERE v.id = {quote(fields[1].column)})",
            [*values, message.recipient_id, bool(sender.is_staff), *rule_params],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], bool(row[1]))


def _announce_message(message: Message, sender: AbstractBaseUser, recipient_is_staff: bool, online: bool) -> None:
    received = events.message_received(message, sender_summary(sender))
    recipient_namespaces = (*rooms.PERSON_NAMESPACES, rooms.ADMIN) if recipient_is_staff else rooms.PERSON_NAMESPACES
    for namespace in recipient_namespaces:
        emit("message:received", received, namespace=namespace, room=rooms.user(message.recipient_id))
    sent = events.message_sent(message)
    for namespace in person_namespaces(sender):
        emit("message:sent", sent, namespace=namespace, room=rooms.user(sender.pk))
    if not online:
        notification_create(
            user_id=message.recipient_id,
            type="message",
            title=f"New message from {received['sender']['name']}",
            body=message.body[:200],
            data={"messageId": str(message.pk), "senderId": str(sender.pk), "bookingId": received["bookingId"]},
        )


def message_mark_read(*, reader: AbstractBaseUser, message_id: Any) -> Message:
    """Only the recipient marks a message read; the first time tells the sender."""
    pk = parse_id(message_id, field="messageId")
    with transaction.atomic():
        message = Message.objects.select_for_update().select_related("sender").filter(pk=pk).first()
        if message is None:
            raise NotFound("no such message")
        if message.recipient_id != reader.pk:
            raise Forbidden("only the recipient can mark a message read")
        if message.read_at is None:
            message.read_at = timezone.now()
            message.save(update_fields=["read_at"])
            _announce_read(message)
    return message


def conversation_mark_read(*, reader: AbstractBaseUser, other_id: Any, booking_id: Any = None) -> int:
    """Mark every unread message from ``other_id`` to ``reader`` read; returns how many."""
    with transaction.atomic():
        unread = (
            Message.objects.select_for_update()
            .select_related("sender")
            .filter(recipient=reader, sender_id=other_id, read_at__isnull=True)
        )
        if booking_id is not None:
            unread = unread.filter(booking_id=parse_booking_id(booking_id))
        now = timezone.now()
        messages = list(unread[:500])
        for message in messages:
            message.read_at = now
            _announce_read(message)
        Message.objects.filter(pk__in=[m.pk for m in messages]).update(read_at=now)
    return len(messages)


def notification_mark_read(*, user: AbstractBaseUser, notification_id: int) -> Notification:
    """The user's own notification, read (the first read time is kept)."""
    notification = Notification.objects.filter(user=user, pk=parse_id(notification_id, field="id")).first()
    if notification is None:
        raise NotFound("no such notification")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, user: AbstractBaseUser) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())


def _announce_read(message: Message) -> None:
    payload = events.message_read(message)
    for namespace in person_namespaces(message.sender):
        emit("message:read", payload, namespace=namespace, room=rooms.user(message.sender_id))
