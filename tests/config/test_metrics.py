"""/metrics: what operators alert on, and who may read it."""

import asyncio
import re
import urllib.request

import pytest

from bookings.models import BookingStatus
from tests.factories import BookingFactory
from tests.live import UNKNOWN_BOOKING, Client, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
GAUGE = "homeservices_sockets_connected"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample of ``name`` whose labels include ``labels`` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_events_outcomes_and_sockets(live_server_url, customer):
    before = scrape(live_server_url)
    counted = {"namespace": "/customer", "event": "booking:track", "outcome": "NOT_FOUND"}

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        assert (await c.call("booking:track", UNKNOWN_BOOKING))["error"]["code"] == "NOT_FOUND"
        assert (await c.call("no:such:event", {}))["error"]["code"] == "VALIDATION_ERROR"
        await asyncio.sleep(1.3)  # gauges are sampled once a second
        text = scrape(live_server_url)
        await c.close()
        return text

    after = run(scenario())
    assert (
        value(after, "homeservices_client_events_total", **counted)
        == value(before, "homeservices_client_events_total", **counted) + 1
    )
    # a client-chosen event name never becomes a label value
    assert value(after, "homeservices_client_events_total", event="unknown", outcome="VALIDATION_ERROR") >= 1
    assert 'event="no:such:event"' not in after
    assert value(after, "homeservices_sockets_connected", namespace="/customer") >= 1
    assert value(after, "homeservices_handler_seconds_count", namespace="/customer", event="booking:track") >= 1
    for name in (
        "homeservices_orm_queue_depth",
        "homeservices_publish_queue_depth",
        "homeservices_broker_inbox_bytes",
        "homeservices_gc_collections_total",
        "homeservices_http_requests_total",
        "homeservices_server_events_total",
    ):
        assert name in after, name


def test_the_sockets_gauge_falls_to_zero_when_a_namespaces_last_socket_goes(live_server_url, partner):
    """python-socketio forgets a namespace's rooms with its last socket: the gauge still reads 0 then,
    not the last count it had (a storm of refused connects read as connected for good)."""

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        await wait_until(lambda: value(scrape(live_server_url), GAUGE, namespace="/partner") == 1, what="1 socket")
        await p.close()
        await wait_until(lambda: value(scrape(live_server_url), GAUGE, namespace="/partner") == 0, what="0 sockets")

    run(scenario())


def test_every_location_update_and_relay_is_counted_and_one_in_16_timed(live_server_url, customer, partner, service):
    """A lightweight event's histogram is sampled (``LIGHTWEIGHT_TIMED_ONE_IN``); its count stays exact,
    and each relay to a booking's room is a ``partner:location_update`` server event."""
    BookingFactory(customer=customer, partner=partner, status=BookingStatus.PARTNER_EN_ROUTE, service=service)
    counted = {"namespace": "/partner", "event": "location:update"}
    before = scrape(live_server_url)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        for i in range(20):
            ack = await p.call("location:update", {"latitude": 12.9, "longitude": 77.6 + i / 1000})
            assert ack == {"ok": True, "relayed": 1}
        await p.close()

    run(scenario())
    after = scrape(live_server_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("homeservices_client_events_total", **counted, outcome="ok") == 20
    assert delta("homeservices_server_events_total", event="partner:location_update") == 20
    # 20 events, one in 16 timed: where the count stood decides which
    assert delta("homeservices_handler_seconds_count", **counted) in (1, 2)


def test_metrics_are_not_public(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_metrics_read_the_address_config_proxies_decided_not_a_header(client, settings):
    """Behind a proxy the ASGI middleware (config/proxies.py) sets REMOTE_ADDR; the view reads
    no forwarding header itself (tests/config/test_proxies.py runs the real thing)."""
    settings.TRUSTED_PROXIES = ["0.0.0.0/0"]
    outside = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert outside.status_code == 403
