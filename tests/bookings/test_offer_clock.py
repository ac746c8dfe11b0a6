"""The offer clock across real server processes: a deadline set before they started is honoured,
and with two processes sweeping, each lapse happens once and each partner hears of it once."""

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.utils import timezone

from bookings.models import Booking, BookingStatusChange
from bookings.models import BookingStatus as S
from tests.factories import BookingFactory, PartnerFactory
from tests.live import Client, run, server_processes, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_offers_lapse_once_across_two_processes_and_survive_a_restart(cluster_env, customer, service):  # noqa: F811
    first = PartnerFactory(services=[service], last_latitude=28.611, last_longitude=77.2)
    second = PartnerFactory(services=[service], last_latitude=28.63, last_longitude=77.2)
    # Offered while no server ran, its deadline already past: the processes started below find it in the database.
    booking = BookingFactory(customer=customer, service=service, partner=first, status=S.PARTNER_ASSIGNED)
    env = {**cluster_env, "OFFER_TIMEOUT_SECONDS": "1.5", "DISPATCH_SWEEP_INTERVAL": "0.1"}

    async def scenario(a, b):
        one = await Client(a.url, "/partner").connect(token_for(first.user))
        two = await Client(b.url, "/partner").connect(token_for(second.user))
        await sync_to_async(Booking.objects.filter(pk=booking.pk).update)(
            dispatch_state="offered", dispatch_attempts=1, dispatch_due_at=timezone.now() - timedelta(seconds=1)
        )
        [expired] = await one.wait_for("booking:offer_expired", timeout=10)
        [offer] = await two.wait_for("booking:new_request", timeout=10)
        assert expired["bookingId"] == offer["bookingId"] == str(booking.pk)
        await two.wait_for("booking:offer_expired", timeout=10)  # after OFFER_TIMEOUT_SECONDS
        await asyncio.sleep(1)  # time for a second sweeper to expire either offer again, were it able to
        assert len(one.events["booking:offer_expired"]) == 1 and len(two.events["booking:offer_expired"]) == 1
        await one.close()
        await two.close()

    with server_processes(env) as (a, b):
        run(scenario(a, b))
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", "role", "note"))
    assert history == [
        ("PENDING", "dispatch", "offer_expired"),
        ("PARTNER_ASSIGNED", "dispatch", ""),
        ("PENDING", "dispatch", "offer_expired"),
    ]
    booking.refresh_from_db()
    assert booking.status == S.PENDING and booking.dispatch_attempts == 2
