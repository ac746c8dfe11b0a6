"""Arrival (contract 10.3) on two real server processes over Redis: ``partner:nearby`` reaches a
customer on the other process once per booking, whatever the partner keeps sending and however
often it reconnects; PARTNER_ARRIVED is judged by the partner's freshest position, the one still
in the process's buffer. The services' side is in tests/bookings/test_arrival.py."""

from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async as sync_to_async

from bookings.models import Booking
from bookings.models import BookingStatus as S
from partners.geo import METERS_PER_DEGREE
from partners.models import Partner
from tests.config.test_metrics import scrape, value
from tests.factories import CITY, BookingFactory, PartnerFactory, StaffFactory
from tests.live import Client, ServerProcess, run, server_processes, socket_barrier, token_for, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

CLAIMS = "homeservices_nearby_claims_total"


@pytest.fixture(scope="module")
def servers(cluster_env) -> Iterator[tuple[ServerProcess, ServerProcess]]:  # noqa: F811 - the imported fixture
    # Buffered positions are written only when something asks (a stop, the arrival check):
    # what the arrival check reads can only be there because the handler wrote it first.
    env = {**cluster_env, "LOCATION_FLUSH_INTERVAL": "3600", "ARRIVAL_RADIUS_METERS": "150"}
    with server_processes(env) as (a, b):
        yield a, b


def north(meters: float) -> dict[str, float]:
    """A position ``meters`` due north of the city centre, where the factories put bookings."""
    return {"latitude": CITY[0] + meters / METERS_PER_DEGREE, "longitude": CITY[1]}


def claims(server: ServerProcess, outcome: str) -> float:
    return value(scrape(server.url), CLAIMS, outcome=outcome)


def test_partner_nearby_reaches_a_customer_on_another_process_once(servers, customer, partner, service):
    a, b = servers
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE, service=service)
    booking_id = str(booking.pk)
    before = {(server.url, outcome): claims(server, outcome) for server in (a, b) for outcome in ("sent", "taken")}

    def claimed(server: ServerProcess, outcome: str) -> float:
        return claims(server, outcome) - before[(server.url, outcome)]

    async def moves(p: Client, c: Client, meters: list[float]) -> None:
        for distance in meters:
            assert await p.call("location:update", north(distance)) == {"ok": True, "relayed": 1}
            await c.wait_for("partner:location_update", where=lambda u, d=round(distance): u["distanceMeters"] == d)

    async def scenario():
        c = await Client(a.url, "/customer").connect(token_for(customer))
        assert (await c.call("booking:track", booking_id))["ok"]
        p = await Client(b.url, "/partner").connect(token_for(partner.user))
        await moves(p, c, [400, 151])  # outside the radius
        await moves(p, c, [111])  # the first position within 150 m
        [nearby] = await c.wait_for("partner:nearby")
        assert nearby == {"bookingId": booking_id, "distanceMeters": 111, "etaSeconds": round(111 / (20 / 3.6))}
        assert "partner:nearby" in [event for event, _ in c.offsets]  # logged: a recovering customer gets it
        await moves(p, c, [80, 30, 0, 140])  # the partner keeps sending inside the radius
        await p.close()
        # Reconnects, to the other process and to the same one: each new session asks once and loses.
        for server in (a, b):
            again = await Client(server.url, "/partner").connect(token_for(partner.user))
            await moves(again, c, [20, 10])
            await wait_until(lambda s=server: claimed(s, "taken") == 1, what=f"{server.url}'s claim to be refused")
            await again.close()
        await socket_barrier(c)
        assert c.events["partner:nearby"] == [nearby]
        assert (claimed(a, "sent"), claimed(b, "sent")) == (0, 1)
        await c.close()

    run(scenario())
    booking.refresh_from_db()
    assert booking.nearby_meters == 111 and booking.nearby_at is not None  # what the job's trace shows


def test_arrived_is_judged_by_the_freshest_position_still_in_the_buffer(servers, customer, service):
    a, b = servers
    staff = StaffFactory()
    # One partner's row says "at the door" but the phone is 2 km away; the other's row is 2 km
    # away (hours old) but the phone is 300 m away.
    far = PartnerFactory(services=[service])
    near = PartnerFactory(services=[service], last_latitude=north(2000)["latitude"])
    far_job = BookingFactory(customer=customer, partner=far, status=S.PARTNER_EN_ROUTE, service=service)
    near_job = BookingFactory(partner=near, status=S.PARTNER_ACCEPTED, service=service)

    async def scenario():
        admin = await Client(a.url, "/admin").connect(token_for(staff))
        assert (await admin.call("monitor:bookings"))["ok"]
        answers = {}
        for partner, job, position in ((far, far_job, north(2000)), (near, near_job, north(300))):
            p = await Client(b.url, "/partner").connect(token_for(partner.user))
            assert (await p.call("location:update", position))["ok"]
            row = await sync_to_async(Partner.objects.get)(pk=partner.pk)
            assert (row.last_latitude, row.last_longitude) == (partner.last_latitude, partner.last_longitude)
            answers[job.pk] = await p.call(
                "booking:status_update", {"bookingId": str(job.pk), "status": "PARTNER_ARRIVED"}
            )
            await p.close()
        assert answers[far_job.pk]["booking"]["attention"] == "arrived_far"
        assert answers[near_job.pk]["ok"] and answers[near_job.pk]["booking"]["attention"] is None
        # Staff's live monitor on the other process sees the flag.
        [flagged] = await admin.wait_for(
            "booking:updated", where=lambda u: u["id"] == str(far_job.pk) and u["status"] == "PARTNER_ARRIVED"
        )
        assert flagged["attention"] == "arrived_far"
        await admin.close()

    run(scenario())
    far_job, near_job = Booking.objects.get(pk=far_job.pk), Booking.objects.get(pk=near_job.pk)
    assert far_job.arrived_far_meters == 2000 and far_job.arrived_far_at is not None
    assert (near_job.arrived_far_meters, near_job.arrived_far_at) == (None, None)
