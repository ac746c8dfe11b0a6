"""Safety alerts (contract 10.3) against a hostile raiser and a careless operator, in one process."""

import asyncio
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.models import BookingStatus as S
from messaging import safety
from messaging.models import SafetyAlert
from tests.factories import BookingFactory, UserFactory
from tests.live import Client, run, token_for, wait_until


@pytest.mark.django_db
def test_one_raiser_holds_a_few_open_alerts_however_many_bookings_they_name(partner, service, emitted):
    """A partner with many finished jobs names each in turn: a few open alerts (each its own escalation
    stream to every staff socket), and past them the presses fold into the newest open one."""
    bookings = [
        BookingFactory(customer=UserFactory(), partner=partner, status=S.COMPLETED, service=service) for _ in range(12)
    ]
    answers = [
        safety.safety_alert_raise(user=partner.user, role="partner", booking_id=str(b.pk))[0].pk for b in bookings
    ]
    answers.append(safety.safety_alert_raise(user=partner.user, role="partner")[0].pk)
    open_ones = SafetyAlert.objects.filter(raised_by=partner.user, acknowledged_at=None)
    assert open_ones.count() == safety.OPEN_PER_RAISER
    assert len(emitted.named("safety:alert")) == safety.OPEN_PER_RAISER
    newest = open_ones.order_by("-id").first().pk
    assert set(answers[safety.OPEN_PER_RAISER :]) == {newest}


def skewed(seconds: float):
    """This process's clock ``seconds`` off (another server's, whose clock drifted)."""
    real = timezone.now
    return mock.patch.object(safety.timezone, "now", lambda: real() + timedelta(seconds=seconds))


@pytest.mark.django_db
def test_a_process_whose_clock_runs_ahead_escalates_nothing_early(customer, emitted):
    with skewed(-120):  # raised on a process two minutes behind
        safety.safety_alert_raise(user=customer, role="customer")
    with skewed(+120):  # swept by a process two minutes ahead
        assert safety.escalate_due() == 0
    assert safety.escalate_due() == 0  # nor by an exact one: it is not due for SAFETY_ESCALATE_SECONDS
    assert [m["data"][0]["escalation"] for m in emitted.named("safety:alert")] == [0]


@pytest.mark.django_db
def test_a_thousand_due_alerts_are_swept_in_a_few_queries_per_batch(emitted, settings):
    raisers = UserFactory.create_batch(1000)
    now = timezone.now()
    SafetyAlert.objects.bulk_create(
        SafetyAlert(raised_by=u, role="customer", raised_at=now, next_escalation_at=now - timedelta(seconds=1))
        for u in raisers
    )
    with CaptureQueriesContext(connection) as queries:
        sent = safety.escalate_due()
    assert sent == safety.SWEEP_BATCH
    assert len(queries) <= 6, [q["sql"][:120] for q in queries]
    rounds = [safety.escalate_due() for _ in range(1000 // safety.SWEEP_BATCH)]  # the other nine, then none
    assert rounds == [safety.SWEEP_BATCH] * (1000 // safety.SWEEP_BATCH - 1) + [0]
    assert SafetyAlert.objects.filter(escalation=1).count() == 1000  # each once, none twice
    assert len(emitted.named("safety:alert")) == 1000


@pytest.mark.django_db
def test_an_alert_outlives_its_booking_and_its_raisers_deactivation(customer, service, emitted):
    booking = BookingFactory(customer=customer, status=S.PARTNER_EN_ROUTE, service=service)
    alert, _ = safety.safety_alert_raise(user=customer, role="customer", booking_id=str(booking.pk))
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    booking.delete()
    SafetyAlert.objects.filter(pk=alert.pk).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    assert safety.escalate_due() == 1  # a person whose account was closed may still be in danger
    again = emitted.named("safety:alert")[-1]["data"][0]
    assert again["alertId"] == str(alert.pk) and again["bookingId"] is None and again["escalation"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_script_flooding_alerts_loses_its_socket_though_a_panicking_thumb_does_not(live_server_url, customer):
    """``keeps_socket``: a person pressing SOS again and again keeps the line (30 presses at once, the
    test above); a script sending thousands, random clientAlertIds and oversized notes among them, does
    not get a socket that floods for ever: past ``KEPT_SOCKET_REFUSALS`` refusals in one window it is
    disconnected, as any other flood is at twice its limit. What it stored: one alert."""

    async def scenario():
        phone = await Client(live_server_url, "/customer").connect(token_for(customer))
        for i in range(60):  # a thumb, for a few seconds: kept
            await phone.emit("safety:alert", {"clientAlertId": f"thumb-{i}"})
        await asyncio.sleep(0.5)
        assert phone.sio.connected
        for i in range(3000):
            payload = {"clientAlertId": uuid.uuid4().hex, "note": "x" * (10 if i % 2 else 5000)}
            await phone.sio.emit("safety:alert", payload if i % 3 else {"a": [[[[[[{}]]]]]]}, namespace="/customer")
            if not phone.sio.connected:
                break
        await wait_until(lambda: not phone.sio.connected, what="the flooding socket disconnected", timeout=10)
        [*_, last] = phone.events["error"]
        assert last["code"] == "RATE_LIMITED"
        await phone.close()

    run(scenario())
    assert SafetyAlert.objects.filter(raised_by=customer).count() == 1


@pytest.mark.django_db
def test_someone_elses_client_alert_id_names_nothing_of_theirs(customer, other_customer, emitted):
    theirs, _ = safety.safety_alert_raise(user=other_customer, role="customer", client_alert_id="guessable-1")
    mine, created = safety.safety_alert_raise(user=customer, role="customer", client_alert_id="guessable-1")
    assert created and mine.pk != theirs.pk and mine.raised_by_id == customer.pk


@pytest.mark.django_db(transaction=True)
def test_an_alert_is_not_shed_when_the_server_sheds_load(live_server_url, customer, settings):
    """Past DB_QUEUE_MAX queued ORM calls other events are refused UNAVAILABLE at once; an SOS waits
    its turn for the database and is stored (it has its own limit, so a flood of them cannot pile up)."""
    settings.SOCKETIO = {**settings.SOCKETIO, "DB_QUEUE_MAX": 0}  # the server is always busy

    async def scenario():
        phone = await Client(live_server_url, "/customer").connect(token_for(customer))
        shed = await phone.call("booking:track", "00000000-0000-0000-0000-000000000000")
        assert shed["ok"] is False and shed["error"]["code"] == "UNAVAILABLE"
        ack = await phone.call("safety:alert", {"note": "busy server"})
        assert ack["ok"] is True, ack
        await phone.close()
        return ack["alertId"]

    alert_id = run(scenario())
    assert SafetyAlert.objects.get(raised_by=customer).pk == int(alert_id)
