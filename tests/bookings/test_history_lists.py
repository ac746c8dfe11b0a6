"""Staff lists that do not count the world: a cursor over every booking, indexed search, bounded admin counts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.models import Booking
from config import admin_lists
from tests.factories import BookingFactory, PartnerFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(customer):
    """25 bookings, a minute apart, newest last."""
    start = timezone.now() - timedelta(hours=1)
    bookings = [BookingFactory(customer=customer if i % 2 else UserFactory()) for i in range(25)]
    for i, booking in enumerate(bookings):
        Booking.objects.filter(pk=booking.pk).update(created_at=start + timedelta(minutes=i))
    return [str(b.pk) for b in reversed(bookings)]  # newest first


def pages(api, url: str) -> list[dict]:
    out = []
    while url:
        body = api.get(url).json()
        out.append(body)
        url = body["next"]
    return out


def test_staff_page_through_every_booking_by_cursor_newest_first_without_a_count(api_as, staff, history):
    api = api_as(staff)
    with CaptureQueriesContext(connection) as queries:
        first = api.get("/api/bookings/?pageSize=10").json()
    assert "count" not in first and first["previous"] is None and len(first["results"]) == 10
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # A booking made while staff page moves nothing between their pages.
    BookingFactory()
    listed = [b["id"] for page in pages(api, first["next"]) for b in page["results"]]
    assert [b["id"] for b in first["results"]] + listed == history


def test_own_lists_keep_numbered_pages_with_a_count(api_as, customer, history):
    body = api_as(customer).get("/api/bookings/?pageSize=5&page=2").json()
    assert body["count"] == 12 and len(body["results"]) == 5 and "page=3" in body["next"]


def test_a_cursor_the_list_did_not_give_is_a_validation_error(api_as, staff, history):
    r = api_as(staff).get("/api/bookings/?cursor=not-base64!")
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR" and "cursor" in r.json()["details"]


def test_search_finds_a_number_or_a_username_exactly(api_as, staff, customer, history):
    partner = PartnerFactory(user__username="pat-the-plumber")
    theirs = BookingFactory(partner=partner)
    number = Booking.objects.get(pk=history[3]).number
    api = api_as(staff)

    def found(term: str) -> set[str]:
        return {b["id"] for page in pages(api, f"/api/bookings/?search={term}") for b in page["results"]}

    assert found(number.lower()) == {history[3]}
    assert found("pat-the-plumber") == {str(theirs.pk)}
    assert found(customer.username) == {str(b.pk) for b in Booking.objects.filter(customer=customer)}
    assert found("pat") == set()  # not a substring scan
    # A customer's search stays inside their own bookings.
    assert api_as(UserFactory()).get(f"/api/bookings/?search={number}").json()["results"] == []


@pytest.fixture
def admin_client_(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    return client


def test_the_admin_finds_a_booking_by_number_or_username(admin_client_, customer, history):
    number = Booking.objects.get(pk=history[0]).number
    page = admin_client_.get(f"/admin/bookings/booking/?q={number}").content.decode()
    assert number in page and Booking.objects.get(pk=history[1]).number not in page
    page = admin_client_.get(f"/admin/bookings/booking/?q={customer.username}").content.decode()
    assert "12 bookings" in page


def test_admin_counts_are_exact_up_to_a_bound_then_estimated(admin_client_, history, monkeypatch):
    monkeypatch.setattr(admin_lists, "EXACT_UP_TO", 5)
    with CaptureQueriesContext(connection) as queries:
        counted = admin_lists.bounded_count(Booking.objects.all())
    if connection.vendor == "postgresql":  # the planner's guess for the rest: no full count
        assert counted >= 6 and any(q["sql"].startswith("EXPLAIN") for q in queries)
        # the only count reads at most EXACT_UP_TO + 1 rows: none without a LIMIT
        counts = [q["sql"].upper() for q in queries if "COUNT(" in q["sql"].upper()]
        assert counts and all("LIMIT 6" in sql for sql in counts), counts
    else:
        assert counted == 25
    assert admin_lists.bounded_count(Booking.objects.filter(pk=history[0])) == 1
    r = admin_client_.get("/admin/bookings/booking/")
    assert r.status_code == 200 and Booking.objects.get(pk=history[0]).number in r.content.decode()


def test_a_position_of_the_other_kind_is_refused_not_ignored(api_as, staff, customer, history):
    for user, query in ((staff, "page=2"), (customer, "cursor=abc")):
        r = api_as(user).get(f"/api/bookings/?{query}")
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", (user, r.json())


def test_page_size_is_at_most_100_and_a_larger_one_is_a_validation_error(api_as, customer, staff, service):
    """README: pages of ``pageSize`` (at most 100); past it, or not a whole number from 1, a 400."""
    for _ in range(120):
        BookingFactory(customer=customer, service=service)
    own = api_as(customer).get("/api/bookings/?pageSize=100").json()
    assert len(own["results"]) == 100 and own["count"] == 120 and "page=2" in own["next"]
    assert len(api_as(customer).get(own["next"]).json()["results"]) == 20
    everyone = api_as(staff).get("/api/bookings/?pageSize=100").json()
    assert len(everyone["results"]) == 100 and "cursor=" in everyone["next"] and "count" not in everyone
    for user in (customer, staff):  # numbered pages and the cursor alike
        for size in ("1000", "101", "0", "-1", "ten", "1e2"):
            r = api_as(user).get(f"/api/bookings/?pageSize={size}")
            assert r.status_code == 400, (size, r.json())
            assert r.json()["code"] == "VALIDATION_ERROR" and r.json()["details"] == {"pageSize": ["invalid"]}
    r = api_as(customer).get("/api/notifications/?pageSize=1000")  # the default pagination too
    assert r.status_code == 400 and r.json()["details"] == {"pageSize": ["invalid"]}
