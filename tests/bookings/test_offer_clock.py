"""The offer clock across real server processes: a deadline that passed while no server ran is
honoured by the processes started after it, and with two processes sweeping, each lapse happens
once and each partner hears of it once."""

import time

import pytest
from django.utils import timezone

from bookings.models import BookingStatus as S
from bookings.models import BookingStatusChange
from tests.factories import PartnerFactory, book
from tests.live import Client, run, server_processes, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def test_offers_lapse_once_across_two_processes_and_survive_a_restart(cluster_env, customer, service, settings):  # noqa: F811
    first = PartnerFactory(services=[service], last_latitude=28.611, last_longitude=77.2)
    second = PartnerFactory(services=[service], last_latitude=28.63, last_longitude=77.2)
    env = {**cluster_env, "OFFER_TIMEOUT_SECONDS": "1.5", "DISPATCH_SWEEP_INTERVAL": "0.1"}
    settings.OFFER_TIMEOUT_SECONDS = 4  # the first offer's clock, set here
    # The offer is made while two processes run; both stop before its deadline.
    with server_processes(env):
        booking = book(customer, service)
        assert booking.partner_id == first.pk and booking.status == S.PARTNER_ASSIGNED
    booking.refresh_from_db()
    assert booking.status == S.PARTNER_ASSIGNED, "lapsed before the restart: the test proves nothing"
    while timezone.now() < booking.dispatch_due_at:  # the deadline passes while no server runs
        time.sleep(0.1)

    async def scenario(a, b):
        one = await Client(a.url, "/partner").connect(token_for(first.user))
        two = await Client(b.url, "/partner").connect(token_for(second.user))
        [expired] = await one.wait_for("booking:offer_expired", timeout=10)
        [offer] = await two.wait_for("booking:new_request", timeout=10)
        assert expired["bookingId"] == offer["bookingId"] == str(booking.pk)
        await two.wait_for("booking:offer_expired", timeout=10)  # after OFFER_TIMEOUT_SECONDS
        await one.close()
        await two.close()
        return one, two

    # New processes find the deadline in the database; their first sweep comes after the
    # partners have connected (a sweep interval after start), so both hear what happens.
    with server_processes({**env, "DISPATCH_SWEEP_INTERVAL": "3"}) as (a, b):
        one, two = run(scenario(a, b))
    # The servers have stopped: any second lapse would be in the history (and in the events) by now.
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", "role", "note"))
    assert history == [
        ("PENDING", "customer", ""),
        ("PARTNER_ASSIGNED", "dispatch", ""),
        ("PENDING", "dispatch", "offer_expired"),
        ("PARTNER_ASSIGNED", "dispatch", ""),
        ("PENDING", "dispatch", "offer_expired"),
    ]
    assert len(one.events["booking:offer_expired"]) == 1 and len(two.events["booking:offer_expired"]) == 1
    booking.refresh_from_db()
    assert booking.status == S.PENDING and booking.dispatch_attempts == 2
