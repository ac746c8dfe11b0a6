"""/customer and /partner over the real server: tracking, lifecycle events, refusals."""

import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async

from bookings.models import Booking
from bookings.models import BookingStatus as S
from partners.geo import distance_m
from partners.models import Partner
from tests.factories import BookingFactory, PartnerFactory, book
from tests.live import Client, eventually, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)

STATUS_FIELDS = {"bookingId", "bookingNumber", "status", "message", "updatedAt"}
BOOKING_FIELDS = {
    "id",
    "bookingNumber",
    "status",
    "service",
    "scheduledAt",
    "address",
    "location",
    "amount",
    "currency",
    "notes",
    "customer",
    "partner",
    "cancelReason",
    "cancelledBy",
    "createdAt",
    "updatedAt",
    "dispatch",
    "attention",
}


def test_customer_tracks_and_sees_the_whole_journey(live_server_url, customer, partner, service):
    booking = book(customer, service)
    assert booking.partner_id == partner.pk
    ctoken, ptoken = token_for(customer), token_for(partner.user)

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(ctoken)
        p = await Client(live_server_url, "/partner").connect(ptoken)
        ack = await c.call("booking:track", str(booking.pk))
        assert ack["ok"] is True and set(ack["booking"]) == BOOKING_FIELDS
        assert ack["booking"]["status"] == "PARTNER_ASSIGNED"

        ack = await p.call("booking:accept", str(booking.pk))
        assert ack["ok"] and ack["booking"]["status"] == "PARTNER_ACCEPTED"
        [status] = await c.wait_for("booking:status_updated")
        assert set(status) == STATUS_FIELDS and status["status"] == "PARTNER_ACCEPTED"
        assert status["message"] == "Partner has accepted your booking"
        [assigned] = await c.wait_for("partner:assigned")
        assert assigned["bookingId"] == str(booking.pk)
        assert assigned["partner"]["id"] == str(partner.pk) and assigned["partner"]["name"] == "Pat"
        away = distance_m(partner.last_latitude, partner.last_longitude, booking.latitude, booking.longitude)
        assert assigned["distanceMeters"] == round(away) and assigned["etaSeconds"] == round(away / (20 / 3.6))
        notes = await c.wait_for("notification:new")
        assert notes[0]["type"] == "booking_accepted"

        # location relay reaches the tracking customer only for this booking
        ack = await p.call("location:update", {"latitude": 28.6, "longitude": 77.21, "accuracy": 5})
        assert ack == {"ok": True, "relayed": 1}
        [loc] = await c.wait_for("partner:location_update")
        assert loc["bookingId"] == str(booking.pk)
        assert loc["location"] == {"latitude": 28.6, "longitude": 77.21}
        assert loc["timestamp"].endswith("Z")
        away = distance_m(28.6, 77.21, booking.latitude, booking.longitude)
        assert loc["distanceMeters"] == round(away) and loc["etaSeconds"] == round(away / (20 / 3.6))
        # a moving partner's ETA follows the speed they report (m/s)
        await p.call("location:update", {"latitude": 28.6, "longitude": 77.21, "speed": 10})
        [_, moving] = await c.wait_for("partner:location_update", count=2)
        assert moving["etaSeconds"] == round(away / 10)

        for s in ("PARTNER_EN_ROUTE", "PARTNER_ARRIVED", "IN_PROGRESS", "COMPLETED"):
            ack = await p.call("booking:status_update", {"bookingId": str(booking.pk), "status": s})
            assert ack["ok"], ack
        updates = await c.wait_for("booking:status_updated", count=5)
        assert [u["status"] for u in updates][1:] == ["PARTNER_EN_ROUTE", "PARTNER_ARRIVED", "IN_PROGRESS", "COMPLETED"]
        [earned] = await p.wait_for("earnings:updated")
        assert earned["amount"] == 799.2 and earned["currency"] == "INR"

        # completed: no more relays
        ack = await p.call("location:update", {"latitude": 28.6, "longitude": 77.21})
        assert ack == {"ok": True, "relayed": 0}

        ack = await c.call("booking:untrack", str(booking.pk))
        assert ack["ok"]
        await c.close()
        await p.close()

    run(scenario())
    # the buffered location is written within LOCATION_FLUSH_INTERVAL (or on disconnect)
    eventually(lambda: Partner.objects.get(pk=partner.pk).last_latitude == 28.6, what="location write")


def test_partner_gets_new_request_and_cancellation(live_server_url, customer, partner, service):
    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        booking = await sync_to_async(book)(customer, service)
        [offer] = await p.wait_for("booking:new_request")
        assert offer["bookingId"] == str(booking.pk) and offer["service"] == service.name
        assert offer["amount"] == 999.0 and offer["address"] == "1 Main St"
        assert offer["customer"] == {"id": str(customer.pk), "name": "Alice"}
        ack = await c.call("booking:cancel", {"bookingId": str(booking.pk), "reason": "Changed my mind"})
        assert ack["ok"] and ack["booking"]["status"] == "CANCELLED"
        assert ack["booking"]["cancelledBy"] == "customer"
        [cancelled] = await p.wait_for("booking:cancelled")
        assert cancelled["reason"] == "Changed my mind" and cancelled["cancelledBy"] == "customer"
        await p.close()
        await c.close()

    run(scenario())


def test_refusals_keep_the_socket_up(live_server_url, customer, other_customer, partner, service):
    mine = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED, service=service)
    other_partner = PartnerFactory(services=[service])
    theirs = BookingFactory(customer=other_customer, partner=other_partner, status=S.PARTNER_ACCEPTED)

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        ack = await c.call("booking:track", str(theirs.pk))
        assert ack == {"ok": False, "error": {"code": "FORBIDDEN", "message": "this is not your booking"}}
        await c.emit("booking:track", str(theirs.pk))  # without an ack: the error event is the one answer
        [err] = await c.wait_for("error")
        assert err["code"] == "FORBIDDEN" and err["event"] == "booking:track"
        ack = await c.call("booking:cancel", {"bookingId": str(theirs.pk), "reason": "x"})
        assert ack["error"]["code"] == "FORBIDDEN"
        ack = await p.call("booking:accept", str(theirs.pk))
        assert ack["error"]["code"] == "FORBIDDEN"
        ack = await p.call("booking:status_update", {"bookingId": str(mine.pk), "status": "COMPLETED"})
        assert ack["error"]["code"] == "INVALID_TRANSITION"
        ack = await p.call("booking:status_update", {"bookingId": str(mine.pk), "status": "FLYING"})
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        ack = await c.call("booking:accept", str(mine.pk))  # not a /customer event
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        ack = await p.call("booking:accept", "not-a-uuid")
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        assert c.sio.connected and p.sio.connected
        await c.close()
        await p.close()

    run(scenario())
    assert Booking.objects.get(pk=mine.pk).status == S.PARTNER_ASSIGNED


# Every event that names a booking, with the payload it takes around the id.
BOOKING_ID_EVENTS = {
    "/customer": [
        ("booking:track", lambda i: i),
        ("booking:track", lambda i: {"bookingId": i}),
        ("booking:untrack", lambda i: i),
        ("booking:cancel", lambda i: {"bookingId": i, "reason": "x"}),
        ("message:send", lambda i: {"recipientId": "1", "message": "hi", "bookingId": i}),
    ],
    "/partner": [
        ("booking:accept", lambda i: i),
        ("booking:accept", lambda i: {"bookingId": i}),
        ("booking:reject", lambda i: {"bookingId": i}),
        ("booking:status_update", lambda i: {"bookingId": i, "status": "PARTNER_EN_ROUTE"}),
    ],
}


def test_a_booking_id_has_one_answer_per_kind_of_wrong(live_server_url, customer, partner):
    """Malformed is VALIDATION_ERROR and unknown is NOT_FOUND, on every event that names a booking."""
    malformed = ["not-a-uuid", "", 42, None, True, "x" * 100, "123e4567-e89b-12d3-a456-42661417400Z"]
    unknown = str(uuid.uuid4())
    users = {"/customer": customer, "/partner": partner.user}

    async def scenario():
        for namespace, cases in BOOKING_ID_EVENTS.items():
            client = await Client(live_server_url, namespace).connect(token_for(users[namespace]))
            for event, payload in cases:
                for value in malformed:
                    if value is None and event == "message:send":
                        continue  # a message with no booking
                    ack = await client.call(event, payload(value))
                    assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR", (event, value, ack)
                ack = await client.call(event, payload(unknown))
                assert ack["ok"] is False and ack["error"]["code"] == "NOT_FOUND", (event, ack)
            await client.close()

    run(scenario())


def test_every_payload_is_checked_against_its_declared_schema(live_server_url, partner):
    """The catalogue's schema is enforced before any handler: the answer names the field and the
    rule it broke (the handler's own reading would say "out of range"); fields it does not
    name are ignored, so an app a version ahead keeps working."""

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        ack = await p.call("location:update", {"latitude": 95, "longitude": 0})
        assert ack["error"]["code"] == "VALIDATION_ERROR" and ack["error"]["details"] == {"latitude": ["maximum"]}
        ack = await p.call("booking:status_update", {"bookingId": str(uuid.uuid4()), "status": "PENDING"})
        assert ack["error"]["code"] == "VALIDATION_ERROR" and ack["error"]["details"] == {"status": ["enum"]}
        ack = await p.call("location:update", {"latitude": 28.6, "longitude": 77.2, "altitude": 210})
        assert ack == {"ok": True, "relayed": 0}
        await p.close()

    run(scenario())


BAD_PAYLOADS = [
    None,
    42,
    "text",
    [1, 2],
    {},
    {"bookingId": None},
    {"latitude": 91, "longitude": 0},
    {"latitude": "1", "longitude": 2},
    {"latitude": True, "longitude": 2},
    "x" * 500_000,  # large, yet under the 1 MB packet cap (a larger packet closes the transport)
]


@pytest.mark.parametrize(
    "event",
    [
        "booking:accept",
        "booking:reject",
        "booking:status_update",
        "location:update",
        "availability:update",
        "message:send",
        "message:mark_read",
        "typing:start",
    ],
)
def test_bad_input_gets_an_error_on_partner(live_server_url, partner, event):
    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        for payload in BAD_PAYLOADS:
            ack = await p.call(event, payload)
            assert ack["ok"] is False, (event, payload, ack)
            # 42 may be a user id: one you may not message is refused like a missing one (FORBIDDEN).
            assert ack["error"]["code"] in {"VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN"}, (event, payload, ack)
            assert "Traceback" not in ack["error"]["message"]
        assert p.sio.connected
        await p.close()

    run(scenario())
    partner.refresh_from_db()
    assert partner.last_latitude == 28.6139  # nothing written


@pytest.mark.parametrize("event", ["booking:track", "booking:untrack", "booking:cancel", "message:send"])
def test_bad_input_gets_an_error_on_customer(live_server_url, customer, event):
    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        for payload in BAD_PAYLOADS:
            ack = await c.call(event, payload)
            assert ack["ok"] is False and ack["error"]["code"] in {"VALIDATION_ERROR", "NOT_FOUND"}, (payload, ack)
        assert c.sio.connected
        await c.close()

    run(scenario())
