"""``GET /api/bookings/{id}/trace/`` (contract 10.3): who may read it, the accepted..ended window,
time order, and the bound on points."""

import uuid
from datetime import timedelta
from itertools import pairwise

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from bookings.models import BookingStatus as S
from config.formats import iso
from dashboard.traces import job_stretches, route, trace_data
from messaging.models import Message, SafetyAlert
from messaging.safety import safety_alert_raise
from partners.models import LocationFix
from tests.dashboard.trace_setup import job
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db


def trace_url(booking) -> str:
    return f"/api/bookings/{booking.pk}/trace/"


def test_staff_read_an_active_jobs_trace(api_as, staff, customer, partner, service):
    booking, when, inside = job(customer, partner, service, finish=False)
    r = api_as(staff).get(trace_url(booking))
    assert r.status_code == 200, r.json()
    body = r.json()
    jsonschema.Draft7Validator(trace_data.schema).validate(body)
    assert body["bookingId"] == str(booking.pk)
    # open end: every fix from acceptance on, none from before it
    assert [p["recordedAt"] for p in body["points"]] == [iso(f.recorded_at) for f in inside]
    assert body["points"][0] == {
        "latitude": inside[0].latitude,
        "longitude": inside[0].longitude,
        "recordedAt": iso(when[S.PARTNER_ACCEPTED]),
    }
    statuses = [e["to"] for e in body["events"] if e["kind"] == "status"]
    assert statuses == [S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS]


def test_the_customer_reads_it_only_once_the_job_has_ended(api_as, customer, partner, service, staff):
    booking, _, _ = job(customer, partner, service, finish=False)
    r = api_as(customer).get(trace_url(booking))
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN" and r.json()["message"]
    assert api_as(partner.user).get(trace_url(booking)).status_code == 403  # the partner too
    services.booking_complete(booking_id=booking.pk, actor=staff)
    for reader in (customer, partner.user):
        r = api_as(reader).get(trace_url(booking))
        assert r.status_code == 200 and r.json()["points"], reader


def test_someone_elses_booking_gets_the_not_yours_answer_and_unknown_is_404(
    api_as, customer, other_customer, partner, service
):
    booking, _, _ = job(customer, partner, service)
    not_yours = api_as(other_customer).get(trace_url(booking))
    # the same answer as the booking itself gives, whatever the booking's state: nothing more is said
    assert (
        not_yours.status_code == 403
        and not_yours.json() == api_as(other_customer).get(f"/api/bookings/{booking.pk}/").json()
    )
    other_partner = PartnerFactory(services=[service])
    assert api_as(other_partner.user).get(trace_url(booking)).json() == not_yours.json()
    unknown = api_as(customer).get(f"/api/bookings/{uuid.uuid4()}/trace/")
    assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"
    assert api_as(customer).get("/api/bookings/not-a-uuid/trace/").status_code == 404


def test_points_are_the_accepted_to_ended_window_in_time_order(api_as, customer, partner, service):
    booking, when, inside = job(customer, partner, service)
    body = api_as(customer).get(trace_url(booking)).json()
    times = [p["recordedAt"] for p in body["points"]]
    assert times == [iso(f.recorded_at) for f in inside]
    assert times[0] == iso(when[S.PARTNER_ACCEPTED]) and times[-1] == iso(when[S.COMPLETED])
    # the partner's fixes before acceptance and after the end exist, and are left out
    assert LocationFix.objects.filter(partner=partner, recorded_at__lt=when[S.PARTNER_ACCEPTED]).exists()
    assert LocationFix.objects.filter(partner=partner, recorded_at__gt=when[S.COMPLETED]).exists()
    # one point per stored fix of the window, no more
    assert len(times) == (when[S.COMPLETED] - when[S.PARTNER_ACCEPTED]) // timedelta(seconds=10) + 1


def test_events_are_in_time_order_with_status_and_messages(api_as, customer, partner, service, staff):
    booking, when, _ = job(customer, partner, service)
    events = api_as(customer).get(trace_url(booking)).json()["events"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)  # same-length spellings here
    kinds = [(e["kind"], e.get("to") or e.get("text")) for e in events]
    assert kinds == [
        ("status", S.PARTNER_ASSIGNED),
        ("status", S.PARTNER_ACCEPTED),
        ("message", "Gate code is 4321"),
        ("status", S.PARTNER_EN_ROUTE),
        ("message", "On my way, 10 minutes"),
        ("status", S.PARTNER_ARRIVED),
        ("status", S.IN_PROGRESS),
        ("status", S.COMPLETED),
    ]
    accepted = events[1]
    assert accepted == {
        "at": iso(when[S.PARTNER_ACCEPTED]),
        "kind": "status",
        "from": S.PARTNER_ASSIGNED,
        "to": S.PARTNER_ACCEPTED,
        "by": "partner",
        "note": "",
    }
    said = [e for e in events if e["kind"] == "message"]
    assert [(e["senderRole"], e["senderId"]) for e in said] == [
        ("customer", str(customer.pk)),
        ("partner", str(partner.pk)),
    ]


def test_a_time_with_microseconds_sorts_by_time_not_by_its_spelling(api_as, customer, partner, service, staff):
    booking, when, _ = job(customer, partner, service)
    message = Message.objects.filter(booking=booking).first()
    # 0.5 s after acceptance: "...:00.500000Z" is after "...:00Z" although it spells smaller
    Message.objects.filter(pk=message.pk).update(created_at=when[S.PARTNER_ACCEPTED] + timedelta(milliseconds=500))
    events = api_as(staff).get(trace_url(booking)).json()["events"]
    assert [e["kind"] for e in events[:3]] == ["status", "status", "message"]


def test_staffs_words_to_one_side_stay_out_of_the_others_trace(api_as, customer, partner, service, staff):
    booking, _, _ = job(customer, partner, service)
    Message.objects.create(sender=staff, recipient=customer, booking=booking, body="Refund approved")
    by_staff = [e for e in api_as(staff).get(trace_url(booking)).json()["events"] if e["kind"] == "message"]
    assert [e["senderRole"] for e in by_staff] == ["customer", "partner", "staff"]
    to_customer = [
        e["text"] for e in api_as(customer).get(trace_url(booking)).json()["events"] if e["kind"] == "message"
    ]
    to_partner = [
        e["text"] for e in api_as(partner.user).get(trace_url(booking)).json()["events"] if e["kind"] == "message"
    ]
    assert "Refund approved" in to_customer and "Refund approved" not in to_partner


def test_a_job_handed_to_another_partner_traces_each_partner_while_they_held_it(customer, service):
    first, second = PartnerFactory(services=[service]), PartnerFactory(services=[service])
    t0 = timezone.now() - timedelta(hours=1)
    at = [t0 + timedelta(minutes=m) for m in range(6)]
    moves = [(at[0], S.PARTNER_ACCEPTED, first.pk), (at[1], S.PENDING, first.pk)]
    moves += [(at[2], S.PARTNER_ASSIGNED, second.pk), (at[3], S.PARTNER_ACCEPTED, second.pk)]
    moves += [(at[4], S.COMPLETED, second.pk)]
    stretches = job_stretches(moves)
    assert stretches == [(first.pk, at[0], at[1]), (second.pk, at[3], at[4])]
    for partner in (first, second):
        LocationFix.objects.bulk_create(
            LocationFix(partner=partner, recorded_at=t, latitude=1, longitude=2) for t in at
        )
    assert [p["recordedAt"] for p in route(stretches)] == [iso(t) for t in (at[0], at[1], at[3], at[4])]


def test_a_long_job_is_thinned_evenly_to_the_bound_keeping_its_ends(partner):
    t0 = (timezone.now() - timedelta(hours=10)).replace(microsecond=0)
    fixes = [
        LocationFix(partner=partner, recorded_at=t0 + timedelta(seconds=10 * i), latitude=i, longitude=0)
        for i in range(3601)
    ]
    LocationFix.objects.bulk_create(fixes)
    with CaptureQueriesContext(connection) as queries:
        points = route([(partner.pk, t0, None)], limit=500)
    assert len(queries) == 1
    assert 450 <= len(points) <= 500
    assert points[0]["latitude"] == 0 and points[-1]["latitude"] == 3600
    # spelled as every time of the API is (``config.formats.iso``): no decimals when there are none
    assert points[0]["recordedAt"] == iso(t0) and "." not in points[0]["recordedAt"]
    steps = {b["latitude"] - a["latitude"] for a, b in pairwise(points[:-1])}
    assert len(steps) == 1  # evenly
    assert len(route([(partner.pk, t0, t0 + timedelta(seconds=100))], limit=500)) == 11  # under it: all


def test_the_trace_costs_five_queries_whatever_its_length(api_as, customer, partner, service, staff):
    booking, _, _ = job(customer, partner, service)
    from dashboard.traces import booking_trace

    with CaptureQueriesContext(connection) as queries:
        booking_trace(booking_id=booking.pk, user=staff)
    assert len(queries) == 5, [q["sql"] for q in queries]


def test_safety_alerts_are_on_the_timeline_for_staff_and_their_raiser(api_as, customer, partner, service, staff):
    booking, when, _ = job(customer, partner, service, finish=False)
    raised, _ = safety_alert_raise(
        user=partner.user, role="partner", booking_id=str(booking.pk), latitude=28.61, longitude=77.21, note="Dog"
    )
    at = when[S.PARTNER_ARRIVED] + timedelta(seconds=30)
    SafetyAlert.objects.filter(pk=raised.pk).update(raised_at=at)
    events = api_as(staff).get(trace_url(booking)).json()["events"]
    [alert] = [e for e in events if e["kind"] == "alert"]
    assert alert == {
        "at": iso(at),
        "kind": "alert",
        "id": str(raised.pk),
        "raisedBy": {"id": str(partner.pk), "role": "partner"},
        "location": {"latitude": 28.61, "longitude": 77.21},
        "note": "Dog",
        "acknowledgedAt": None,
    }
    assert [e["kind"] for e in events].index("alert") == 6  # after arriving, before work began
    services.booking_complete(booking_id=booking.pk, actor=staff)
    # the partner who raised it reads it; the customer it may be about does not
    assert [e["id"] for e in api_as(partner.user).get(trace_url(booking)).json()["events"] if e["kind"] == "alert"] == [
        str(raised.pk)
    ]
    assert all(e["kind"] != "alert" for e in api_as(customer).get(trace_url(booking)).json()["events"])


def test_arrivals_are_on_the_timeline(api_as, customer, partner, service, staff):
    """What the booking recorded of its partner's arrival: set far away first, then near the place."""
    booking, when, _ = job(customer, partner, service)
    far, near = when[S.PARTNER_ARRIVED], when[S.PARTNER_ARRIVED] + timedelta(seconds=40)
    Booking.objects.filter(pk=booking.pk).update(
        arrived_far_at=far, arrived_far_meters=1800, nearby_at=near, nearby_meters=120
    )
    events = api_as(customer).get(trace_url(booking)).json()["events"]
    arrivals = [(i, e) for i, e in enumerate(events) if e["kind"] == "arrival"]
    assert arrivals == [
        (6, {"at": iso(far), "kind": "arrival", "farMeters": 1800}),
        (7, {"at": iso(near), "kind": "arrival", "distanceMeters": 120}),
    ]
    assert events[5]["to"] == S.PARTNER_ARRIVED  # the move at the same instant comes first
    jsonschema.Draft7Validator(trace_data.schema).validate(api_as(staff).get(trace_url(booking)).json())
