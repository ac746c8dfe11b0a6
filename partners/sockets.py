"""The ``/partner`` namespace (contract 5.2)."""

from typing import Any

from bookings import events, services
from bookings.selectors import booking_id_from
from bookings.serializers import BookingCancelInput, BookingStatusInput
from config import rooms
from config.api import validated
from config.errors import Forbidden
from config.realtime.catalogue import BOOLEAN, INTEGER, UUID, client_event, enum, obj, one_of
from config.realtime.namespace import BaseNamespace, Session, session_user
from config.realtime.orm import db
from config.realtime.presence import presence
from messaging.sockets import ChatMixin
from partners import services as partner_services
from partners.serializers import AvailabilityInput
from partners.tracking import locations, refresh_relay, relay_location

_BOOKING_ACK = obj({"booking": events.BOOKING})
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
    payload=obj({"bookingId": UUID}, {"reason": {"type": "string", "maxLength": 500}}),
    ack=_BOOKING_ACK,
)
client_event(
    "booking:status_update",
    namespaces=(rooms.PARTNER,),
    summary="Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped)",
    payload=obj(
        {"bookingId": UUID, "status": enum(["PARTNER_EN_ROUTE", "PARTNER_ARRIVED", "IN_PROGRESS", "COMPLETED"])}
    ),
    ack=_BOOKING_ACK,
)
client_event(
    "location:update",
    namespaces=(rooms.PARTNER,),
    summary="Your position: relayed to your active bookings' rooms, stored as your last location",
    payload=obj(
        {
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        },
        {
            "accuracy": {"type": "number", "minimum": 0, "maximum": 100000},
            "heading": {"type": "number", "minimum": 0, "maximum": 360},
            "speed": {"type": "number", "minimum": 0, "maximum": 1000},
        },
    ),
    ack=obj({"relayed": INTEGER}),
)
client_event(
    "availability:update",
    namespaces=(rooms.PARTNER,),
    summary="Whether dispatch may offer you bookings",
    payload=obj({"available": BOOLEAN}),
    ack=obj({"available": BOOLEAN}),
)


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


class PartnerNamespace(ChatMixin, BaseNamespace):
    namespace_name = rooms.PARTNER
    role = "partner"
    lightweight_events = frozenset({"location:update"})

    def qualify(self, identity: dict[str, Any]) -> None:
        if not identity.get("is_partner"):
            raise Forbidden("This account is not a partner")
        if identity.get("is_suspended"):
            raise Forbidden("This partner is suspended")

    async def on_connected(self, sid: str, session: Session) -> None:
        session["bookings"] = []
        await refresh_relay(self.server.manager, session["uid"])

    async def on_disconnected(self, sid: str, session: Session) -> None:
        await self.stop_typing(session)
        uid = session["uid"]
        await locations.flush(uid)
        if uid not in presence.local[rooms.PARTNER]:
            await db(partner_services.partners_online)(partner_ids=[uid], online=False)

    async def on_booking_accept(self, sid: str, payload: Any) -> dict[str, Any]:
        booking_id = booking_id_from(payload)
        session = await self.get_session(sid)
        booking = await db(_accept)(session, booking_id)
        # The ack promises a current relay list: the next location:update reaches the customer.
        await refresh_relay(self.server.manager, session["uid"])
        return {"booking": booking}

    async def on_booking_reject(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(BookingCancelInput, payload)  # a rejection has the cancel's shape
        return {"booking": await db(_reject)(await self.get_session(sid), data)}

    async def on_booking_status_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(BookingStatusInput, payload)
        session = await self.get_session(sid)
        booking = await db(_status)(session, data)
        await refresh_relay(self.server.manager, session["uid"])
        return {"booking": booking}

    async def on_location_update(self, sid: str, payload: Any) -> dict[str, Any]:
        relayed = await relay_location(await self.get_session(sid), payload)
        return {"relayed": relayed}

    async def on_availability_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(AvailabilityInput, payload)
        session = await self.get_session(sid)
        available = await db(partner_services.partner_set_availability)(
            partner_id=session["uid"], available=data["available"]
        )
        return {"available": available}
