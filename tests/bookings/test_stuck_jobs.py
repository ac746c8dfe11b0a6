"""No job is stuck (contract 9.3): staff resolve every state; suspension handles jobs under way;
staff see what needs them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings import selectors, services
from bookings.models import Booking, BookingStatusChange
from bookings.models import BookingStatus as S
from bookings.shapes import booking_data
from config.errors import Forbidden, InvalidTransition, ValidationError
from messaging import services as messaging
from partners.accounts import user_deactivate
from partners.models import Earning
from partners.services import partner_suspend
from tests.conftest import events_named
from tests.factories import BookingFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def test_staff_complete_a_job_whose_partner_went_silent(customer, partner, staff, emitted):
    booking = BookingFactory(customer=customer, partner=partner, status=S.IN_PROGRESS)
    with pytest.raises(Forbidden):
        services.booking_complete(booking_id=booking.pk, actor=customer)
    done = services.booking_complete(booking_id=booking.pk, actor=staff)
    assert done.status == S.COMPLETED and done.completed_at is not None
    last = BookingStatusChange.objects.filter(booking=booking).latest("created_at")
    assert (last.to_status, last.role, last.actor_id) == ("COMPLETED", "staff", staff.pk)
    assert Earning.objects.get(booking=booking).partner_id == partner.pk  # the partner earns as usual
    assert events_named(emitted, "booking:status_updated")[-1]["data"][0]["status"] == "COMPLETED"  # the customer
    assert events_named(emitted, "earnings:updated")[0]["room"] == f"user:{partner.pk}"  # the partner
    arrived = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ARRIVED)
    assert services.booking_complete(booking_id=arrived.pk, actor=staff).status == S.COMPLETED
    accepted = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    with pytest.raises(InvalidTransition):  # nothing was done yet: cancel it instead
        services.booking_complete(booking_id=accepted.pk, actor=staff)


@pytest.mark.parametrize("status", [S.PARTNER_ARRIVED, S.IN_PROGRESS])
def test_staff_cancel_from_any_active_status_saying_why_and_customers_cannot(customer, partner, staff, status):
    booking = BookingFactory(customer=customer, partner=partner, status=status)
    with pytest.raises(InvalidTransition):
        services.booking_cancel(booking_id=booking.pk, actor=customer, reason="too late")
    with pytest.raises(ValidationError):
        services.booking_cancel(booking_id=booking.pk, actor=staff, reason=" ")
    cancelled = services.booking_cancel(booking_id=booking.pk, actor=staff, reason="partner unreachable")
    assert cancelled.status == S.CANCELLED and booking_data(cancelled)["cancelledBy"] == "staff"


def test_suspension_takes_back_unstarted_jobs_and_flags_the_one_in_progress(customer, service, staff, emitted):
    suspended = PartnerFactory(services=[service])
    other = PartnerFactory(services=[service], last_latitude=28.62, last_longitude=77.21)
    accepted = BookingFactory(customer=customer, partner=suspended, service=service, status=S.PARTNER_ACCEPTED)
    arrived = BookingFactory(partner=suspended, service=service, status=S.PARTNER_ARRIVED)
    working = BookingFactory(partner=suspended, service=service, status=S.IN_PROGRESS)
    partner_suspend(partner_id=suspended.pk, actor=staff)
    accepted.refresh_from_db(), arrived.refresh_from_db(), working.refresh_from_db()
    # Both dispatched again: one is offered to the other partner, the second waits (one offer each).
    outcomes = sorted((b.status, b.partner_id) for b in (accepted, arrived))
    assert outcomes == [(S.PARTNER_ASSIGNED, other.pk), (S.PENDING, None)]
    assert working.status == S.IN_PROGRESS and booking_data(working)["attention"] == "partner_suspended"
    withdrawn = [
        e["data"][0] for e in events_named(emitted, "booking:cancelled") if e["room"] == f"user:{suspended.pk}"
    ]
    assert {(w["bookingId"], w["cancelledBy"], w["reason"]) for w in withdrawn} == {
        (str(b.pk), "staff", "partner_suspended") for b in (accepted, arrived)
    }
    notes = [
        n["data"][0]["type"] for n in events_named(emitted, "notification:new") if n["room"] == f"user:{customer.pk}"
    ]
    assert "booking_reassigning" in notes
    waiting = next(b for b in (accepted, arrived) if b.status == S.PENDING)
    flagged = {b.pk: booking_data(b)["attention"] for b in selectors.bookings_needing_staff()}
    assert flagged == {working.pk: "partner_suspended", waiting.pk: "unassigned"}  # the dashboard's first rows
    with pytest.raises(Forbidden):  # the chat link went with the jobs
        messaging.message_send(sender=suspended.user, recipient_id=working.customer_id, body="hi")


def test_deactivating_a_partner_returns_their_unstarted_jobs(customer, partner, staff, emitted):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    user_deactivate(user_id=partner.pk, actor=staff)
    booking.refresh_from_db()
    assert booking.status == S.PENDING and booking.partner_id is None
    [withdrawn] = [e["data"][0] for e in events_named(emitted, "booking:cancelled")]
    assert (withdrawn["cancelledBy"], withdrawn["reason"]) == ("staff", "partner_suspended")  # contract 9.3


def test_a_job_with_no_sign_of_life_for_job_stale_minutes_is_flagged(customer, partner, settings):
    settings.JOB_STALE_MINUTES = 60
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    long_ago = timezone.now() - timedelta(minutes=61)
    Booking.objects.filter(pk=booking.pk).update(updated_at=long_ago)
    type(partner).objects.filter(pk=partner.pk).update(last_location_at=long_ago)
    booking = Booking.objects.select_related("partner").get(pk=booking.pk)
    assert booking_data(booking)["attention"] == "stale"
    assert booking in selectors.bookings_needing_staff()
    type(partner).objects.filter(pk=partner.pk).update(last_location_at=timezone.now())  # the phone is back
    booking = Booking.objects.select_related("partner").get(pk=booking.pk)
    assert booking_data(booking)["attention"] is None and booking not in selectors.bookings_needing_staff()


def test_staff_resolve_over_rest(api_as, staff, customer, partner):
    booking = BookingFactory(customer=customer, partner=partner, status=S.IN_PROGRESS)
    assert api_as(customer).post(f"/api/bookings/{booking.pk}/complete/", {}, format="json").status_code == 403
    r = api_as(staff).post(f"/api/bookings/{booking.pk}/complete/", {"note": "phone died"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    other = BookingFactory(customer=customer, partner=partner, status=S.IN_PROGRESS)
    refused = api_as(staff).post(f"/api/bookings/{other.pk}/cancel/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "VALIDATION_ERROR"
    r = api_as(staff).post(
        f"/api/partners/{partner.pk}/suspend/", {"suspended": True, "reason": "fraud"}, format="json"
    )
    assert r.status_code == 200 and r.json()["isSuspended"] is True
    assert (
        api_as(customer).post(f"/api/partners/{partner.pk}/suspend/", {"suspended": False}, format="json").status_code
        == 403
    )
    bad = api_as(staff).post(f"/api/partners/{partner.pk}/suspend/", {"suspended": "yes"}, format="json")
    assert bad.status_code == 400
    missing = api_as(staff).post("/api/partners/999999/suspend/", {"suspended": True}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
