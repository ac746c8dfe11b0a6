"""``GET /api/bookings/{id}/trace/`` read by the people around a job that changed hands, and by
accounts that should read nothing: who sees whose route, words and alerts."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bookings.models import BookingStatus as S
from bookings.models import BookingStatusChange, DispatchState
from config.formats import iso
from messaging.models import Message, SafetyAlert
from partners.models import LocationFix
from tests.factories import BookingFactory, PartnerFactory
from tests.live import token_for

pytestmark = pytest.mark.django_db


def handed_over(customer, service):
    """A job the first partner accepted, staff sent back to dispatch, and the second partner
    accepted and completed; both partners' fixes every minute around it (the first one's also
    after they left it: their next job's route). Returns (booking, first, second, {name: when})."""
    first, second = PartnerFactory(services=[service]), PartnerFactory(services=[service])
    booking = BookingFactory(
        customer=customer, service=service, partner=second, status=S.COMPLETED, dispatch_state=DispatchState.DONE
    )
    t0 = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    names = ["assigned", "accepted", "back", "again", "took", "done"]
    at = {name: t0 + timedelta(minutes=10 * i) for i, name in enumerate(names)}
    moves = [
        ("assigned", S.PENDING, S.PARTNER_ASSIGNED, "dispatch", first),
        ("accepted", S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, "partner", first),
        ("back", S.PARTNER_ACCEPTED, S.PENDING, "staff", first),
        ("again", S.PENDING, S.PARTNER_ASSIGNED, "dispatch", second),
        ("took", S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, "partner", second),
        ("done", S.PARTNER_ACCEPTED, S.COMPLETED, "staff", second),
    ]
    for name, from_status, to_status, role, partner in moves:
        change = BookingStatusChange.objects.create(
            booking=booking, from_status=from_status, to_status=to_status, role=role, partner=partner
        )
        BookingStatusChange.objects.filter(pk=change.pk).update(created_at=at[name])
    for partner in (first, second):
        LocationFix.objects.bulk_create(
            LocationFix(partner=partner, recorded_at=t0 + timedelta(minutes=m), latitude=partner.pk % 80, longitude=m)
            for m in range(0, 61)
        )
    return booking, first, second, at


def minutes(start, end):
    return [iso(start + timedelta(minutes=m)) for m in range(int((end - start).total_seconds() // 60) + 1)]


def trace(client, booking):
    return client.get(f"/api/bookings/{booking.pk}/trace/")


def test_the_partner_who_finished_a_handed_over_job_reads_only_their_own_route(api_as, customer, service, staff):
    booking, first, second, at = handed_over(customer, service)
    whole = minutes(at["accepted"], at["back"]) + minutes(at["took"], at["done"])
    for reader in (staff, customer):  # staff, and the customer who watched both partners come
        body = trace(api_as(reader), booking).json()
        assert [p["recordedAt"] for p in body["points"]] == whole, reader
    # the second partner: where they drove, not where the first partner was before them
    body = trace(api_as(second.user), booking).json()
    assert [p["recordedAt"] for p in body["points"]] == minutes(at["took"], at["done"])
    assert {p["latitude"] for p in body["points"]} == {second.pk % 80}
    # the first partner no longer holds the booking: the answer every booking endpoint gives them
    not_theirs = trace(api_as(first.user), booking)
    assert not_theirs.status_code == 403
    assert not_theirs.json() == api_as(first.user).get(f"/api/bookings/{booking.pk}/").json()


def test_words_and_alerts_stay_with_the_people_they_were_between(api_as, customer, service, staff):
    booking, first, second, at = handed_over(customer, service)
    Message.objects.create(sender=customer, recipient=first.user, booking=booking, body="to the first one")
    Message.objects.create(sender=customer, recipient=second.user, booking=booking, body="to the second one")
    SafetyAlert.objects.create(
        raised_by=customer, role="customer", booking=booking, note="<b>he</b> was rude", raised_at=at["took"]
    )
    said = trace(api_as(second.user), booking).json()["events"]
    assert [e["text"] for e in said if e["kind"] == "message"] == ["to the second one"]
    assert not [e for e in said if e["kind"] == "alert"]  # the customer's SOS about them
    assert all(e["note"] == "" for e in said if e["kind"] == "status")
    mine = trace(api_as(customer), booking).json()["events"]
    assert [e["text"] for e in mine if e["kind"] == "message"] == ["to the first one", "to the second one"]
    assert [e["note"] for e in mine if e["kind"] == "alert"] == ["<b>he</b> was rude"]  # as typed: the page escapes


def test_a_deactivated_account_with_a_live_token_and_anonymous_read_nothing(customer, service):
    booking, _, _, _ = handed_over(customer, service)
    token = token_for(customer)
    customer.is_active = False
    customer.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert trace(client, booking).status_code == 401
    assert trace(APIClient(), booking).status_code == 401
    assert APIClient().get("/api/bookings/" + "9" * 5000 + "/trace/").status_code == 404


def test_an_operator_who_turns_the_messages_off_still_shows_staff_the_sos(api_as, customer, service, staff, settings):
    booking, _, second, at = handed_over(customer, service)
    Message.objects.create(sender=customer, recipient=second.user, booking=booking, body="hello")
    SafetyAlert.objects.create(raised_by=customer, role="customer", booking=booking, raised_at=at["took"])
    settings.TRACE_MAX_MESSAGES = 0  # no chat in traces: the safety alerts are not chat
    events = trace(api_as(staff), booking).json()["events"]
    assert [e["kind"] for e in events if e["kind"] in ("message", "alert")] == ["alert"]


@pytest.mark.parametrize(("value", "read"), [("-1", 0), ("0", 0), ("7", 7)])
def test_a_negative_trace_max_messages_reads_as_none_not_a_server_error(value, read):
    script = "import config.settings as s; print(s.TRACE_MAX_MESSAGES)"
    env = {**os.environ, "TRACE_MAX_MESSAGES": value}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split()[-1] == str(read)
