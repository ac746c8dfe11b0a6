"""The booking clock's tick (``bookings.sweeper.sweep_once``): due bookings swept, the backlog gauged."""

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from bookings import services, sweeper
from bookings.models import Booking
from bookings.models import BookingStatus as S
from tests.factories import book

# The tick's calls run in their own context, on their own connection: they see committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sweeps(monkeypatch) -> list[int]:
    """The sweeps a tick runs (how many bookings each took), its database calls made on the loop's thread."""

    def here(fn):
        async def call(*args, **kwargs):
            return fn(*args, **kwargs)

        return call

    taken: list[int] = []
    monkeypatch.setattr(sweeper, "db", here)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    monkeypatch.setattr(sweeper, "dispatch_sweep", lambda: taken.append(services.dispatch_sweep()) or taken[-1])
    return taken


def backlog() -> float | None:
    return REGISTRY.get_sample_value("homeservices_dispatch_backlog")


def test_a_tick_with_nothing_due_sweeps_nothing_and_one_due_is_swept(customer, service, sweeps):
    booking = book(customer, service)  # nobody near: it waits, its retry due later
    asyncio.run(sweeper.sweep_once())
    assert sweeps == [] and backlog() == 0  # before: a sweep (two transactions) each tick
    Booking.objects.filter(pk=booking.pk).update(dispatch_due_at=timezone.now() - timedelta(seconds=1))
    asyncio.run(sweeper.sweep_once())
    booking.refresh_from_db()
    assert sweeps == [1] and backlog() == 0 and booking.status == S.PENDING
    assert booking.dispatch_due_at is None or booking.dispatch_due_at > timezone.now()
