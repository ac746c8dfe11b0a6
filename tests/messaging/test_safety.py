"""Safety alerts (contract 10.3) in one process: the rules, REST, and the sockets of /customer and /admin."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.models import BookingStatus as S
from config.errors import Conflict, Forbidden, NotFound, ValidationError
from messaging import safety, selectors
from messaging.models import SafetyAlert
from tests.factories import BookingFactory, StaffFactory, UserFactory
from tests.live import Client, run, socket_barrier, token_for, wait_until


def raise_alert(user, **fields):
    return safety.safety_alert_raise(user=user, role=fields.pop("role", "customer"), **fields)


@pytest.mark.django_db
def test_an_alert_is_stored_once_per_client_alert_id_and_told_to_staff_once(customer, emitted):
    alert, created = raise_alert(customer, latitude=28.6, longitude=77.2, note="help", client_alert_id="sos-1")
    again, created_again = raise_alert(customer, latitude=28.6, longitude=77.2, note="help", client_alert_id="sos-1")
    assert created and not created_again and again.pk == alert.pk
    assert SafetyAlert.objects.count() == 1
    [told] = emitted.named("safety:alert")
    assert told["namespace"] == "/admin" and told["room"] == "admins"
    assert told["data"][0] == {
        "alertId": str(alert.pk),
        "bookingId": None,
        "raisedBy": {"id": str(customer.pk), "name": "Alice", "role": "customer"},
        "location": {"latitude": 28.6, "longitude": 77.2},
        "at": told["data"][0]["at"],
        "escalation": 0,
        "note": "help",
    }
    # Acknowledged, the same clientAlertId still names the same alert, and tells nobody.
    safety.safety_alert_acknowledge(staff=StaffFactory(), alert_id=alert.pk)
    assert raise_alert(customer, client_alert_id="sos-1")[0].pk == alert.pk
    assert len(emitted.named("safety:alert")) == 1


@pytest.mark.django_db
def test_an_alert_while_one_is_open_is_folded_into_it(customer, partner, service, emitted):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE, service=service)
    first, _ = raise_alert(customer, booking_id=str(booking.pk))
    folded, created = raise_alert(customer, booking_id=str(booking.pk), client_alert_id="other-press")
    assert folded.pk == first.pk and not created
    # About no booking, or by the partner of the same booking: alerts of their own.
    apart, created = raise_alert(customer)
    assert created and apart.pk != first.pk
    partners, created = raise_alert(partner.user, role="partner", booking_id=str(booking.pk))
    assert created and partners.role == "partner"
    assert [m["data"][0]["alertId"] for m in emitted.named("safety:alert")] == [
        str(first.pk),
        str(apart.pk),
        str(partners.pk),
    ]
    # Once staff took the first, a new press is a new alert.
    safety.safety_alert_acknowledge(staff=StaffFactory(), alert_id=first.pk)
    assert raise_alert(customer, booking_id=str(booking.pk))[0].pk != first.pk


@pytest.mark.django_db
def test_a_booking_must_be_the_raisers_and_a_location_whole(customer, other_customer, service, emitted):
    theirs = BookingFactory(customer=other_customer, service=service)
    with pytest.raises(NotFound):
        raise_alert(customer, booking_id=str(theirs.pk))
    with pytest.raises(ValidationError):
        raise_alert(customer, booking_id="not-a-uuid")
    with pytest.raises(ValidationError):
        raise_alert(customer, latitude=28.6)
    with pytest.raises(ValidationError):
        raise_alert(customer, latitude=91, longitude=0)
    with pytest.raises(Forbidden):
        raise_alert(customer, role="admin")
    assert not SafetyAlert.objects.exists() and not emitted.named("safety:alert")


@pytest.mark.django_db
def test_staff_acknowledge_once_and_the_raiser_hears_it(customer, staff, emitted):
    alert, _ = raise_alert(customer)
    with pytest.raises(Forbidden):
        safety.safety_alert_acknowledge(staff=customer, alert_id=alert.pk)
    with pytest.raises(NotFound):
        safety.safety_alert_acknowledge(staff=staff, alert_id=alert.pk + 1000)
    safety.safety_alert_acknowledge(staff=staff, alert_id=str(alert.pk))
    told = emitted.named("safety:acknowledged")
    assert {(m["namespace"], m["room"]) for m in told} == {
        ("/admin", "admins"),
        ("/customer", f"user:{customer.pk}"),
        ("/partner", f"user:{customer.pk}"),
    }
    payload = told[0]["data"][0]
    assert payload["alertId"] == str(alert.pk) and payload["by"] == {
        "id": str(staff.pk),
        "name": staff.get_full_name() or staff.username,
    }
    with pytest.raises(Conflict) as twice:
        safety.safety_alert_acknowledge(staff=StaffFactory(), alert_id=alert.pk)
    assert twice.value.details["by"]["id"] == str(staff.pk)  # who took it
    assert len(emitted.named("safety:acknowledged")) == 3  # nothing sent twice


@pytest.mark.django_db
def test_a_sweep_with_nothing_due_is_one_read_and_a_due_alert_is_still_sent(customer, staff, emitted):
    """The safety clock runs every second on every process: with nothing due it reads the due
    index once, and opens no transaction, takes no lock and writes nothing."""
    waiting, _ = raise_alert(customer)  # open, its deadline SAFETY_ESCALATE_SECONDS away
    taken, _ = raise_alert(UserFactory(first_name="Bob"))
    SafetyAlert.objects.filter(pk=taken.pk).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    safety.safety_alert_acknowledge(staff=staff, alert_id=taken.pk)  # its deadline cleared: never due
    with CaptureQueriesContext(connection) as idle:
        assert safety.escalate_due() == 0
    [read] = [query["sql"] for query in idle.captured_queries]
    assert read.startswith("SELECT") and "FOR UPDATE" not in read  # no SAVEPOINT, no lock, no UPDATE
    SafetyAlert.objects.filter(pk=waiting.pk).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    with CaptureQueriesContext(connection) as due:
        assert safety.escalate_due() == 1
    statements = [query["sql"].split()[0] for query in due.captured_queries]
    assert statements.count("UPDATE") == 1 and any("FOR UPDATE" in q["sql"] for q in due.captured_queries)
    [escalated] = [m["data"][0] for m in emitted.named("safety:alert") if m["data"][0]["escalation"] == 1]
    assert escalated["alertId"] == str(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.escalation == 1 and waiting.next_escalation_at > timezone.now()


@pytest.mark.django_db
def test_escalation_is_claimed_once_per_number_and_stops_at_the_acknowledgement(customer, staff, emitted):
    alert, _ = raise_alert(customer)
    assert safety.escalate_due() == 0  # not due yet
    SafetyAlert.objects.filter(pk=alert.pk).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    assert safety.escalate_due() == 1
    assert safety.escalate_due() == 0  # claimed: the next one is SAFETY_ESCALATE_SECONDS away
    assert [m["data"][0]["escalation"] for m in emitted.named("safety:alert")] == [0, 1]
    SafetyAlert.objects.filter(pk=alert.pk).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    safety.safety_alert_acknowledge(staff=staff, alert_id=alert.pk)
    assert safety.escalate_due() == 0
    alert.refresh_from_db()
    assert alert.escalation == 1 and alert.next_escalation_at is None


@pytest.mark.django_db
def test_rest_lists_open_alerts_and_acknowledges_for_staff_only(api_as, customer, staff):
    first, _ = raise_alert(customer, note="first")
    second, _ = raise_alert(UserFactory(first_name="Bea"))
    assert api_as(customer).get("/api/safety/").status_code == 403
    assert api_as(customer).post(f"/api/safety/{first.pk}/acknowledge/").status_code == 403
    listed = api_as(staff).get("/api/safety/").json()
    assert [a["alertId"] for a in listed] == [str(first.pk), str(second.pk)]  # oldest first
    assert listed[0]["note"] == "first" and listed[0]["raisedBy"]["role"] == "customer"
    answer = api_as(staff).post(f"/api/safety/{first.pk}/acknowledge/")
    assert answer.status_code == 200 and answer.json()["by"]["id"] == str(staff.pk)
    twice = api_as(staff).post(f"/api/safety/{first.pk}/acknowledge/")
    assert twice.status_code == 409 and twice.json()["code"] == "CONFLICT"
    assert api_as(staff).post("/api/safety/999999/acknowledge/").json()["code"] == "NOT_FOUND"
    assert [a["alertId"] for a in api_as(staff).get("/api/safety/").json()] == [str(second.pk)]


def test_the_open_list_holds_the_newest_alerts_when_there_are_too_many(api_as, staff, monkeypatch):
    """A flood of open alerts (throwaway accounts) never hides the newest call for help from a desk
    that connects later: past the bound the oldest are left out, not the newest."""
    monkeypatch.setattr(selectors, "OPEN_ALERTS_MAX", 3)
    raised = [raise_alert(UserFactory())[0] for _ in range(5)]
    listed = [a["alertId"] for a in api_as(staff).get("/api/safety/").json()]
    assert listed == [str(alert.pk) for alert in raised[-3:]]  # the newest three, oldest first


@pytest.mark.django_db(transaction=True)
def test_an_alert_over_sockets_reaches_staff_and_the_acknowledgement_the_raiser(live_server_url, customer, staff):
    async def scenario():
        desk = await Client(live_server_url, "/admin").connect(token_for(staff))
        phone = await Client(live_server_url, "/customer").connect(token_for(customer))
        ack = await phone.call("safety:alert", {"latitude": 28.61, "longitude": 77.2, "clientAlertId": "p-1"})
        assert ack["ok"] and ack["alertId"]
        [alert] = await desk.wait_for("safety:alert")
        assert alert["alertId"] == ack["alertId"] and alert["escalation"] == 0
        assert alert["raisedBy"] == {"id": str(customer.pk), "name": "Alice", "role": "customer"}
        assert (await phone.call("safety:alert", None))["alertId"] == ack["alertId"]  # folded: an empty press
        taken = await desk.call("safety:acknowledge", {"alertId": ack["alertId"]})
        assert taken["ok"] and taken["alertId"] == ack["alertId"] and taken["by"]["id"] == str(staff.pk)
        [heard] = await phone.wait_for("safety:acknowledged")
        assert heard == {k: taken[k] for k in ("alertId", "by", "at")}
        await desk.wait_for("safety:acknowledged")
        again = await desk.call("safety:acknowledge", {"alertId": ack["alertId"]})
        assert again["ok"] is False and again["error"]["code"] == "CONFLICT"
        refused = await phone.call("safety:acknowledge", {"alertId": ack["alertId"]})  # not a /customer event
        assert refused["ok"] is False and refused["error"]["code"] == "VALIDATION_ERROR"
        assert len(desk.events["safety:alert"]) == 1
        for client in (desk, phone):
            await client.close()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_alerts_stores_and_delivers_the_first_and_keeps_the_socket(live_server_url, customer, staff):
    """RATE_LIMITS["safety:alert"] is 3 per 10 s: of 30 presses at once, the first is stored and told to
    staff, those within the limit fold into it, the rest are refused RATE_LIMITED (then no longer
    answered); the socket, which any other event would have lost at twice its limit, stays up."""

    async def scenario():
        desk = await Client(live_server_url, "/admin").connect(token_for(staff))
        phone = await Client(live_server_url, "/customer").connect(token_for(customer))
        first = await phone.call("safety:alert", {"note": "press 0"})
        assert first["ok"] is True
        answers: dict[int, object] = {}
        for i in range(1, 30):  # then a loop, without waiting for answers (a refused press past a few gets none)
            await phone.sio.emit(
                "safety:alert",
                {"note": f"press {i}"},
                namespace="/customer",
                callback=lambda *args, i=i: answers.__setitem__(i, args[0] if args else None),
            )
        await wait_until(lambda: len(answers) >= 5, what="answers")
        await socket_barrier(phone)  # events are handled in order: every answer that was coming has come
        replies = [a for a in answers.values() if a]
        admitted = [a for a in replies if a["ok"]]
        assert {a["alertId"] for a in admitted} <= {first["alertId"]}
        limited = [a for a in replies if not a["ok"]]
        assert limited and {a["error"]["code"] for a in limited} == {"RATE_LIMITED"}
        assert len(replies) < 29  # past a few refusals, none are answered
        assert phone.sio.connected  # and answered the barrier
        [alert] = await desk.wait_for("safety:alert")
        assert alert["alertId"] == first["alertId"] and alert["note"] == "press 0"
        assert len(desk.events["safety:alert"]) == 1
        for client in (desk, phone):
            await client.close()
        assert phone.connect_error is None

    run(scenario())
    assert SafetyAlert.objects.count() == 1
