"""A job's trace (contract 10.3): its partner's fixes from PARTNER_ACCEPTED until the booking
ended, beside its timeline (status changes, arrival, messages, safety alerts), for staff and, once
it ended, its two people.

It reads three apps (the fixes are ``partners``', the history and arrival ``bookings``', the
messages and alerts ``messaging``'s), so it lives in the top layer, which writes nothing. The REST view is
``dashboard.apis.BookingTraceApi``; the Django admin's booking page draws it
(``dashboard/templates/admin/bookings/booking/change_form.html``).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from bookings.arrival import ARRIVED_FAR_METERS
from bookings.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Booking, BookingStatus, BookingStatusChange
from bookings.selectors import booking_for_viewer
from config.errors import Forbidden
from config.formats import iso
from config.realtime.catalogue import ID, INTEGER, LOCATION, NUMBER, STRING, TIME, UUID, enum, nullable, obj, one_of
from config.shapes import shape
from messaging.models import Message, SafetyAlert
from partners.models import LocationFix

# recorded_at in UTC as ``config.formats.iso`` spells it, but always with six decimals (``_iso`` trims them).
POSTGRES_ISO = "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
# The safety alerts a trace shows, the first ones (``TRACE_MAX_MESSAGES`` bounds the chat, not these).
MAX_ALERTS = 500
# A stretch of the job: (partner id, from, until); ``until`` None while it is under way.
Stretch = tuple[int, datetime, datetime | None]
ARRIVED_FAR_KM = f"{ARRIVED_FAR_METERS / 1000:g}"

POINT = obj({"latitude": NUMBER, "longitude": NUMBER, "recordedAt": TIME})
STATUS_EVENT = obj(
    {
        "at": TIME,
        "kind": enum(["status"]),
        "from": nullable(enum(BookingStatus.values)),
        "to": enum(BookingStatus.values),
        "by": {**enum(["customer", "partner", "staff", "dispatch", ""]), "description": "the role that made the move"},
        "note": {**STRING, "description": "staff only (empty for the booking's customer and partner)"},
    }
)
MESSAGE_EVENT = obj(
    {
        "at": TIME,
        "kind": enum(["message"]),
        "id": ID,
        "senderId": ID,
        "senderRole": enum(["customer", "partner", "staff"]),
        "text": STRING,
    }
)
ARRIVAL_EVENT = obj(
    {"at": TIME, "kind": enum(["arrival"])},
    {
        "distanceMeters": {**INTEGER, "description": "came within ARRIVAL_RADIUS_METERS: how far it was then"},
        "farMeters": {**INTEGER, "description": f"set PARTNER_ARRIVED farther than {ARRIVED_FAR_KM} km away: how far"},
    },
)
ALERT_EVENT = obj(
    {
        "at": TIME,
        "kind": enum(["alert"]),
        "id": ID,
        "raisedBy": obj({"id": ID, "role": enum(["customer", "partner"])}),
        "location": nullable(LOCATION),
        "note": STRING,
        "acknowledgedAt": nullable(TIME),
    }
)
TRACE = obj(
    {
        "bookingId": UUID,
        "points": {"type": "array", "items": POINT, "description": "in time order"},
        "events": {
            "type": "array",
            "items": one_of(STATUS_EVENT, MESSAGE_EVENT, ARRIVAL_EVENT, ALERT_EVENT),
            "description": "in time order",
        },
    }
)


@dataclass(frozen=True)
class Trace:
    booking_id: str
    points: list[dict[str, Any]]
    events: list[dict[str, Any]]


@shape("BookingTrace", TRACE)
def trace_data(trace: Trace) -> dict[str, Any]:
    """A job's route and timeline (``GET /api/bookings/{id}/trace/``)."""
    return {"bookingId": trace.booking_id, "points": trace.points, "events": trace.events}


def booking_trace(*, booking_id: Any, user: AbstractBaseUser) -> Trace:
    """The trace ``user`` may read: staff always; the booking's customer and partner once it has ended
    (the partner the route of their own stretches only: a job handed over keeps the first
    partner's whereabouts from the second).

    Someone else's booking gets the answer every booking endpoint gives (``booking_for_viewer``),
    before anything about the booking's state is said. Five queries: the booking, its history,
    its fixes (one key range per stretch on (partner, recorded_at)), its messages, its alerts.
    """
    booking = booking_for_viewer(booking_id=booking_id, user=user)
    if not user.is_staff and booking.status not in TERMINAL_STATUSES:
        raise Forbidden("the trace is available once the booking has ended")
    history = list(
        BookingStatusChange.objects.filter(booking=booking)
        .order_by("created_at", "id")
        .values_list("created_at", "from_status", "to_status", "role", "partner_id", "note")
    )
    timeline = [
        (
            at,
            {
                "at": iso(at),
                "kind": "status",
                "from": from_status or None,
                "to": to_status,
                "by": role,
                "note": note if user.is_staff else "",
            },
        )
        for at, from_status, to_status, role, _, note in history
    ]
    timeline += _arrivals(booking) + _messages(booking, user) + _alerts(booking, user)
    # by time (the ISO text would not do: "...:05Z" sorts after "...:05.2Z"); a tie keeps its kind's order
    events = [event for _, event in sorted(timeline, key=lambda pair: pair[0])]
    stretches = job_stretches([(at, to_status, partner_id) for at, _, to_status, _, partner_id, _ in history])
    if not user.is_staff and booking.customer_id != user.pk:
        # the partner: their own route, not the one of a partner who held the job before them
        stretches = [stretch for stretch in stretches if stretch[0] == user.pk]
    return Trace(str(booking.pk), route(stretches), events)


def job_stretches(moves: list[tuple[datetime, str, int | None]]) -> list[Stretch]:
    """When a partner held the job: from each PARTNER_ACCEPTED until the move out of the active
    statuses (completed, cancelled, or back to dispatch). ``moves``: (at, to status, partner id)."""
    stretches: list[Stretch] = []
    start: tuple[int, datetime] | None = None
    for at, to_status, partner_id in moves:
        if to_status == BookingStatus.PARTNER_ACCEPTED and start is None and partner_id is not None:
            start = (partner_id, at)
        elif start is not None and to_status not in ACTIVE_STATUSES:
            stretches.append((*start, at))
            start = None
    if start is not None:
        stretches.append((*start, None))
    return stretches


def route(stretches: list[Stretch], *, limit: int | None = None) -> list[dict[str, Any]]:
    """The fixes of these stretches in time order, in one query on the (partner, recorded_at) key.

    At most ``limit`` (``TRACE_MAX_POINTS``) points: past it, every k-th is kept, and the last,
    so a long job keeps its whole route at a coarser step instead of losing its end.
    """
    if not stretches:
        return []
    limit = limit or settings.TRACE_MAX_POINTS
    table = connection.ops.quote_name(LocationFix._meta.db_table)
    ranges, params = [], []
    adapt = connection.ops.adapt_datetimefield_value  # SQLite compares the text it stores
    for partner_id, since, until in stretches:
        ranges.append("(partner_id = %s AND recorded_at >= %s" + (" AND recorded_at <= %s)" if until else ")"))
        params += [partner_id, adapt(since)] + ([adapt(until)] if until else [])
    # PostgreSQL spells the time itself: parsing each timestamp into a datetime and back was
    # two thirds of a 2-hour trace's read (bench/traces.py)
    spelled = POSTGRES_ISO if connection.vendor == "postgresql" else "recorded_at"
    sql = (
        f"SELECT latitude, longitude, {spelled} FROM ("
        "SELECT latitude, longitude, recorded_at, ROW_NUMBER() OVER (ORDER BY recorded_at) - 1 AS i, "
        f"COUNT(*) OVER () AS n FROM {table} WHERE {' OR '.join(ranges)}"
        ") AS fixes WHERE n <= %s OR i %% ((n + %s) / %s) = 0 OR i = n - 1 ORDER BY recorded_at"
    )
    with connection.cursor() as cursor:
        # the step: ceil(n / (limit - 1)), so the stride's points and the last are at most ``limit``
        cursor.execute(sql, [*params, limit, limit - 2, limit - 1])
        rows = cursor.fetchall()
    return [{"latitude": latitude, "longitude": longitude, "recordedAt": _iso(at)} for latitude, longitude, at in rows]


def _iso(value: datetime | str) -> str:
    """``config.formats.iso``'s spelling: PostgreSQL's text (six decimals, none when they are all
    zero, as ``isoformat`` writes), or SQLite's stored text or a datetime made into it."""
    if isinstance(value, str) and value.endswith("Z"):
        return value[:-8] + "Z" if value.endswith(".000000Z") else value
    return iso(_aware(value))


def _aware(value: datetime | str) -> datetime:
    """SQLite hands a subquery's timestamp back as its text (stored in UTC)."""
    if isinstance(value, datetime):
        return value
    return parse_datetime(value).replace(tzinfo=UTC)


def _arrivals(booking: Booking) -> list[tuple[datetime, dict[str, Any]]]:
    """What the booking recorded of its partner's arrival (``bookings.arrival``): near the place,
    and a PARTNER_ARRIVED set far from it."""
    found = []
    if booking.nearby_at is not None:
        event = {"at": iso(booking.nearby_at), "kind": "arrival", "distanceMeters": booking.nearby_meters or 0}
        found.append((booking.nearby_at, event))
    if booking.arrived_far_at is not None:
        event = {"at": iso(booking.arrived_far_at), "kind": "arrival", "farMeters": booking.arrived_far_meters or 0}
        found.append((booking.arrived_far_at, event))
    return found


def _messages(booking: Booking, user: AbstractBaseUser) -> list[tuple[datetime, dict[str, Any]]]:
    """The booking's messages, whole (a dispute turns on what was said): staff read all of them,
    the customer and the partner only those they sent or received (not staff's to the other)."""
    messages = Message.objects.filter(booking=booking)
    if not user.is_staff:
        messages = messages.filter(Q(sender=user) | Q(recipient=user))
    rows = messages.order_by("id").values_list("id", "created_at", "sender_id", "sender__is_staff", "body")[
        : settings.TRACE_MAX_MESSAGES
    ]
    return [
        (
            at,
            {
                "at": iso(at),
                "kind": "message",
                "id": str(pk),
                "senderId": str(sender_id),
                "senderRole": "customer" if sender_id == booking.customer_id else "staff" if is_staff else "partner",
                "text": body,
            },
        )
        for pk, at, sender_id, is_staff, body in rows
    ]


def _alerts(booking: Booking, user: AbstractBaseUser) -> list[tuple[datetime, dict[str, Any]]]:
    """The booking's safety alerts: staff read all of them, the customer and the partner their own
    (one may have raised an alert about the other)."""
    alerts = SafetyAlert.objects.filter(booking=booking)
    if not user.is_staff:
        alerts = alerts.filter(raised_by=user)
    rows = alerts.order_by("raised_at", "id").values_list(
        "id", "raised_at", "raised_by_id", "role", "latitude", "longitude", "note", "acknowledged_at"
    )[:MAX_ALERTS]
    return [
        (
            at,
            {
                "at": iso(at),
                "kind": "alert",
                "id": str(pk),
                "raisedBy": {"id": str(raised_by), "role": role},
                "location": None
                if latitude is None or longitude is None
                else {"latitude": latitude, "longitude": longitude},
                "note": note,
                "acknowledgedAt": iso(acknowledged),
            },
        )
        for pk, at, raised_by, role, latitude, longitude, note, acknowledged in rows
    ]
