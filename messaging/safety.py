"""Safety alerts (contract 10.3): a customer or partner calls for help; every staff socket hears it
at once, and again every ``SAFETY_ESCALATE_SECONDS`` until a staff member acknowledges it.

In ``messaging``, the app of everything that reaches a person. The escalation is a deadline in
the database (``next_escalation_at``), not a timer in memory: it survives a restart, and every
server process sweeps for due alerts (``escalate_forever``, started by the composition root),
locking the due rows with SKIP LOCKED, so each number goes out once however many processes sweep,
and none after the acknowledgement (which clears the deadline in the same row). Deadlines are on
the database's clock.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import DurationField, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from bookings.models import Booking
from bookings.selectors import parse_booking_id
from config import rooms
from config.errors import Conflict, Forbidden, NotFound, ValidationError
from config.parsing import parse_id
from config.realtime.clock import every
from config.realtime.emit import emit
from config.realtime.orm import db
from messaging import shapes
from messaging.models import CLIENT_ALERT_ID_MAX, SAFETY_NOTE_MAX, SafetyAlert

ROLES = ("customer", "partner")
SWEEP_BATCH = 100  # due alerts one sweep handles; the next sweep takes the rest
# Open alerts one person may hold (each its own escalation stream to every staff socket): past
# them, a press about another booking folds into their newest open alert. Without a bound, a
# partner naming each of a thousand finished jobs in turn held a thousand streams.
OPEN_PER_RAISER = 3


def safety_alert_raise(
    *,
    user: AbstractBaseUser,
    role: str,
    booking_id: Any = None,
    latitude: float | None = None,
    longitude: float | None = None,
    note: str | None = None,
    client_alert_id: str | None = None,
) -> tuple[SafetyAlert, bool]:
    """Store an alert and tell every staff socket (``safety:alert``, escalation 0); ``(alert, created)``.

    Stored once per (user, ``clientAlertId``): a retry returns the stored alert and sends nothing
    again. An alert from a user who has one open (not acknowledged) about the same booking (or
    about none) is folded into it: the same alert is answered, nothing is stored or sent, and the
    open one keeps escalating; so is one from a user who holds ``OPEN_PER_RAISER`` open already
    (into the newest). ``bookingId`` must name one of the user's bookings, as customer or
    as partner: otherwise ``NOT_FOUND``, as every event that names a booking answers.
    """
    if role not in ROLES:
        raise Forbidden("only customers and partners raise safety alerts")
    if (latitude is None) != (longitude is None):
        raise ValidationError("latitude and longitude come together", details={"latitude": ["both or neither"]})
    if latitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValidationError("latitude must be between -90 and 90, longitude between -180 and 180")
    if note is not None and (not isinstance(note, str) or len(note) > SAFETY_NOTE_MAX):
        raise ValidationError(f"note must be text of at most {SAFETY_NOTE_MAX} characters")
    if client_alert_id is not None and (
        not isinstance(client_alert_id, str) or not 0 < len(client_alert_id) <= CLIENT_ALERT_ID_MAX
    ):
        raise ValidationError(f"clientAlertId must be a string of 1 to {CLIENT_ALERT_ID_MAX} characters")
    booking_pk = parse_booking_id(booking_id) if booking_id is not None else None
    with transaction.atomic():
        # One user's alerts are taken one at a time (two devices pressing at once fold into one).
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        if client_alert_id is not None:
            stored = SafetyAlert.objects.filter(raised_by_id=user.pk, client_alert_id=client_alert_id).first()
            if stored is not None:
                return stored, False
        if (
            booking_pk is not None
            and not Booking.objects.filter(Q(customer_id=user.pk) | Q(partner_id=user.pk), pk=booking_pk).exists()
        ):
            raise NotFound("no booking of yours has this id (an alert may leave bookingId out)")
        open_ones = SafetyAlert.objects.filter(raised_by_id=user.pk, acknowledged_at=None)
        open_one = open_ones.filter(booking_id=booking_pk).first()
        if open_one is None and open_ones.count() >= OPEN_PER_RAISER:
            open_one = open_ones.order_by("-id").first()  # one person's streams to staff stay few
        if open_one is not None:
            return open_one, False
        alert = SafetyAlert.objects.create(
            raised_by_id=user.pk,
            role=role,
            booking_id=booking_pk,
            latitude=latitude,
            longitude=longitude,
            note=note or "",
            client_alert_id=client_alert_id,
            raised_at=Now(),  # the database's clock, as every deadline: servers' clocks drift apart
            next_escalation_at=Now() + _period(),
        )
        alert = SafetyAlert.objects.select_related("raised_by").get(pk=alert.pk)
        _tell_staff(alert)
    return alert, True


def safety_alert_acknowledge(*, staff: AbstractBaseUser, alert_id: Any) -> SafetyAlert:
    """Staff take an open alert: escalation stops on every process (its deadline is cleared in the
    same UPDATE the sweeps claim on), and every staff socket and the person who raised it get
    ``safety:acknowledged``. An alert acknowledged already is ``CONFLICT``, naming who did it."""
    if not staff.is_staff:
        raise Forbidden("only staff acknowledge safety alerts")
    pk = parse_id(alert_id, field="alertId")
    with transaction.atomic():
        taken = SafetyAlert.objects.filter(pk=pk, acknowledged_at=None).update(
            acknowledged_at=timezone.now(), acknowledged_by_id=staff.pk, next_escalation_at=None
        )
        alert = SafetyAlert.objects.select_related("raised_by", "acknowledged_by").filter(pk=pk).first()
        if alert is None:
            raise NotFound("no such safety alert")
        acknowledged = shapes.safety_acknowledged(alert)
        if not taken:
            by = acknowledged["by"]["name"]
            raise Conflict(f"this alert was acknowledged already, by {by}", details=acknowledged)
        emit("safety:acknowledged", acknowledged, namespace=rooms.ADMIN, room=rooms.ADMINS)
        for namespace in rooms.PERSON_NAMESPACES:
            emit("safety:acknowledged", acknowledged, namespace=namespace, room=rooms.user(alert.raised_by_id))
    return alert


def escalate_due() -> int:
    """Send every open alert whose deadline passed again, with ``escalation`` + 1; how many went.

    One transaction, three statements whatever the batch: the due alerts (``SWEEP_BATCH`` at most,
    the rest at the next sweep) are locked with SKIP LOCKED, so a process sweeping at the same
    time takes others, and an acknowledgement under way is skipped; their deadlines move by one
    period in one UPDATE, and the events leave after that commit. Deadlines are compared with
    the database's clock, not the process's: a server whose clock drifted escalates nothing early.
    A process killed before its commit sent nothing and leaves the batch to the next sweep.

    Most sweeps find nothing due: one read of the due index (no transaction, no lock) says so
    first, as the booking clock counts its backlog before it sweeps. The transaction ran every
    second on every process otherwise. A deadline that passes just after the read waits for the
    next sweep, as it would have anyway.
    """
    due_alerts = SafetyAlert.objects.filter(acknowledged_at=None, next_escalation_at__lte=Now())
    if not due_alerts.exists():
        return 0
    with transaction.atomic():
        due = list(
            due_alerts.select_for_update(skip_locked=True, of=("self",))
            .select_related("raised_by")
            .order_by("next_escalation_at")[:SWEEP_BATCH]
        )
        if not due:
            return 0
        SafetyAlert.objects.filter(pk__in=[alert.pk for alert in due]).update(
            escalation=F("escalation") + 1, next_escalation_at=Now() + _period()
        )
        for alert in due:
            alert.escalation += 1
            _tell_staff(alert)
    return len(due)


def _period() -> Any:
    return Value(timedelta(seconds=settings.SAFETY_ESCALATE_SECONDS), output_field=DurationField())


async def escalate_forever() -> None:
    """The safety clock of a server process (started by the composition root)."""
    await every(settings.SAFETY_SWEEP_INTERVAL, db(escalate_due), "the safety clock")


def _tell_staff(alert: SafetyAlert) -> None:
    emit("safety:alert", shapes.safety_alert(alert), namespace=rooms.ADMIN, room=rooms.ADMINS)
