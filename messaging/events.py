"""Payload builders for messages, receipts, typing and notifications (contract 5.5, 5.6)."""

from typing import Any

from config import rooms
from config.formats import iso
from config.realtime.catalogue import BOOLEAN, ID, STRING, TIME, enum, nullable, obj, server_event
from messaging.models import Message
from messaging.shapes import MESSAGE, SAFETY_ACKNOWLEDGED, SAFETY_ALERT, message_data, notification

ALL = (rooms.CUSTOMER, rooms.PARTNER, rooms.ADMIN)
MESSAGE_RECEIVED = obj(
    {
        **MESSAGE["properties"],
        "sender": obj({"id": ID, "name": STRING, "role": enum(["customer", "partner", "staff"])}),
    }
)
server_event(
    "message:received",
    namespaces=ALL,
    summary="A message for this user (in /admin only for staff)",
    payload=MESSAGE_RECEIVED,
)
server_event(
    "message:sent",
    namespaces=ALL,
    summary="A message this user sent was stored (every socket of the sender)",
    payload=obj({"id": ID, "createdAt": TIME, "clientMessageId": nullable(STRING)}),
)
server_event(
    "message:read",
    namespaces=ALL,
    summary="The recipient read a message this user sent",
    payload=obj({"id": ID, "readAt": TIME, "readerId": ID}),
)
server_event(
    "typing:indicator",
    namespaces=ALL,
    summary="Someone started or stopped typing to this user",
    payload=obj({"userId": ID, "typing": BOOLEAN}),
    volatile=True,
)
server_event(
    "notification:new",
    namespaces=rooms.PERSON_NAMESPACES,
    summary="A notification was stored for this user",
    payload=notification.schema,
)

server_event(
    "safety:alert",
    namespaces=(rooms.ADMIN,),
    summary="A customer or partner asked for help (to admins); sent again with escalation + 1 until acknowledged",
    payload=SAFETY_ALERT,
    urgent=True,
)
server_event(
    "safety:acknowledged",
    namespaces=(rooms.ADMIN, *rooms.PERSON_NAMESPACES),
    summary="Staff acknowledged a safety alert (to admins and to the person who raised it)",
    payload=SAFETY_ACKNOWLEDGED,
)


def message_sent(message: Message) -> dict[str, Any]:
    return {"id": str(message.pk), "createdAt": iso(message.created_at), "clientMessageId": message.client_message_id}


def message_received(message: Message, sender: dict[str, Any]) -> dict[str, Any]:
    return {**message_data(message), "sender": sender}


def message_read(message: Message) -> dict[str, Any]:
    return {"id": str(message.pk), "readAt": iso(message.read_at), "readerId": str(message.recipient_id)}


def typing_indicator(user_id: str, typing: bool) -> dict[str, Any]:
    return {"userId": str(user_id), "typing": typing}
