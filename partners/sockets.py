"""The ``/partner`` namespace's own part (contract 5.2): who may connect, availability, going offline.

Offers, jobs and the location relay are dispatch's (``bookings.sockets.partner_jobs``); the
composition root (``config/asgi.py``) puts the namespace together.
"""

from typing import Any

from config import rooms
from config.api import validated
from config.errors import Forbidden
from config.realtime.catalogue import BOOLEAN, obj
from config.realtime.identity import Session
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import Batched, db
from config.realtime.parts import Part
from config.realtime.presence import presence
from config.shapes import input_schema
from partners import services
from partners.selectors import partners_last_location_at
from partners.serializers import AvailabilityInput
from partners.tracking import locations


def _qualify(identity: dict[str, Any]) -> None:
    if not identity.get("is_partner"):
        raise Forbidden("This account is not a partner")
    if identity.get("is_suspended"):
        raise Forbidden("This partner is suspended")


partner = Part(qualify=_qualify)


# The connects of one moment read their partners' newest fix together (a reconnect storm: one query).
_last_location_at = Batched(lambda partner_ids: partners_last_location_at(partner_ids=partner_ids))


@partner.on_connected
async def _newest_fix(namespace: BaseNamespace, sid: str, session: Session) -> None:
    """The newest fix known of the partner, from the database unless a socket of theirs here knows it:
    an older fix (an offline batch) then never moves their position backwards."""
    uid = session["uid"]
    if uid not in locations.newest:
        locations.seed(uid, await _last_location_at.get(uid))


@partner.on_disconnected
async def _gone(namespace: BaseNamespace, sid: str, session: Session) -> None:
    """The partner's buffered position written, and forgotten with their last socket here. Their
    offline write is presence's (``presence.remove`` queued it, in one write with every partner
    gone that second: a sweep of ping timeouts is not a write each), and it waits for no other
    socket of theirs here (the queue holds only those who have none)."""
    uid = session["uid"]
    try:
        # A stopping process writes every buffer in its shutdown hooks, run again once the sockets
        # closed (``tracking.flush_on_stop``): a socket's disconnect would wait on the database for
        # nothing (a hung one: the stop's budget).
        if not namespace.server.manager.stopping:
            await locations.flush(uid)  # a failed write keeps the trace points for the periodic flush
    finally:
        if uid not in presence.local[rooms.PARTNER]:
            locations.forget(uid)  # the partner's last socket here: nothing of theirs stays behind


@partner.event(
    "availability:update",
    summary="Whether dispatch may offer you bookings",
    payload=input_schema(AvailabilityInput),
    ack=obj({"available": BOOLEAN}),
)
async def availability_update(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    data = validated(AvailabilityInput, payload)
    session = await namespace.get_session(sid)
    available = await db(services.partner_set_availability)(partner_id=session["uid"], available=data["available"])
    return {"available": available}
