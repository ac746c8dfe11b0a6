"""Bookings on the sockets: the ``/customer`` namespace's part (contract 5.1) and the partner's
jobs and location relay on ``/partner`` (5.2). The composition root (``config/asgi.py``)
puts each part in its namespace, beside chat's and, on ``/partner``, the partners' own."""

import logging
import uuid
from typing import Any

from bookings import events, relay, selectors, services
from bookings.models import TERMINAL_STATUSES, Booking
from bookings.serializers import BookingCancelInput, BookingStatusInput
from bookings.shapes import booking_data
from config import rooms
from config.api import validated
from config.realtime.catalogue import INTEGER, UUID, obj, one_of
from config.realtime.identity import Session, session_user
from config.realtime.inbound import EVENT_SESSION
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import Batched, db, warn_if_unavailable
from config.realtime.parts import Part
from config.shapes import input_schema
from partners.tracking import LOCATION_BATCH, LOCATION_UPDATE, locations

logger = logging.getLogger(__name__)

BOOKING_ID = one_of(UUID, obj({"bookingId": UUID}))
_BOOKING_ACK = obj({"booking": booking_data.schema})


def _booking_id(payload: Any) -> str:
    return str(selectors.booking_id_from(payload))


def _track(session: Session, booking_id: str) -> Booking:
    return selectors.booking_for_customer(booking_id=booking_id, user=session_user(session))


# The bookings ``booking:track`` reads at one moment (the customers of a reconnect storm): one query
# and one DB thread hand-off for all of them, each read made after its event came (so it sees every
# change before it), the rights checked on the loop against the session, as ``_track`` does. Each
# track waiting counts as a queued ORM call: a burst of them is still shed past DB_QUEUE_MAX.
_bookings = Batched(lambda booking_ids: selectors.bookings_by_id(booking_ids=booking_ids), counted=True)


async def _tracked(session: Session, booking_id: uuid.UUID) -> Booking:
    booking = await _bookings.get(booking_id)  # not answered (timed out, cancelled): Unavailable
    return selectors.customers_booking(booking, session_user(session))


def _cancel(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    user = session_user(session)
    booking = services.booking_cancel(booking_id=data["bookingId"], actor=user, reason=data["reason"])
    return events.booking(booking)


def _watchable_rooms(session: Session, joined: list[str], *, finished: bool = False) -> list[str]:
    """Booking rooms while the user may track the booking: staff lose others' when demoted."""
    prefix = rooms.booking("")
    ids = [room.removeprefix(prefix) for room in joined if room.startswith(prefix)]
    allowed = selectors.watchable_booking_ids(user=session_user(session), booking_ids=ids, finished=finished)
    return [rooms.booking(booking_id) for booking_id in allowed]


# A customer's bookings (``/customer``).
customer_bookings = Part(permitted_rooms=_watchable_rooms)


@customer_bookings.event(
    "booking:track",
    summary="Watch your booking: join booking:<id> (a finished booking joins no room)",
    payload=BOOKING_ID,
    ack=_BOOKING_ACK,
)
async def track(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    parsed = selectors.booking_id_from(payload)
    booking_id = str(parsed)
    booking = await _tracked(await namespace.get_session(sid), parsed)
    if booking.status not in TERMINAL_STATUSES:
        # A finished booking's room was closed; nothing will be sent to it again.
        await namespace.enter_room(sid, rooms.booking(booking_id))
    return {"booking": events.booking(booking)}


@customer_bookings.event(
    "booking:untrack", summary="Stop watching your booking", payload=BOOKING_ID, ack=obj({"bookingId": UUID})
)
async def untrack(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    booking_id = _booking_id(payload)
    await db(_track)(await namespace.get_session(sid), booking_id)
    await namespace.leave_room(sid, rooms.booking(booking_id))
    return {"bookingId": booking_id}


@customer_bookings.event(
    "booking:cancel",
    summary="Cancel your booking (PENDING..PARTNER_EN_ROUTE)",
    payload=input_schema(BookingCancelInput),
    ack=_BOOKING_ACK,
)
async def cancel(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    data = validated(BookingCancelInput, payload)
    booking = await db(_cancel)(await namespace.get_session(sid), data)
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


# A partner's offers and jobs, and the relay of their position (``/partner``).
partner_jobs = Part()


async def _relay_after_move(namespace: BaseNamespace, partner_id: int, marks: list[int]) -> None:
    """The relay list read again after the partner's move committed: the ack promises it, so the
    next ``location:update`` reaches the customer. A read not answered (a stopping process, the
    database gone since the commit) does not turn the committed move into an error, which the
    client would retry into ``INVALID_TRANSITION``: the move is acked, and the ``partner_bookings``
    control its commit sent, else the periodic reconcile (``RELAY_RECONCILE_INTERVAL``), reads the
    list again."""
    # The mark its commit's control carries (``relay.marking_commits``): the first of the two refreshes to
    # take the partner's lock reads, the other finds that read; none sent, a mark taken after the commit.
    after = max(marks) if marks else relay.read_mark()
    try:
        await relay.refresh_relay(namespace.server.manager, partner_id, after=after)
    except Exception as exc:
        if not warn_if_unavailable(logger, f"partner {partner_id}'s relay list after their move (reconcile will)", exc):
            raise


@partner_jobs.on_connected
async def _relay_list(namespace: BaseNamespace, sid: str, session: Session) -> None:
    session["bookings"] = []
    await relay.refresh_relay(namespace.server.manager, session["uid"])


@partner_jobs.event(
    "booking:accept",
    summary="Accept the booking offered to you",
    payload=BOOKING_ID,
    ack=_BOOKING_ACK,
)
async def accept(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    booking_id = selectors.booking_id_from(payload)
    session = await namespace.get_session(sid)
    marks = relay.marking_commits()
    booking = await db(_accept)(session, booking_id)
    await _relay_after_move(namespace, session["uid"], marks)
    return {"booking": booking}


@partner_jobs.event(
    "booking:reject",
    summary="Turn the offer down: it goes to the next partner",
    payload=input_schema(BookingCancelInput),  # a rejection has the cancel's shape
    ack=_BOOKING_ACK,
)
async def reject(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    data = validated(BookingCancelInput, payload)
    return {"booking": await db(_reject)(await namespace.get_session(sid), data)}


@partner_jobs.event(
    "booking:status_update",
    summary="Move your booking on: EN_ROUTE -> ARRIVED -> IN_PROGRESS -> COMPLETED (the first two may be skipped)",
    payload=input_schema(BookingStatusInput),
    ack=_BOOKING_ACK,
)
async def status_update(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    data = validated(BookingStatusInput, payload)
    session = await namespace.get_session(sid)
    # A move is judged on the partner's freshest position (the far arrival, bookings.arrival reads
    # their row): what this process buffered is written first (nothing when nothing is buffered).
    await locations.flush(session["uid"])
    marks = relay.marking_commits()
    booking = await db(_status)(session, data)
    await _relay_after_move(namespace, session["uid"], marks)
    return {"booking": booking}


@partner_jobs.event(
    "location:update",
    summary=(
        "Your position (recorded at recordedAt, else now): relayed to your active bookings' rooms and "
        "stored as your last location when newer than any known; kept in your job's trace"
    ),
    payload=LOCATION_UPDATE,
    ack=obj({"relayed": INTEGER}),
    lightweight=True,  # the relay reads the socket's session, never the database
)
async def location_update(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    relayed = await relay.relay_location(EVENT_SESSION.get(), payload)  # the socket's, as the namespace read it
    return {"relayed": relayed}


@partner_jobs.event(
    "location:batch",
    summary=(
        "Fixes your phone kept while offline (at most 500): stored once each in your job's trace; "
        "the newest is relayed when newer than any known"
    ),
    payload=LOCATION_BATCH,
    ack=obj({"accepted": INTEGER, "duplicates": INTEGER, "rejected": INTEGER}),
)
async def location_batch(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    return await relay.relay_batch(await namespace.get_session(sid), payload)
