"""Bookings on the sockets: the ``/customer`` namespace's part (contract 5.1) and the partner's
jobs and location relay on ``/partner`` (5.2). The composition root (``config/asgi.py``)
adds chat to each namespace."""

from typing import Any

from bookings import events, relay, selectors, services
from bookings.models import TERMINAL_STATUSES, Booking
from bookings.serializers import BookingCancelInput, BookingStatusInput
from bookings.shapes import booking_data
from config import rooms
from config.api import validated
from config.realtime.catalogue import INTEGER, UUID, client_event, obj, one_of
from config.realtime.identity import Session, session_user
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db
from config.shapes import input_schema
from partners.tracking import LOCATION_UPDATE

BOOKING_ID = one_of(UUID, obj({"bookingId": UUID}))
client_event(
    "booking:track",
    namespaces=(rooms.CUSTOMER,),
    summary="Watch your booking: join booking:<id> (a finished booking joins no room)",
    payload=BOOKING_ID,
    ack=obj({"booking": booking_data.schema}),
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
    payload=input_schema(BookingCancelInput),
    ack=obj({"booking": booking_data.schema}),
)

_BOOKING_ACK = obj({"booking": booking_data.schema})
client_event(
    "booking:accept",
    namespaces=(rooms.PARTNER,),
    summary="Accept the booking offered to you",
    payload=one_of(UUID, obj({"bookingId": UUID})),
    ack=_BOOKING_ACK,
)
client_event(
    "booking:reject",
    namespaces=(rooms.PARTNER,),
    summary="Turn the offer down: it goes to the next partner",
    payload=input_schema(BookingCancelInput),  # a rejection has the cancel's shape
    ack=_BOOKING_ACK,
)
client_event(
    "booking:status_update",
    namespaces=(rooms.PARTNER,),
    summary="Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped)",
    payload=input_schema(BookingStatusInput),
    ack=_BOOKING_ACK,
)
client_event(
    "location:update",
    namespaces=(rooms.PARTNER,),
    summary="Your position: relayed to your active bookings' rooms, stored as your last location",
    payload=LOCATION_UPDATE,
    ack=obj({"relayed": INTEGER}),
)


def _booking_id(payload: Any) -> str:
    return str(selectors.booking_id_from(payload))


def _track(session: Session, booking_id: str) -> Booking:
    return selectors.booking_for_customer(booking_id=booking_id, user=session_user(session))


def _cancel(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    user = session_user(session)
    booking = services.booking_cancel(booking_id=data["bookingId"], actor=user, reason=data["reason"])
    return events.booking(booking)


class CustomerBookings(BaseNamespace):
    namespace_name = rooms.CUSTOMER
    role = "customer"

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


def _accept(session: Session, booking_id: Any) -> dict[str, Any]:
    return events.booking(services.booking_accept(booking_id=booking_id, partner_user=session_user(session)))


def _reject(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    booking = services.booking_reject(
        booking_id=data["bookingId"], partner_user=session_user(session), reason=data["reason"]
    )
    return events.booking(booking)


def _status(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    booking = services.booking_update_status(
        booking_id=data["bookingId"], partner_user=session_user(session), status=data["status"]
    )
    return events.booking(booking)


class PartnerJobs:
    """A partner's offers and jobs, and the relay of their position (mixed into ``/partner``)."""

    async def on_connected(self, sid: str, session: Session) -> None:
        session["bookings"] = []
        await super().on_connected(sid, session)
        await relay.refresh_relay(self.server.manager, session["uid"])

    async def on_booking_accept(self, sid: str, payload: Any) -> dict[str, Any]:
        booking_id = selectors.booking_id_from(payload)
        session = await self.get_session(sid)
        booking = await db(_accept)(session, booking_id)
        # The ack promises a current relay list: the next location:update reaches the customer.
        await relay.refresh_relay(self.server.manager, session["uid"])
        return {"booking": booking}

    async def on_booking_reject(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(BookingCancelInput, payload)  # a rejection has the cancel's shape
        return {"booking": await db(_reject)(await self.get_session(sid), data)}

    async def on_booking_status_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(BookingStatusInput, payload)
        session = await self.get_session(sid)
        booking = await db(_status)(session, data)
        await relay.refresh_relay(self.server.manager, session["uid"])
        return {"booking": booking}

    async def on_location_update(self, sid: str, payload: Any) -> dict[str, Any]:
        relayed = await relay.relay_location(await self.get_session(sid), payload)
        return {"relayed": relayed}
