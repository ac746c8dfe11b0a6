"""daphne and ``manage.py runserver`` serve the same application as uvicorn (README).

Each is started as an operator would start it, on a free port, with the suite's database and
Redis; real clients then connect on both transports, make a round trip through a booking's
room, and call the REST API. The log check reads each server's output as it reads uvicorn's.
"""

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from bookings.models import BookingStatus as S
from bookings.models import BookingStatusChange
from tests.factories import BookingFactory, PartnerFactory, book
from tests.live import Client, ServerProcess, eventually, free_port, run, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

MANAGE = str(Path(__file__).resolve().parents[2] / "manage.py")


def command(server: str, port: int) -> list[str]:
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    return [sys.executable, MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"]  # DEBUG: tests.settings


@pytest.mark.parametrize("server", ["daphne", "runserver"])
def test_daphne_and_runserver_serve_the_same_application(cluster_env, service, server):  # noqa: F811
    booking = BookingFactory(partner=PartnerFactory(services=[service]), status=S.PARTNER_EN_ROUTE, service=service)
    port = free_port()
    process = ServerProcess({**cluster_env, "DEBUG": "1"}, port=port, command=command(server, port)).start()

    async def scenario() -> None:
        customer = await Client(process.url, "/customer", transports=["polling"]).connect(token_for(booking.customer))
        partner = await Client(process.url, "/partner").connect(token_for(booking.partner.user))
        try:
            tracked = await customer.call("booking:track", str(booking.pk))
            assert tracked["ok"] and tracked["booking"]["id"] == str(booking.pk), tracked
            assert tracked["booking"]["status"] == "PARTNER_EN_ROUTE"
            moved = await partner.call("location:update", {"latitude": 12.5, "longitude": 77.5})
            assert moved["ok"], moved
            [update] = await customer.wait_for("partner:location_update")
            assert update["bookingId"] == str(booking.pk) and update["location"]["latitude"] == 12.5
        finally:
            await customer.close()
            await partner.close()

    try:
        run(scenario())
        request = urllib.request.Request(
            f"{process.url}/api/bookings/", headers={"Authorization": f"Bearer {token_for(booking.customer)}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
            assert answer.headers["Server"] == "daphne"  # runserver is daphne's: the ASGI application
        assert [b["id"] for b in body["results"]] == [str(booking.pk)] and body["count"] == 1
    finally:
        process.stop()


@pytest.mark.parametrize("server", ["daphne", "runserver"])
def test_with_no_lifespan_the_first_request_starts_the_periodic_work(cluster_env, customer, service, settings, server):  # noqa: F811
    """daphne speaks no ASGI lifespan (uvicorn's starts the periodic work at once): the first
    request of any kind starts it, so an offer lapses with no socket ever connected."""
    PartnerFactory(services=[service], last_latitude=28.611, last_longitude=77.2)
    settings.OFFER_TIMEOUT_SECONDS = 0.5
    booking = book(customer, service)
    assert booking.status == S.PARTNER_ASSIGNED
    port = free_port()
    env = {**cluster_env, "DEBUG": "1", "DISPATCH_SWEEP_INTERVAL": "0.1"}
    process = ServerProcess(env, port=port, command=command(server, port)).start()  # one GET /api/services/
    try:
        eventually(
            lambda: BookingStatusChange.objects.filter(booking=booking, note="offer_expired").exists(),
            timeout=10,
            what="the offer to lapse with no socket connected",
        )
    finally:
        process.stop()
