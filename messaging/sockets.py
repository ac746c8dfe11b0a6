"""Chat, a part of each of the three namespaces: messages, receipts, typing (contract 5.5)."""

import asyncio
import time
from typing import Any

from django.conf import settings

from config import rooms
from config.errors import ValidationError
from config.parsing import parse_id, parse_user_id
from config.realtime.catalogue import BOOLEAN, ID, INTEGER, STRING, TIME, UUID, nullable, obj, one_of
from config.realtime.emit import emit_now
from config.realtime.identity import Session, session_user
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db
from config.realtime.parts import Part
from config.realtime.presence import presence
from messaging import events, safety, services
from messaging.models import CLIENT_ALERT_ID_MAX, SAFETY_NOTE_MAX
from messaging.shapes import SAFETY_ACKNOWLEDGED, safety_acknowledged
from partners.tracking import POSITION

RECIPIENT = one_of(ID, INTEGER, obj({"recipientId": one_of(ID, INTEGER)}))

# A typing permission, once checked, holds this long on the socket.
TYPING_AUTH_TTL = 60.0


def _send(session: Session, payload: dict[str, Any], online: bool) -> tuple[Any, bool]:
    return services.message_send(
        sender=session_user(session),
        recipient_id=payload.get("recipientId"),
        body=payload.get("message"),
        booking_id=payload.get("bookingId"),
        client_message_id=payload.get("clientMessageId"),
        recipient_online=online,
    )


def _is_online(user_id: Any) -> bool:
    return presence.is_online(parse_user_id(user_id, field="recipientId"))


# Chat, which the composition root puts first in every namespace: its goodbye (typing
# indicators off) runs before the namespace's own.
chat = Part()


@chat.event(
    "message:send",
    summary="Send a message (contract 5.5); a resend with the same clientMessageId is stored once",
    payload=obj(
        {"recipientId": one_of(ID, INTEGER), "message": {"type": "string", "minLength": 1, "maxLength": 2000}},
        {"bookingId": UUID, "clientMessageId": {"type": "string", "minLength": 1, "maxLength": 64}},
    ),
    ack=obj({"id": ID, "createdAt": TIME, "clientMessageId": nullable(STRING), "duplicate": BOOLEAN}),
)
async def message_send(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValidationError("payload must be an object with recipientId and message")
    session = await namespace.get_session(sid)
    online = _is_online(payload.get("recipientId"))
    message, created = await db(_send)(session, payload, online)
    return {**events.message_sent(message), "duplicate": not created}


@chat.event(
    "message:mark_read",
    summary="Mark a message read (its recipient only)",
    payload=one_of(ID, INTEGER, obj({"messageId": one_of(ID, INTEGER)})),
    ack=obj({"id": ID, "readAt": TIME, "readerId": ID}),
)
async def message_mark_read(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    message_id = parse_id(payload.get("messageId") if isinstance(payload, dict) else payload, field="messageId")
    session = await namespace.get_session(sid)
    message = await db(lambda: services.message_mark_read(reader=session_user(session), message_id=message_id))()
    return events.message_read(message)


TYPING = "Typing indicator to a person you may message"


# Both indicators count against one rate limit, "typing".
@chat.event("typing:start", summary=TYPING, payload=RECIPIENT, rate_key="typing")
async def typing_start(namespace: BaseNamespace, sid: str, payload: Any) -> None:
    await _typing(namespace, sid, payload, True)


@chat.event("typing:stop", summary=TYPING, payload=RECIPIENT, rate_key="typing")
async def typing_stop(namespace: BaseNamespace, sid: str, payload: Any) -> None:
    await _typing(namespace, sid, payload, False)


async def _typing(namespace: BaseNamespace, sid: str, payload: Any, typing: bool) -> None:
    recipient = payload.get("recipientId") if isinstance(payload, dict) else payload
    recipient = str(parse_user_id(recipient, field="recipientId"))
    session = await namespace.get_session(sid)
    allowed: dict[str, float] = session.setdefault("typing_ok", {})
    if allowed.get(recipient, 0) < time.monotonic():
        await db(lambda: services.conversation_check(sender=session_user(session), recipient_id=recipient))()
        allowed[recipient] = time.monotonic() + TYPING_AUTH_TTL
    timers: dict[str, asyncio.TimerHandle] = session.setdefault("typing", {})
    old = timers.pop(recipient, None)
    if old is not None:
        old.cancel()
    if typing:
        # A client that never sends typing:stop does not leave the indicator on.
        timers[recipient] = asyncio.get_running_loop().call_later(
            settings.TYPING_TIMEOUT,
            lambda: asyncio.ensure_future(_typing_expired(session, recipient)),
        )
    await send_typing(session["user_id"], recipient, typing)


async def _typing_expired(session: Session, recipient: str) -> None:
    if session.get("typing", {}).pop(recipient, None) is not None:
        await send_typing(session["user_id"], recipient, False)


@chat.on_disconnected
async def _typing_off(namespace: BaseNamespace, sid: str, session: Session) -> None:
    """Every indicator this socket left on goes off."""
    for recipient, handle in list(session.pop("typing", {}).items()):
        handle.cancel()
        await send_typing(session["user_id"], recipient, False)


async def send_typing(user_id: str, recipient_id: str, typing: bool) -> None:
    payload = events.typing_indicator(user_id, typing)
    for namespace in rooms.NAMESPACES:
        await emit_now("typing:indicator", payload, namespace=namespace, room=rooms.user(recipient_id))


# Safety alerts (contract 10.3): raised on /customer and /partner, acknowledged on /admin.
safety_alerts = Part()
SAFETY_ALERT_INPUT = obj(
    {},
    {
        "bookingId": UUID,
        **POSITION,  # a place's ranges, declared once with the partner's fixes
        "note": {"type": "string", "maxLength": SAFETY_NOTE_MAX},
        "clientAlertId": {"type": "string", "minLength": 1, "maxLength": CLIENT_ALERT_ID_MAX},
    },
)


# Its own limit (RATE_LIMITS["safety:alert"]: never below one per 10 s), and past it the socket
# stays connected: a person calling for help is refused a flood, never cut off.
@safety_alerts.event(
    "safety:alert",
    summary="Ask staff for help (SOS); stored once per clientAlertId, folded into your open alert",
    payload=one_of(SAFETY_ALERT_INPUT, {"type": "null"}),
    ack=obj({"alertId": ID}),
    keeps_socket=True,
)
async def safety_alert(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    fields = payload or {}
    session = await namespace.get_session(sid)

    def raise_alert() -> Any:
        return safety.safety_alert_raise(
            user=session_user(session),
            role=namespace.role,
            booking_id=fields.get("bookingId"),
            latitude=fields.get("latitude"),
            longitude=fields.get("longitude"),
            note=fields.get("note"),
            client_alert_id=fields.get("clientAlertId"),
        )

    alert, _ = await db(raise_alert)()
    return {"alertId": str(alert.pk)}


safety_desk = Part()


@safety_desk.event(
    "safety:acknowledge",
    summary="Acknowledge a safety alert (staff): its escalation stops; an acknowledged one is CONFLICT",
    payload=obj({"alertId": one_of(ID, INTEGER)}),
    ack=SAFETY_ACKNOWLEDGED,
)
async def safety_acknowledge(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    session = await namespace.get_session(sid)
    staff = session_user(session)
    alert = await db(lambda: safety.safety_alert_acknowledge(staff=staff, alert_id=payload["alertId"]))()
    return safety_acknowledged(alert)
