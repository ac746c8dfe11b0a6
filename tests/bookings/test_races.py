"""Real races on PostgreSQL: row locks make exactly one of two racing moves win."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from bookings import services
from bookings.models import Booking, BookingRejection, BookingStatusChange
from bookings.models import BookingStatus as S
from config.errors import DomainError
from tests.factories import BookingFactory, PartnerFactory, UserFactory, book

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row-lock races need PostgreSQL (set DATABASE_URL); .ci/run runs them")


def race(*moves):
    """Start every move at the same instant in its own thread and connection."""
    barrier = threading.Barrier(len(moves))
    outcomes: list = [None] * len(moves)

    def runner(i, move):
        try:
            barrier.wait(timeout=10)
            outcomes[i] = move()
        except DomainError as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(i, m)) for i, m in enumerate(moves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("attempt", range(5))
def test_two_devices_accepting_one_wins(partner, attempt):
    booking = BookingFactory(partner=partner, status=S.PARTNER_ASSIGNED)
    outcomes = race(
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
    )
    wins = [o for o in outcomes if isinstance(o, Booking)]
    losses = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(wins) == 1 and len(losses) == 1 and losses[0].code == "INVALID_TRANSITION"
    assert BookingStatusChange.objects.filter(booking=booking, to_status=S.PARTNER_ACCEPTED).count() == 1


@pytest.mark.parametrize("attempt", range(5))
def test_accept_versus_cancel_leaves_one_consistent_result(customer, partner, attempt):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)
    outcomes = race(
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
        lambda: services.booking_cancel(booking_id=booking.pk, actor=customer, reason="race"),
    )
    booking.refresh_from_db()
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", flat=True))
    # Whichever runs first, cancel succeeds (PARTNER_ACCEPTED is cancellable); accept
    # succeeds only if it took the row lock first, and the history says which.
    assert not isinstance(outcomes[1], DomainError), outcomes
    assert booking.status == S.CANCELLED
    if isinstance(outcomes[0], DomainError):
        assert outcomes[0].code == "INVALID_TRANSITION" and history == ["CANCELLED"]
    else:
        assert history == ["PARTNER_ACCEPTED", "CANCELLED"]


@pytest.mark.parametrize("attempt", range(3))
def test_accept_versus_reject(partner, attempt):
    booking = BookingFactory(partner=partner, status=S.PARTNER_ASSIGNED)
    outcomes = race(
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
        lambda: services.booking_reject(booking_id=booking.pk, partner_user=partner.user, reason="no"),
    )
    errors = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(errors) == 1 and errors[0].code in {"INVALID_TRANSITION", "FORBIDDEN"}
    booking.refresh_from_db()
    assert booking.status in {S.PARTNER_ACCEPTED, S.PENDING}


def lapsed_offer(customer, service, partner):
    """A booking offered to ``partner`` whose deadline has passed (the sweeper's next catch)."""
    booking = BookingFactory(customer=customer, service=service, partner=partner, status=S.PARTNER_ASSIGNED)
    Booking.objects.filter(pk=booking.pk).update(
        dispatch_state="offered", dispatch_attempts=1, dispatch_due_at=timezone.now() - timedelta(seconds=1)
    )
    return booking


@pytest.mark.parametrize("attempt", range(5))
def test_a_late_accept_versus_the_expiry_leaves_one_state(customer, service, partner, attempt):
    PartnerFactory(services=[service])  # the next partner, should the offer lapse
    booking = lapsed_offer(customer, service, partner)
    accepted, swept = race(
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
        services.dispatch_sweep,
    )
    booking.refresh_from_db()
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", "note"))
    if isinstance(accepted, DomainError):  # the sweeper took the lock first
        assert accepted.code == "INVALID_TRANSITION" and swept == 1
        assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id != partner.pk
        assert history == [("PENDING", "offer_expired"), ("PARTNER_ASSIGNED", "")]
    else:  # the accept did: nothing was due any more
        assert swept == 0 and booking.status == S.PARTNER_ACCEPTED and booking.partner_id == partner.pk
        assert history == [("PARTNER_ACCEPTED", "")]


@pytest.mark.parametrize("attempt", range(3))
def test_sweepers_on_every_process_expire_an_offer_once(customer, service, partner, attempt):
    booking = lapsed_offer(customer, service, partner)
    outcomes = race(*[services.dispatch_sweep] * 4)
    assert sorted(outcomes) == [0, 0, 0, 1]
    assert BookingStatusChange.objects.filter(booking=booking, note="offer_expired").count() == 1
    assert BookingRejection.objects.filter(booking=booking, partner=partner).count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_dispatches_never_pick_the_same_partner(service, attempt):
    partners = PartnerFactory.create_batch(2, services=[service])
    customers = UserFactory.create_batch(6)
    outcomes = race(*[lambda c=c: book(c, service) for c in customers])
    assert all(isinstance(o, Booking) for o in outcomes), outcomes
    offered = Booking.objects.filter(status=S.PARTNER_ASSIGNED)
    assert sorted(offered.values_list("partner_id", flat=True)) == sorted(p.pk for p in partners)
    assert Booking.objects.filter(status=S.PENDING, dispatch_state="unassigned").count() == 4


def test_dispatch_offers_the_nearest_partner_whose_row_another_transaction_holds(customer, service):
    """The location flush and the heartbeat update partner rows all the time: dispatch neither skips nor waits."""
    nearest = PartnerFactory(services=[service], last_latitude=28.62, last_longitude=77.21)
    PartnerFactory(services=[service], last_latitude=28.70, last_longitude=77.30)  # farther
    held, release = threading.Event(), threading.Event()

    def flush_in_progress():  # what partner_locations_store does, left open
        with connections["default"].cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("UPDATE partners_partner SET last_location_at = now() WHERE user_id = %s", [nearest.pk])
            held.set()
            release.wait(10)
            cursor.execute("COMMIT")
        connections.close_all()

    flusher = threading.Thread(target=flush_in_progress)
    flusher.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        booking = book(customer, service)
        took = time.monotonic() - started
    finally:
        release.set()
        flusher.join(10)
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == nearest.pk
    assert took < 2  # it did not wait for the flush to commit either


@pytest.mark.parametrize("attempt", range(3))
def test_two_bookings_at_once_for_one_partner_make_one_offer_and_the_other_follows(service, attempt):
    partner = PartnerFactory(services=[service])
    first, second = UserFactory.create_batch(2)
    outcomes = race(lambda: book(first, service), lambda: book(second, service))
    assert all(isinstance(o, Booking) for o in outcomes), outcomes  # never a 500
    offered = Booking.objects.filter(status=S.PARTNER_ASSIGNED)
    assert list(offered.values_list("partner_id", flat=True)) == [partner.pk]
    waiting = Booking.objects.get(status=S.PENDING)
    services.booking_reject(booking_id=offered.get().pk, partner_user=partner.user, reason="busy")  # free again
    services.dispatch_sweep()
    waiting.refresh_from_db()
    assert waiting.status == S.PARTNER_ASSIGNED and waiting.partner_id == partner.pk


@pytest.mark.parametrize("attempt", range(3))
def test_suspension_racing_an_accept_leaves_no_job_with_a_suspended_partner(customer, partner, staff, attempt):
    from partners.services import partner_suspend

    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)
    accepted, suspended = race(
        lambda: services.booking_accept(booking_id=booking.pk, partner_user=partner.user),
        lambda: partner_suspend(partner_id=partner.pk, actor=staff),
    )
    booking.refresh_from_db()
    assert not isinstance(suspended, DomainError), suspended
    assert isinstance(accepted, Booking) or accepted.code == "FORBIDDEN"  # after the suspension: refused
    assert booking.partner_id != partner.pk  # whichever came first, the job left the suspended partner
    assert booking.status in (S.PENDING, S.PARTNER_ASSIGNED)


def test_under_location_flushes_and_heartbeats_every_booking_gets_its_nearest_partner_first(service):
    """1,000 partners' positions and presence written over and over (each write a transaction holding
    every partner's row a while), while 100 bookings are created one after another, each next to its
    own partner: each is offered to that partner at its first dispatch."""
    from partners.location_store import partner_locations_store
    from partners.services import partners_online

    pairs = []
    for i in range(100):
        lat, lng = 28.4 + (i // 10) * 0.05, 77.0 + (i % 10) * 0.05  # 100 spots ~5 km apart
        pairs.append((PartnerFactory(services=[service], last_latitude=lat, last_longitude=lng), lat, lng))
    crowd = [p.pk for p in PartnerFactory.create_batch(900, services=[], last_latitude=28.0, last_longitude=76.0)]
    everyone = [p.pk for p, _, _ in pairs] + crowd
    stop = threading.Event()
    writes = [0]

    def traffic():  # the flush and the heartbeat, as every server process runs them, back to back
        try:
            while not stop.is_set():
                now = timezone.now()
                positions = {p.pk: (lat, lng, now) for p, lat, lng in pairs}
                positions.update({pk: (28.0, 76.0, now) for pk in crowd})
                partner_locations_store(positions)
                partners_online(partner_ids=everyone)
                writes[0] += 1
        finally:
            connections.close_all()

    writer = threading.Thread(target=traffic)
    writer.start()
    try:
        customers = UserFactory.create_batch(100)
        made = []
        for (partner, lat, lng), customer in zip(pairs, customers, strict=True):
            made.append(
                (
                    services.booking_create(
                        customer=customer,
                        service=service,
                        scheduled_at=timezone.now() + timedelta(hours=1),
                        address="next door",
                        latitude=lat + 0.001,
                        longitude=lng,
                    ),
                    partner,
                )
            )
    finally:
        stop.set()
        writer.join(30)
    assert writes[0] >= 3  # the rows really were being written meanwhile
    wrong = [
        (b.number, b.status, b.partner_id, p.pk)
        for b, p in made
        if (b.status, b.partner_id) != (S.PARTNER_ASSIGNED, p.pk)
    ]
    assert not wrong, wrong
    assert all(b.dispatch_attempts == 1 for b, _ in made)  # the first dispatch, not a retry


def test_a_cancel_that_waited_for_an_offer_sees_the_offers_partner(customer, service):
    """PostgreSQL re-reads a row it waited to lock but keeps what it had joined: the booking came back
    offered to a partner, with no partner (found by the soak as a 500 on booking:cancel)."""
    partner = PartnerFactory(services=[service])
    booking = BookingFactory(customer=customer, service=service, status=S.PENDING, partner=None)
    locked, offered = threading.Event(), threading.Event()

    def offer_slowly():
        try:
            with transaction.atomic():
                Booking.objects.select_for_update().get(pk=booking.pk)
                locked.set()
                time.sleep(0.5)  # the cancel below is waiting for this lock now
                Booking.objects.filter(pk=booking.pk).update(status=S.PARTNER_ASSIGNED, partner=partner)
            offered.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=offer_slowly)
    thread.start()
    assert locked.wait(5)
    cancelled = services.booking_cancel(booking_id=booking.pk, actor=customer, reason="changed my mind")
    thread.join(10)
    assert offered.is_set() and cancelled.status == S.CANCELLED
    last = BookingStatusChange.objects.filter(booking=booking).latest("created_at")
    assert (last.from_status, last.to_status, last.partner_id) == (S.PARTNER_ASSIGNED, S.CANCELLED, partner.pk)
