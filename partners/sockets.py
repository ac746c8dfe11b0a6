"""The ``/partner`` namespace's own part (contract 5.2): who may connect, availability, going offline.

Offers, jobs and the location relay are dispatch's (``bookings.sockets.PartnerJobs``); the
composition root (``config/asgi.py``) puts the namespace together.
"""

from typing import Any

from config import rooms
from config.api import validated
from config.errors import Forbidden
from config.realtime.catalogue import BOOLEAN, client_event, obj
from config.realtime.identity import Session
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db
from config.realtime.presence import presence
from config.shapes import input_schema
from partners import services
from partners.serializers import AvailabilityInput
from partners.tracking import locations

client_event(
    "availability:update",
    namespaces=(rooms.PARTNER,),
    summary="Whether dispatch may offer you bookings",
    payload=input_schema(AvailabilityInput),
    ack=obj({"available": BOOLEAN}),
)


class PartnerSockets(BaseNamespace):
    namespace_name = rooms.PARTNER
    role = "partner"
    lightweight_events = frozenset({"location:update"})

    def qualify(self, identity: dict[str, Any]) -> None:
        if not identity.get("is_partner"):
            raise Forbidden("This account is not a partner")
        if identity.get("is_suspended"):
            raise Forbidden("This partner is suspended")

    async def on_disconnected(self, sid: str, session: Session) -> None:
        await super().on_disconnected(sid, session)
        uid = session["uid"]
        await locations.flush(uid)
        if uid not in presence.local[rooms.PARTNER]:
            await db(services.partners_online)(partner_ids=[uid], online=False)

    async def on_availability_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = validated(AvailabilityInput, payload)
        session = await self.get_session(sid)
        available = await db(services.partner_set_availability)(partner_id=session["uid"], available=data["available"])
        return {"available": available}
