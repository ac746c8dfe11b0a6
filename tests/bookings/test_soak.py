"""The soak: ``manage.py simulate`` for two minutes against two server processes (PostgreSQL, Redis).

Partners accept, reject and ignore offers, drive and finish jobs; customers book, track
and cancel. Afterwards every booking must be in a legal state, its history a legal path
through the lifecycle, no partner may ever have held two open offers at once, and the
dashboard's running tallies must equal a recount of the whole history.
"""

import itertools
import os
import subprocess
import sys
from collections import defaultdict

import pytest
from django.db import connection

from bookings import tallies
from bookings.models import HELD_STATUSES, Booking, BookingStatusChange, DispatchState, Tally
from bookings.models import BookingStatus as S
from bookings.services import TRANSITIONS
from bookings.shapes import attention
from partners.models import Earning
from tests.live import ServerProcess, database_url
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
# Odds that make every path happen within minutes: offers lapse, get rejected, get cancelled.
SIMULATION = [
    *("--partners", "16", "--customers", "14", "--duration", str(SOAK_SECONDS)),
    *("--accept", "0.6", "--reject", "0.15", "--cancel", "0.1"),
    *("--speed", "80", "--radius", "1", "--book-every", "3", "--work", "2"),
    # The bad day: phones that die on site (in the first half) and staff suspending partners mid-job.
    *("--silent", "0.15", "--suspensions", "3"),
]
STALE_MINUTES = 0.4  # 24 s: a job abandoned in the first half is stale by the end
ACTIVE = {S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS}


def illegal_state(booking: Booking, earned: set) -> str | None:
    """What is wrong with a booking's fields for its status, if anything."""
    due, state, partner = booking.dispatch_due_at, booking.dispatch_state, booking.partner_id
    if booking.status == S.PENDING:
        ok = partner is None and state == DispatchState.UNASSIGNED
    elif booking.status == S.PARTNER_ASSIGNED:
        ok = partner is not None and state == DispatchState.OFFERED and due is not None
    else:
        ok = state == DispatchState.DONE and due is None
        ok = ok and (partner is not None if booking.status in ACTIVE else True)
        ok = ok and (booking.pk in earned) == (booking.status == S.COMPLETED)
    return None if ok else f"{booking.number}: {booking.status} {state} partner={partner} due={due}"


def illegal_moves(booking: Booking, rows: list[BookingStatusChange]) -> list[str]:
    """Steps of a booking's history that the lifecycle (``TRANSITIONS``) does not allow."""
    wrong = []
    if not rows or (rows[0].from_status, rows[0].to_status) != ("", S.PENDING):
        wrong.append("does not start with its creation")
    for before, row in itertools.pairwise(rows):
        allowed = TRANSITIONS.get((row.from_status, row.to_status), frozenset())
        if row.from_status != before.to_status or row.role not in allowed:
            wrong.append(f"{before.to_status} then {row.from_status}->{row.to_status} by {row.role}")
    if rows and rows[-1].to_status != booking.status:
        wrong.append(f"history ends at {rows[-1].to_status}, booking is {booking.status}")
    return [f"{booking.number}: {w}" for w in wrong]


def stuck_jobs(bookings: list[Booking], abandoned: set[str]) -> list[str]:
    """Jobs no one can finish that staff do not see: every job ends or is flagged (contract 9.3).

    A job held by a suspended partner (an offer, or a job not started) should have gone back
    to dispatch; a job whose partner's phone died should be flagged ``stale`` (or
    ``partner_suspended``), and so should a job in progress whose partner was suspended.
    """
    stuck = []
    for booking in bookings:
        flag = attention(booking)
        if booking.status in HELD_STATUSES and booking.status != S.IN_PROGRESS and booking.partner.is_suspended:
            stuck.append(f"{booking.number}: {booking.status} held by suspended partner {booking.partner_id}")
        elif str(booking.pk) in abandoned and booking.status in ACTIVE and flag is None:
            stuck.append(f"{booking.number}: {booking.status}, its partner silent, not flagged")
        elif booking.status == S.IN_PROGRESS and booking.partner.is_suspended and flag != "partner_suspended":
            stuck.append(f"{booking.number}: in progress with a suspended partner, not flagged")
    return stuck


def overlapping_offers(histories: dict) -> list[str]:
    """Partners who held two open offers at once: each offer runs from its row to the booking's next row."""
    offers = defaultdict(list)  # partner -> [(start, end, booking number)]
    for rows in histories.values():
        for row, after in zip(rows, [*rows[1:], None], strict=True):
            if row.to_status == S.PARTNER_ASSIGNED:
                end = after.created_at if after else None
                offers[row.partner_id].append((row.created_at, end, row.booking.number))
    clashes = []
    for partner, spans in offers.items():
        spans.sort(key=lambda span: span[0])
        for (_, end, first), (start, _, second) in itertools.pairwise(spans):
            if end is None or start < end:
                clashes.append(f"partner {partner}: {first} and {second}")
    return clashes


@pytest.mark.timeout(SOAK_SECONDS + 180)
def test_two_minutes_of_simulated_city_leave_every_booking_legal(cluster_env, service, settings):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the soak runs on PostgreSQL (set DATABASE_URL); .ci/run runs it")
    env = {
        **cluster_env,
        "OFFER_TIMEOUT_SECONDS": "3",
        "DISPATCH_RETRY_SECONDS": "2",
        "DISPATCH_SWEEP_INTERVAL": "0.5",
        "LOCATION_FLUSH_INTERVAL": "1",
        "JOB_STALE_MINUTES": str(STALE_MINUTES),
    }
    servers = [ServerProcess(env), ServerProcess(env)]
    try:
        a, b = (server.start() for server in servers)
        sim = subprocess.run(
            [sys.executable, "manage.py", "simulate", "--url", a.url, "--url", b.url, *SIMULATION],
            env={**os.environ, **env, "DATABASE_URL": database_url()},
            capture_output=True,
            text=True,
            timeout=SOAK_SECONDS + 120,
        )
        logs = a.output() + b.output()
    finally:
        for server in servers:
            server.stop()
    assert sim.returncode == 0, sim.stderr[-3000:]
    summary = sim.stdout.strip().splitlines()[-1]
    assert "clients failed: 0" in summary, sim.stdout[-2000:] + sim.stderr[-2000:]
    assert "Traceback" not in logs, logs[-4000:]

    settings.JOB_STALE_MINUTES = STALE_MINUTES  # as the servers judged it
    bookings = list(Booking.objects.filter(customer__username__startswith="sim-customer-").select_related("partner"))
    bad_day = next(line for line in sim.stdout.splitlines() if line.startswith("silent: "))
    abandoned = set(bad_day.split(";")[0].removeprefix("silent: ").split(",")) - {""}
    earned = set(Earning.objects.values_list("booking_id", flat=True))
    histories = defaultdict(list)
    for row in BookingStatusChange.objects.select_related("booking").order_by("created_at", "id"):
        histories[row.booking_id].append(row)

    assert [problem for b in bookings if (problem := illegal_state(b, earned))] == []
    assert [move for b in bookings for move in illegal_moves(b, histories[b.pk])] == []
    assert overlapping_offers(histories) == []
    assert stuck_jobs(bookings, abandoned) == []
    # The dashboard's running tallies, kept by two processes folding at once, match a full recount.
    assert Tally.objects.exists(), "the servers never folded"
    assert tallies.drift() == {}
    # and the soak exercised what it is for
    statuses = {b.status for b in bookings}
    assert len(bookings) >= 20 and S.COMPLETED in statuses and S.CANCELLED in statuses, summary
    notes = {row.note for rows in histories.values() for row in rows}
    assert {"offer_expired", "simulated"} <= notes, notes
    assert abandoned and "suspended: " in bad_day and not bad_day.endswith("suspended: "), bad_day


def test_the_soak_checks_can_fail():
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace as Row

    t = datetime(2026, 1, 1)
    booking = Row(number="BK1")
    offer = [Row(to_status=S.PARTNER_ASSIGNED, partner_id=7, created_at=t, booking=booking)]
    other = [Row(to_status=S.PARTNER_ASSIGNED, partner_id=7, created_at=t + timedelta(seconds=1), booking=booking)]
    assert overlapping_offers({1: offer, 2: other}) == ["partner 7: BK1 and BK1"]
    skipped = Row(number="BK2", status=S.COMPLETED)
    rows = [
        Row(from_status="", to_status=S.PENDING, role="customer"),
        Row(from_status=S.PENDING, to_status=S.COMPLETED, role="partner"),
    ]
    assert illegal_moves(skipped, rows) == ["BK2: PENDING then PENDING->COMPLETED by partner"]
    suspended = Row(is_suspended=True)
    held = Row(
        pk="a",
        number="BK3",
        status=S.PARTNER_EN_ROUTE,
        partner=suspended,
        partner_id=9,
        dispatch_state=DispatchState.DONE,
        updated_at=datetime.now(UTC),
    )
    assert stuck_jobs([held], set()) == ["BK3: PARTNER_EN_ROUTE held by suspended partner 9"]
    working = Row(is_suspended=False, last_location_at=datetime.now(UTC))
    silent = Row(
        pk="b",
        number="BK4",
        status=S.IN_PROGRESS,
        partner=working,
        updated_at=datetime.now(UTC),
        arrived_far_at=None,
        nearby_at=None,
    )
    assert stuck_jobs([silent], {"b"}) == ["BK4: IN_PROGRESS, its partner silent, not flagged"]
