"""REST: auth, bookings, permissions per role and the contract's error body."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.models import BookingStatus as S
from tests.factories import BookingFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def future(hours: int = 3) -> str:
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def test_register_login_refresh(api):
    r = api.post(
        "/api/auth/register/",
        {"username": "neo", "password": "s3cret-pass", "email": "n@x.io", "name": "Neo Anderson", "phone": "+91-1"},
        format="json",
    )
    assert r.status_code == 201
    assert r.json() == {
        "id": r.json()["id"],
        "username": "neo",
        "name": "Neo Anderson",
        "email": "n@x.io",
        "phone": "+91-1",
    }
    dup = api.post("/api/auth/register/", {"username": "neo", "password": "s3cret-pass", "name": "x"}, format="json")
    assert dup.status_code == 409 and dup.json()["code"] == "CONFLICT" and "username" in dup.json()["details"]
    tokens = api.post("/api/auth/token/", {"username": "neo", "password": "s3cret-pass"}, format="json").json()
    assert {"access", "refresh"} <= set(tokens)
    fresh = api.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert fresh.status_code == 200 and "access" in fresh.json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api.get("/api/bookings/").status_code == 200


def test_errors_have_the_contract_shape(api):
    r = api.get("/api/bookings/")
    assert r.status_code == 401 and r.json()["code"] == "AUTH_REQUIRED" and r.json()["message"]
    api.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    r = api.get("/api/bookings/")
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"


def test_customer_creates_lists_and_reads_own_bookings(api_as, customer, service, partner):
    api = api_as(customer)
    r = api.post(
        "/api/bookings/",
        {
            "serviceId": service.pk,
            "scheduledAt": future(),
            "address": "1 Main St",
            "latitude": 28.6,
            "longitude": 77.2,
            "notes": "ring twice",
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "PARTNER_ASSIGNED" and body["partner"]["id"] == str(partner.pk)
    assert body["service"] == {"id": str(service.pk), "name": service.name}
    assert body["amount"] == 999.0 and body["currency"] == "INR" and body["notes"] == "ring twice"
    assert body["location"] == {"latitude": 28.6, "longitude": 77.2}
    assert body["customer"] == {"id": str(customer.pk), "name": "Alice"}
    listed = api.get("/api/bookings/").json()
    assert listed["count"] == 1 and listed["results"][0] == api.get(f"/api/bookings/{body['id']}/").json()


@pytest.mark.parametrize(
    "payload,field",
    [
        ({"latitude": 91}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"scheduledAt": "tomorrow"}, "scheduledAt"),
        ({"address": ""}, "address"),
    ],
)
def test_create_validation(api_as, customer, service, payload, field):
    data = {"serviceId": service.pk, "scheduledAt": future(), "address": "x", "latitude": 1, "longitude": 1, **payload}
    r = api_as(customer).post("/api/bookings/", data, format="json")
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR" and field in r.json()["details"]
    assert Booking.objects.count() == 0


def test_an_unknown_service_is_not_found(api_as, customer):
    data = {"serviceId": 9999, "scheduledAt": future(), "address": "x", "latitude": 1, "longitude": 1}
    r = api_as(customer).post("/api/bookings/", data, format="json")
    assert r.status_code == 404 and r.json() == {"code": "NOT_FOUND", "message": "no such service"}
    assert Booking.objects.count() == 0


def test_customer_cannot_read_or_cancel_anothers_booking(api_as, customer, other_customer):
    booking = BookingFactory(customer=other_customer)
    api = api_as(customer)
    assert api.get(f"/api/bookings/{booking.pk}/").json()["code"] == "FORBIDDEN"
    r = api.post(f"/api/bookings/{booking.pk}/cancel/", {"reason": "x"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert api.get("/api/bookings/not-a-uuid/").status_code == 404
    assert api.get("/api/bookings/").json()["count"] == 0


def test_cancel_and_invalid_transition_is_409(api_as, customer, partner):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    api = api_as(customer)
    r = api.post(f"/api/bookings/{booking.pk}/cancel/", {"reason": "late"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED" and r.json()["cancelReason"] == "late"
    r = api.post(f"/api/bookings/{booking.pk}/cancel/", {}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "INVALID_TRANSITION"


def test_partner_sees_assigned_booking_but_cannot_assign(api_as, partner, customer):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)
    api = api_as(partner.user)
    assert api.get(f"/api/bookings/{booking.pk}/").status_code == 200
    r = api.post(f"/api/bookings/{booking.pk}/assign/", {"partnerId": partner.pk}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"


def test_staff_assigns_and_sees_everything(api_as, staff, customer):
    booking = BookingFactory(customer=customer, status=S.PENDING)
    target = PartnerFactory()
    api = api_as(staff)
    r = api.post(f"/api/bookings/{booking.pk}/assign/", {"partnerId": target.pk}, format="json")
    assert r.status_code == 200 and r.json()["partner"]["id"] == str(target.pk)
    assert [b["id"] for b in api.get("/api/bookings/").json()["results"]] == [str(booking.pk)]
    r = api.post(f"/api/bookings/{booking.pk}/assign/", {"partnerId": "x"}, format="json")
    assert r.json()["code"] == "VALIDATION_ERROR"


def test_services_list_is_public(api, service):
    r = api.get("/api/services/").json()
    assert r["results"][0] == {
        "id": str(service.pk),
        "name": service.name,
        "description": "",
        "price": 999.0,
        "currency": "INR",
        "durationMinutes": 60,
    }


def test_schema_and_docs(api):
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200
