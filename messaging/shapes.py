"""A message and a notification on the wire (contract 5.5, 5.6): each schema beside its builder
(``config.shapes``), for the REST lists, the events and both documents."""

from typing import Any

from config.formats import iso
from config.realtime.catalogue import ANY_OBJECT, ID, STRING, TIME, UUID, nullable, obj
from config.shapes import shape
from messaging.models import Message, Notification

MESSAGE = obj(
    {
        "id": ID,
        "senderId": ID,
        "recipientId": ID,
        "bookingId": nullable(UUID),
        "message": STRING,
        "createdAt": TIME,
        "readAt": nullable(TIME),
        "clientMessageId": nullable(STRING),
    }
)


@shape("Message", MESSAGE)
def message_data(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.pk),
        "senderId": str(message.sender_id),
        "recipientId": str(message.recipient_id),
        "bookingId": str(message.booking_id) if message.booking_id else None,
        "message": message.body,
        "createdAt": iso(message.created_at),
        "readAt": iso(message.read_at),
        "clientMessageId": message.client_message_id,
    }


NOTIFICATION = obj(
    {
        "id": ID,
        "type": STRING,
        "title": STRING,
        "body": STRING,
        "data": ANY_OBJECT,
        "createdAt": TIME,
        "readAt": nullable(TIME),
    }
)


@shape("Notification", NOTIFICATION)
def notification(notification: Notification) -> dict[str, Any]:
    return {
        "id": str(notification.pk),
        "type": notification.type,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "createdAt": iso(notification.created_at),
        "readAt": iso(notification.read_at),
    }
