"""A message and a notification on the wire (contract 5.5, 5.6): each schema beside its builder
(``config.shapes``), for the REST lists, the events and both documents."""

from typing import Any

from config.formats import iso
from config.realtime.catalogue import ANY_OBJECT, ID, LOCATION, PERSON, STRING, TIME, UUID, enum, nullable, obj
from config.shapes import shape
from messaging.models import Message, Notification, SafetyAlert
from partners.shapes import display_name

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


SAFETY_ALERT = obj(
    {
        "alertId": ID,
        "bookingId": nullable(UUID),
        "raisedBy": obj({"id": ID, "name": STRING, "role": enum(["customer", "partner"])}),
        "location": nullable(LOCATION),
        "at": TIME,
        "escalation": {"type": "integer", "minimum": 0, "description": "0 the first time, then one more each time"},
        "note": nullable(STRING),
    }
)


@shape("SafetyAlert", SAFETY_ALERT)
def safety_alert(alert: SafetyAlert) -> dict[str, Any]:
    """An alert as staff see it (``safety:alert``, the open list): ``at`` is when it was raised."""
    location = None
    if alert.latitude is not None and alert.longitude is not None:
        location = {"latitude": alert.latitude, "longitude": alert.longitude}
    return {
        "alertId": str(alert.pk),
        "bookingId": str(alert.booking_id) if alert.booking_id else None,
        "raisedBy": {"id": str(alert.raised_by_id), "name": display_name(alert.raised_by), "role": alert.role},
        "location": location,
        "at": iso(alert.raised_at),
        "escalation": alert.escalation,
        "note": alert.note or None,
    }


SAFETY_ACKNOWLEDGED = obj({"alertId": ID, "by": PERSON, "at": TIME})


@shape("SafetyAcknowledged", SAFETY_ACKNOWLEDGED)
def safety_acknowledged(alert: SafetyAlert) -> dict[str, Any]:
    """Who acknowledged an alert, and when (``safety:acknowledged``, the REST answer)."""
    by = alert.acknowledged_by
    return {
        "alertId": str(alert.pk),
        "by": {"id": str(by.pk), "name": display_name(by)} if by else {"id": "0", "name": "staff"},
        "at": iso(alert.acknowledged_at),
    }
