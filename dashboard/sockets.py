"""The ``/admin`` namespace's own part (contract 5.3): figures, the bookings monitor, the stats push."""

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings

from bookings.shapes import booking_data
from config import rooms
from config.errors import Forbidden
from config.realtime.catalogue import ANY_OBJECT, NOTHING, NUMBER, STRING, TIME, obj, server_event
from config.realtime.emit import emit_now
from config.realtime.identity import Session
from config.realtime.manager import ChannelLayerManager
from config.realtime.namespace import BaseNamespace
from config.realtime.orm import db
from config.realtime.outages import OutageLog
from config.realtime.parts import Part
from dashboard.selectors import current_stats, monitor_bookings_rows, shared_stats

logger = logging.getLogger(__name__)
_COUNT = {"type": "integer", "minimum": 0}
STATS = obj(
    {
        "bookings": obj({"total": _COUNT, "today": _COUNT, "active": _COUNT, "byStatus": ANY_OBJECT}),
        "revenue": obj({"today": NUMBER, "total": NUMBER, "currency": STRING}),
        "partners": obj({"total": _COUNT, "online": _COUNT, "available": _COUNT, "pendingKyc": _COUNT}),
        "customers": obj({"total": _COUNT, "online": _COUNT}),
        "generatedAt": TIME,
    }
)
server_event(
    "dashboard:stats_update",
    namespaces=(rooms.ADMIN,),
    summary="The dashboard figures (to the asking socket; to admins at most once a second when they change)",
    payload=STATS,
    volatile=True,
)


def _qualify(identity: dict[str, Any]) -> None:
    if not identity["is_staff"]:
        raise Forbidden("Only staff may connect to /admin")


def _own_rooms(session: Session, joined: list[str], *, finished: bool = False) -> list[str]:
    return joined  # every room here is the namespace's own right, which ``_qualify`` checks


# The ``/admin`` namespace's own part: figures and the bookings monitor.
admin = Part(qualify=_qualify, permitted_rooms=_own_rooms)


@admin.on_connected
async def _join_admins(namespace: BaseNamespace, sid: str, session: Session) -> None:
    await namespace.enter_room(sid, rooms.ADMINS)


@admin.event(
    "request:stats",
    summary="Ask for the figures (also emitted as dashboard:stats_update)",
    payload=NOTHING,
    ack=obj({"stats": STATS}),
)
async def request_stats(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    stats = await db(current_stats)()
    await emit_now("dashboard:stats_update", stats, namespace=rooms.ADMIN, room=sid, local=True)
    return {"stats": stats}


@admin.event(
    "monitor:bookings",
    summary="Join monitor:bookings; the ack carries the open bookings (newest 200)",
    payload=NOTHING,
    ack=obj({"bookings": {"type": "array", "items": booking_data.schema}}),
)
async def monitor_bookings(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]:
    await namespace.enter_room(sid, rooms.MONITOR_BOOKINGS)
    return {"bookings": await db(monitor_bookings_rows)()}


async def push_stats(manager: ChannelLayerManager) -> None:
    """Each process pushes to its own admin sockets, at most once a second, only on change: the
    figures are computed by one process for the cluster (``shared_stats``), the others relay them."""
    last: dict[str, Any] | None = None
    # The database away: one warning and one line when back, not a traceback every tick (a second).
    outage = OutageLog(logger, "computing dashboard stats")
    failed_at: float | None = None  # Unix time of the outage's first failed tick
    while True:
        await asyncio.sleep(settings.DASHBOARD_PUSH_INTERVAL)
        if not any(True for _ in manager.get_participants(rooms.ADMIN, rooms.ADMINS)):
            last = None
            continue
        try:
            stats = await db(shared_stats)(settings.DASHBOARD_PUSH_INTERVAL)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
            failed_at = failed_at or time.time()
            continue
        if stats is None:
            continue  # another process is computing them: they arrive on the next tick
        # Figures from before the outage (the cache keeps them a second) say nothing of the database.
        if failed_at is None or datetime.fromisoformat(stats["generatedAt"]).timestamp() > failed_at:
            outage.succeeded()
            failed_at = None
        figures = {k: v for k, v in stats.items() if k != "generatedAt"}
        if figures != last:
            last = figures
            # Each process relays the shared figures to its own admins: no publish.
            await emit_now("dashboard:stats_update", stats, namespace=rooms.ADMIN, room=rooms.ADMINS, local=True)
