"""The event document's two JavaScript examples, verbatim, with the official socket.io-client."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from bookings import services
from bookings.models import BookingStatus as S
from config import rooms
from config.realtime.server import sio
from tests.factories import BookingFactory, StaffFactory
from tests.live import eventually, require_node, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.node]
JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(autouse=True)
def _node_available():
    require_node()


def start(example: str, url: str, token: str, booking_id: str = "") -> subprocess.Popen:
    env = {**os.environ, "ACCESS_TOKEN": token, "BOOKING_ID": booking_id, "RUN_SECONDS": "20"}
    return subprocess.Popen(
        ["node", "run_example.mjs", example, url],
        cwd=JS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def observations(proc: subprocess.Popen) -> list[dict]:
    proc.terminate()
    out, _err = proc.communicate(timeout=10)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_document_examples_customer_tracking_and_partner_location(live_server_url, customer, partner, service):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED, service=service)
    customer_js = start("customer_tracking.mjs", live_server_url, token_for(customer), str(booking.pk))
    partner_js = None
    try:
        eventually(
            lambda: any(True for _ in sio.manager.get_participants(rooms.CUSTOMER, rooms.booking(booking.pk))),
            timeout=15,
            what="the customer example to track its booking",
        )
        partner_js = start("partner_location.mjs", live_server_url, token_for(partner.user))
        eventually(
            lambda: any(True for _ in sio.manager.get_participants(rooms.PARTNER, rooms.user(partner.pk))),
            timeout=15,
            what="the partner example to connect",
        )
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
        offer = BookingFactory(status=S.PENDING, service=service)
        services.booking_assign(booking_id=offer.pk, partner_id=partner.pk, actor=StaffFactory())
        time.sleep(1.5)
    finally:
        seen_customer = observations(customer_js)
        seen_partner = observations(partner_js) if partner_js else []

    maps = [o["value"] for o in seen_customer if o["kind"] == "updateMap"]
    assert maps, seen_customer
    assert set(maps[0]) == {"latitude", "longitude"} and maps[0]["longitude"] == 77.209
    assert ["Status:", "PARTNER_EN_ROUTE"] in [o["value"] for o in seen_customer if o["kind"] == "log"]
    offers = [o["value"] for o in seen_partner if o["kind"] == "showNotification"]
    assert offers and offers[0]["bookingId"] == str(offer.pk) and offers[0]["bookingNumber"] == offer.number
