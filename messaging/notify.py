"""Notifications: persisted, then pushed as ``notification:new`` (contract 5.6).

Kept apart from ``messaging.services`` because every app's services call it.
"""

from typing import Any

from config import rooms
from config.realtime.emit import emit
from messaging import events
from messaging.models import Notification


def notification_create(
    *, user_id: int, type: str, title: str, body: str = "", data: dict[str, Any] | None = None
) -> Notification:
    """Store a notification and push it to every socket of the user (after commit)."""
    notification = Notification.objects.create(user_id=user_id, type=type, title=title, body=body, data=data or {})
    payload = events.notification(notification)  # events declares notification:new
    for namespace in rooms.PERSON_NAMESPACES:
        emit("notification:new", payload, namespace=namespace, room=rooms.user(user_id))
    return notification
