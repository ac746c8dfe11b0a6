"""The ``/customer`` namespace (contract 5.1)."""

from typing import Any

from bookings import events, selectors, services
from bookings.models import TERMINAL_STATUSES, Booking
from bookings.serializers import BookingCancelInput
from config import rooms
from config.api import validated
from config.realtime.catalogue import UUID, client_event, obj, one_of
from config.realtime.namespace import BaseNamespace, Session, session_user
from config.realtime.orm import db
from messaging.sockets import ChatMixin

BOOKING_ID = one_of(UUID, obj({"bookingId": UUID}))
client_event(
    "booking:track",
    namespaces=(rooms.CUSTOMER,),
    summary="Watch your booking: join booking:<id> (a finished booking joins no room)",
    payload=BOOKING_ID,
    ack=obj({"booking": events.BOOKING}),
)
client_event(
    "booking:untrack",
    namespaces=(rooms.CUSTOMER,),
    summary="Stop watching your booking",
    payload=BOOKING_ID,
    ack=obj({"bookingId": UUID}),
)
client_event(
    "booking:cancel",
    namespaces=(rooms.CUSTOMER,),
    summary="Cancel your booking (PENDING..PARTNER_EN_ROUTE)",
    payload=obj({"bookingId": UUID}, {"reason": {"type": "string", "maxLength": 500}}),
    ack=obj({"booking": events.BOOKING}),
)


def _booking_id(payload: Any) -> str:
    return str(selectors.booking_id_from(payload))


def _track(session: Session, booking_id: str) -> Booking:
    return selectors.booking_for_customer(booking_id=booking_id, user=session_user(session))


def _cancel(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    user = session_user(session)
    booking = services.booking_cancel(booking_id=data["bookingId"], actor=user, reason=data["reason"])
    return events.booking(booking)


class CustomerNamespace(ChatMixin, BaseNamespace):
    namespace_name = rooms.CUSTOMER
    role = "customer"

    async def on_disconnected(self, sid: str, session: Session) -> None:
        await self.stop_typing(session)

    def permitted_rooms(self, session: Session, joined: list[str], *, finished: bool = False) -> list[str]:
        """Booking rooms while the user may track the booking: staff lose others' when demoted."""
        prefix = rooms.booking("")
        ids = [room.removeprefix(prefix) for room in joined if room.startswith(prefix)]
        allowed = selectors.watchable_booking_ids(user=session_user(session), booking_ids=ids, finished=finished)
        return [rooms.booking(booking_id) for booking_id in allowed]

    async def on_booking_track(self, sid: str, payload: Any) -> dict[str, Any]:
        booking_id = _booking_id(payload)
        booking = await db(_track)(await self.get_session(sid), booking_id)
        if booking.status not in TERMINAL_STATUSES:
            # A finished booking's room was closed; nothing will be sent to it again.
            await self.enter_room(sid, rooms.booking(booking_id))
        return {"booking": events.booking(booking)}

    async def on_booking_untrack(self, sid: str, payload: Any) -> dict[str, Any]:
        booking_id = _booking_id(payload)
        await db(_track)(await self.get_session(sid), booking_id)
        await self.leave_room(sid, rooms.booking(booking_id))
        return {"bookingId": booking_id}

    async def on_booking_cancel(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(BookingCancelInput, payload)
        booking = await db(_cancel)(await self.get_session(sid), data)
        return {"booking": booking}
