"""Payload builders for messages, receipts, typing and notifications (contract 5.5, 5.6)."""

from typing import Any

from config.formats import iso
from messaging.models import Message, Notification


def message_sent(message: Message) -> dict[str, Any]:
    return {"id": str(message.pk), "createdAt": iso(message.created_at), "clientMessageId": message.client_message_id}


def message_received(message: Message, sender: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(message.pk),
        "senderId": str(message.sender_id),
        "recipientId": str(message.recipient_id),
        "bookingId": str(message.booking_id) if message.booking_id else None,
        "message": message.body,
        "createdAt": iso(message.created_at),
        "readAt": iso(message.read_at),
        "clientMessageId": message.client_message_id,
        "sender": sender,
    }


def message_read(message: Message) -> dict[str, Any]:
    return {"id": str(message.pk), "readAt": iso(message.read_at), "readerId": str(message.recipient_id)}


def typing_indicator(user_id: str, typing: bool) -> dict[str, Any]:
    return {"userId": str(user_id), "typing": typing}


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
