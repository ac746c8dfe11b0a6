"""REST: partner sign-up, KYC, earnings; dashboard stats; notifications."""

import time

import pytest

from bookings.models import BookingStatus as S
from bookings.services import booking_update_status
from messaging.models import Notification
from partners.models import KycStatus, Partner
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


def test_partner_register_then_kyc(api, service, emitted):
    r = api.post(
        "/api/partners/register/",
        {"username": "sam", "password": "s3cret-pass", "name": "Sam", "phone": "+91-2", "services": [service.pk]},
        format="json",
    )
    assert r.status_code == 201 and r.json()["services"] == [str(service.pk)]
    assert emitted.named("partner:registered")[0]["data"][0]["name"] == "Sam"
    partner = Partner.objects.get(name="Sam")
    api.force_authenticate(partner.user)
    r = api.post("/api/partners/me/kyc/", {"documentType": "PAN", "documentNumber": "ABCDE1234F"}, format="json")
    assert r.status_code == 201 and r.json()["status"] == "PENDING"
    assert emitted.named("kyc:submitted")[0]["room"] == "admins"
    again = api.post("/api/partners/me/kyc/", {"documentType": "PAN", "documentNumber": "X"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"
    bad = api.post("/api/partners/me/kyc/", {"documentType": "SELFIE", "documentNumber": "X"}, format="json")
    assert bad.status_code == 400 and "documentType" in bad.json()["details"]
    partner.refresh_from_db()
    assert partner.kyc_status == KycStatus.PENDING


def test_kyc_is_for_partners_only(api_as, customer):
    r = api_as(customer).post("/api/partners/me/kyc/", {"documentType": "PAN", "documentNumber": "X"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"


def test_earnings_endpoint(api_as, partner):
    booking = BookingFactory(partner=partner, status=S.IN_PROGRESS)
    booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.COMPLETED)
    body = api_as(partner.user).get("/api/partners/me/earnings/").json()
    assert body["count"] == 1 and body["results"][0]["amount"] == 799.2
    assert body["todayEarnings"] == 799.2 and body["totalEarnings"] == 799.2


def test_dashboard_stats_is_staff_only(api_as, staff, customer):
    assert api_as(customer).get("/api/dashboard/stats/").status_code == 403
    body = api_as(staff).get("/api/dashboard/stats/").json()
    assert set(body) == {"bookings", "revenue", "partners", "customers", "generatedAt"}


def test_notifications_list_and_read(api_as, customer):
    n = Notification.objects.create(user=customer, type="t", title="Hello")
    Notification.objects.create(user=customer, type="t", title="Second")
    api = api_as(customer)
    body = api.get("/api/notifications/").json()
    assert body["count"] == 2 and body["unreadCount"] == 2
    r = api.post(f"/api/notifications/{n.pk}/read/")
    assert r.status_code == 200 and r.json()["readAt"]
    assert api.get("/api/notifications/", {"unread": "1"}).json()["count"] == 1
    assert api.post("/api/notifications/read-all/").json() == {"marked": 1}


def test_a_sign_up_with_a_huge_services_list_is_refused_at_once_in_one_query(
    api, service, django_assert_max_num_queries
):
    body = {"username": "flood", "password": "s3cret-pass", "name": "F", "phone": "1", "services": list(range(100_000))}
    started = time.perf_counter()
    with django_assert_max_num_queries(0):
        r = api.post("/api/partners/register/", body, format="json")
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR" and "services" in r.json()["details"]
    assert time.perf_counter() - started < 1.0
    at_most = {**body, "username": "many", "services": [service.pk] * 3 + list(range(10**6, 10**6 + 40))}
    with django_assert_max_num_queries(1):  # the list at its maximum is read in one query
        r = api.post("/api/partners/register/", at_most, format="json")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert not Partner.objects.filter(name="F").exists()
