"""What ``seed_demo`` adds from this app, on bookings' ``demo_seeded`` signal, so a newcomer sees
the new screens at once: an open safety alert (the live dashboard's top) and a finished job with
its trace (the admin's map). The job's trace is ``partners``' fixes, ``bookings``' history and
this app's messages, and ``messaging`` is the lowest app that sees all three.
"""

import random
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bookings.models import OPEN_STATUSES, Booking, BookingStatus, BookingStatusChange, DispatchState, Service
from bookings.services import insert_with_number
from bookings.signals import demo_seeded
from config.platform_day import platform_day
from messaging.models import Message, SafetyAlert
from messaging.safety import safety_alert_raise
from partners.geo import distance_m
from partners.models import LocationFix, Partner
from partners.services import earning_store

TRACE_NOTE = "demo trace: a finished job with its route"
PLACE = (28.6259, 77.1910)  # the customer's door, in New Delhi like the other demo bookings
# The partner's drive, corner to corner along the streets, from about 3 km away.
CORNERS = [
    (PLACE[0] - 0.022, PLACE[1] + 0.019),
    (PLACE[0] - 0.022, PLACE[1] + 0.006),
    (PLACE[0] - 0.004, PLACE[1] + 0.006),
]
SPEED = 8.0  # metres a second in city traffic, one fix per 10 s
S = BookingStatus
STEPS = {S.PARTNER_ACCEPTED: 0.7, S.PARTNER_EN_ROUTE: 2.0}  # minutes after the offer


def demo_trace(
    sender: Any, *, customers: list[Any], partners: list[Partner] = (), services: list[Service] = (), **kwargs: Any
) -> str | None:
    """One finished job with its trace (once, however often ``seed_demo`` runs); the line saying where."""
    if not customers or not partners or not services:
        return None
    # among the demo customers' bookings: anyone may type the note's text on a booking of theirs
    booking = Booking.objects.filter(notes=TRACE_NOTE, customer__in=customers).first()
    if booking is None:
        booking = traced_job(customers[0], partners[0], services[0], random.Random(35))
    return f"  a finished job's trace (route, timeline, replay): /admin/bookings/booking/{booking.pk}/change/"


def demo_alert(sender: Any, *, customers: list[Any], **kwargs: Any) -> None:
    """One open safety alert for the live dashboard's top: a demo customer's, on an open booking of theirs.
    Debug only: on a staging server (``--allow-demo-logins``) it would call every real desk, again
    every ``SAFETY_ESCALATE_SECONDS``, for an emergency nobody has."""
    if not settings.DEBUG:
        return
    if SafetyAlert.objects.filter(raised_by__in=customers, acknowledged_at=None).exists():
        return
    booking = Booking.objects.filter(customer__in=customers, status__in=OPEN_STATUSES).order_by("created_at").first()
    if booking is None:
        return
    safety_alert_raise(
        user=booking.customer,
        role="customer",
        booking_id=str(booking.pk),
        latitude=booking.latitude,
        longitude=booking.longitude,
        note="Demo: the partner's van has been parked outside for an hour and nobody answers",
    )


def connect_receivers() -> None:
    """Called from ``MessagingConfig.ready``."""
    demo_seeded.connect(demo_alert, dispatch_uid="messaging.demo.demo_alert")
    demo_seeded.connect(demo_trace, dispatch_uid="messaging.demo.demo_trace")


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return distance_m(*a, *b)  # as the relay measures arrival (``bookings.arrival``)


def _drive(path: list[tuple[float, float]], rng: random.Random) -> list[tuple[float, float]]:
    """A fix every 10 s along ``path`` at ``SPEED``, a few metres of GPS noise on each."""
    fixes = [path[0]]
    for a, b in pairwise(path):
        steps = max(1, round(_metres(a, b) / (SPEED * 10)))
        for k in range(1, steps + 1):
            lat = a[0] + (b[0] - a[0]) * k / steps + rng.gauss(0, 0.00003)
            lng = a[1] + (b[1] - a[1]) * k / steps + rng.gauss(0, 0.00003)
            fixes.append((lat, lng))
    return fixes


@transaction.atomic
def traced_job(customer: Any, partner: Partner, service: Service, rng: random.Random) -> Booking:
    """A job offered about an hour ago, driven to and done: status changes, three messages, its
    arrival near the place, and the partner's fixes from acceptance to completion (every 10 s
    driving, every minute at work)."""
    drive = _drive([*CORNERS, PLACE], rng)
    offered = timezone.now() - timedelta(minutes=75)
    when = {S.PARTNER_ASSIGNED: offered} | {s: offered + timedelta(minutes=m) for s, m in STEPS.items()}
    when[S.PARTNER_ARRIVED] = when[S.PARTNER_EN_ROUTE] + timedelta(seconds=10 * (len(drive) - 1))
    when[S.IN_PROGRESS] = when[S.PARTNER_ARRIVED] + timedelta(minutes=3)
    when[S.COMPLETED] = when[S.IN_PROGRESS] + timedelta(minutes=35)
    # the fix where the partner first came within ARRIVAL_RADIUS_METERS: the trace's arrival
    near = next(i for i, fix in enumerate(drive) if _metres(fix, PLACE) <= settings.ARRIVAL_RADIUS_METERS)
    booking = insert_with_number(
        customer=customer,
        partner=partner,
        service=service,
        status=S.COMPLETED,
        scheduled_at=offered + timedelta(minutes=15),
        address="12 Trace Lane, New Delhi",
        latitude=PLACE[0],
        longitude=PLACE[1],
        amount=service.price,
        currency=service.currency,
        notes=TRACE_NOTE,
        completed_at=when[S.COMPLETED],
        dispatch_state=DispatchState.DONE,
        nearby_at=when[S.PARTNER_EN_ROUTE] + timedelta(seconds=10 * near),
        nearby_meters=round(_metres(drive[near], PLACE)),
    )
    created = offered - timedelta(minutes=1)
    if platform_day(created) == platform_day(booking.created_at):  # the day's tally counted it already
        Booking.objects.filter(pk=booking.pk).update(created_at=created, updated_at=when[S.COMPLETED])
    moves = [("", S.PENDING, "customer", customer, created)]
    previous = S.PENDING
    for status, at in when.items():
        moves.append((previous, status, "dispatch" if status == S.PARTNER_ASSIGNED else "partner", partner.user, at))
        previous = status
    for from_status, to_status, role, actor, at in moves:
        change = BookingStatusChange.objects.create(
            booking=booking,
            from_status=from_status,
            to_status=to_status,
            role=role,
            actor=None if role == "dispatch" else actor,
            partner=None if to_status == S.PENDING else partner,
            note="seeded",
        )
        BookingStatusChange.objects.filter(pk=change.pk).update(created_at=at)
    _fixes(partner, drive, when, rng)
    said = [
        (customer, partner.user, when[S.PARTNER_ACCEPTED] + timedelta(seconds=30), "Hi! The gate code is 4321."),
        (partner.user, customer, when[S.PARTNER_EN_ROUTE] + timedelta(seconds=20), "On my way, about 10 minutes."),
        (partner.user, customer, when[S.PARTNER_ARRIVED] - timedelta(seconds=30), "At the gate now."),
    ]
    for sender, recipient, at, body in said:
        message = Message.objects.create(sender=sender, recipient=recipient, booking=booking, body=body, read_at=at)
        Message.objects.filter(pk=message.pk).update(created_at=at)
    earning_store(booking=booking)
    return booking


def _fixes(partner: Partner, drive: list[tuple[float, float]], when: dict[str, datetime], rng: random.Random) -> None:
    """Waiting at the start until en route (every 10 s), the drive, then at work by the door (every minute)."""
    rows: list[tuple[datetime, tuple[float, float]]] = []
    at = when[S.PARTNER_ACCEPTED]
    while at < when[S.PARTNER_EN_ROUTE]:
        rows.append((at, drive[0]))
        at += timedelta(seconds=10)
    rows += [(when[S.PARTNER_EN_ROUTE] + timedelta(seconds=10 * i), fix) for i, fix in enumerate(drive)]
    at = when[S.PARTNER_ARRIVED] + timedelta(minutes=1)
    while at <= when[S.COMPLETED]:
        rows.append((at, (PLACE[0] + rng.gauss(0, 0.00004), PLACE[1] + rng.gauss(0, 0.00004))))
        at += timedelta(minutes=1)
    LocationFix.objects.bulk_create(
        (
            LocationFix(partner=partner, recorded_at=t, latitude=lat, longitude=lng, accuracy=8.0)
            for t, (lat, lng) in rows
        ),
        ignore_conflicts=True,  # the partner's own fixes at the same instants (none in a fresh database)
    )
