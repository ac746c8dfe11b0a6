"""Real races on PostgreSQL: row locks make exactly one of two racing moves win."""

import threading

import pytest
from django.db import connection, connections

from bookings import services
from bookings.models import Booking, BookingStatusChange
from bookings.models import BookingStatus as S
from config.errors import DomainError
from tests.factories import BookingFactory

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
