"""``manage.py seed_demo``: demo data that follows the product's own rules."""

import io
import itertools
import math
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from bookings import tallies
from bookings.models import HELD_STATUSES, OPEN_STATUSES, Booking, BookingStatus, Service
from bookings.services import insert_with_number
from config.formats import iso

pytestmark = pytest.mark.django_db


def test_demo_logins_are_refused_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed_demo", quiet=True, stdout=io.StringIO())
    assert not get_user_model().objects.filter(username="admin").exists()
    call_command("seed_demo", bookings=2, quiet=True, allow_demo_logins=True, stdout=io.StringIO())
    assert get_user_model().objects.get(username="admin").check_password("admin12345")


def test_seeded_bookings_follow_the_dispatch_rules(settings):
    settings.DEBUG = True
    for _ in range(2):  # idempotent: the second run tops up and breaks nothing
        call_command("seed_demo", bookings=60, quiet=True, stdout=io.StringIO())
    offers = Booking.objects.filter(status=BookingStatus.PARTNER_ASSIGNED)
    assert offers.exists() and all(b.dispatch_state == "offered" and b.dispatch_due_at for b in offers)
    assert max(Counter(offers.values_list("partner_id", flat=True)).values()) == 1  # one open offer each
    held = Booking.objects.filter(status__in=HELD_STATUSES)
    assert held.exists() and max(Counter(held.values_list("partner_id", flat=True)).values()) == 1  # one job each
    pending = Booking.objects.filter(status=BookingStatus.PENDING)
    assert all(b.dispatch_state == "unassigned" for b in pending)
    assert Booking.objects.filter(status=BookingStatus.COMPLETED, dispatch_state="done").exists()


@pytest.mark.parametrize("bookings", [16, 60])
def test_every_demo_customer_can_book_at_once(settings, api_as, bookings):
    """The README's logins work as printed: each demo customer, seeded, books one more."""
    settings.DEBUG = True
    settings.OPEN_BOOKINGS_MAX = 3  # the product's default (the suite's settings lift it)
    for _ in range(2):  # a second run tops up and still leaves room
        call_command("seed_demo", bookings=bookings, quiet=True, stdout=io.StringIO())
    customers = get_user_model().objects.filter(username__startswith="customer").order_by("pk")
    assert customers.count() == 5
    service = Service.objects.order_by("pk").first()
    for customer in customers:
        response = api_as(customer).post(
            "/api/bookings/",
            {
                "serviceId": service.pk,
                "scheduledAt": (timezone.now() + timedelta(days=1)).isoformat(),
                "address": "1 Demo Street",
                "latitude": 28.6,
                "longitude": 77.2,
            },
            format="json",
        )
        assert response.status_code == 201, (customer.username, response.json())
    # the seeded variety is still there: open bookings of several kinds, for several customers
    seeded = Booking.objects.filter(notes="demo booking", status__in=OPEN_STATUSES)
    assert len(set(seeded.values_list("status", flat=True))) >= 3
    assert len(set(seeded.values_list("customer_id", flat=True))) >= 3


def test_a_finished_job_with_its_trace_is_seeded_once(settings, api_as):
    """A newcomer opens the admin and sees a route: one completed job, its fixes from acceptance to
    completion along the streets, its status changes, messages and arrival."""
    from messaging.demo import TRACE_NOTE

    settings.DEBUG = True
    out = io.StringIO()
    for _ in range(2):  # idempotent: one traced job however often it runs
        call_command("seed_demo", bookings=4, quiet=True, stdout=out)
    traced = Booking.objects.get(notes=TRACE_NOTE)
    assert traced.status == BookingStatus.COMPLETED and traced.partner is not None
    assert f"/admin/bookings/booking/{traced.pk}/change/" in out.getvalue()
    staff = get_user_model().objects.get(username="admin")
    trace = api_as(staff).get(f"/api/bookings/{traced.pk}/trace/").json()
    points, events = trace["points"], trace["events"]
    assert len(points) > 50
    history = {c.to_status: c.created_at for c in traced.history.all()}
    assert points[0]["recordedAt"] == iso(history[BookingStatus.PARTNER_ACCEPTED])
    assert points[-1]["recordedAt"] == iso(history[BookingStatus.COMPLETED])
    # a plausible drive: no jump longer than a car goes in 10 s, and it ends at the door
    hops = [
        math.dist((a["latitude"], a["longitude"]), (b["latitude"], b["longitude"])) * 111_000
        for a, b in itertools.pairwise(points)
    ]
    assert max(hops) < 200
    assert math.dist((points[-1]["latitude"], points[-1]["longitude"]), (traced.latitude, traced.longitude)) < 0.001
    kinds = [e["kind"] for e in events]
    assert kinds.count("message") >= 2 and kinds.count("status") == 7 and kinds.count("arrival") == 1
    assert [e["to"] for e in events if e["kind"] == "status"][-1] == BookingStatus.COMPLETED
    # the customer reads it too (it has ended), and the seeded figures agree with a recount
    assert api_as(traced.customer).get(f"/api/bookings/{traced.pk}/trace/").status_code == 200
    assert tallies.drift() == {}


def test_seed_demo_leaves_one_open_safety_alert(settings):
    """The dashboard has an SOS on top to show: one open alert, by a demo customer about an open
    booking of theirs (messaging adds it on bookings' ``demo_seeded`` signal), however often it runs."""
    from messaging.models import SafetyAlert

    settings.DEBUG = True
    for _ in range(2):
        call_command("seed_demo", bookings=16, quiet=True, stdout=io.StringIO())
    [alert] = SafetyAlert.objects.filter(acknowledged_at=None)
    assert alert.raised_by.username.startswith("customer") and alert.role == "customer"
    assert alert.booking.customer_id == alert.raised_by_id and alert.booking.status in OPEN_STATUSES
    assert alert.latitude == alert.booking.latitude and alert.next_escalation_at is not None


def test_a_customer_typing_the_demo_bookings_note_does_not_thin_the_demo(settings, customer, service):
    """The demo counts its bookings among the demo customers', not by the note alone: a real
    customer's "demo booking" note made it seed fewer."""
    from bookings.models import Booking
    from tests.factories import BookingFactory

    settings.DEBUG = True
    BookingFactory.create_batch(5, customer=customer, service=service, notes="demo booking")
    call_command("seed_demo", bookings=16, quiet=True, stdout=io.StringIO())
    assert Booking.objects.filter(notes="demo booking").exclude(customer=customer).count() == 16


def test_a_staging_seed_calls_no_desk_for_a_demo_emergency(settings):
    """With DEBUG off (``--allow-demo-logins`` on a staging server) the demo's SOS would reach every
    real staff socket, and again every minute: it is made in debug only."""
    from messaging.models import SafetyAlert

    settings.DEBUG = False
    call_command("seed_demo", bookings=16, quiet=True, allow_demo_logins=True, stdout=io.StringIO())
    assert not SafetyAlert.objects.exists()


def test_a_customer_typing_the_demo_note_does_not_stand_in_for_the_demo_trace(settings, customer):
    """The demo job is found among the demo customers' bookings, not by its notes alone: a real
    customer's booking with the same text is neither printed as the demo nor keeps it from being made."""
    from messaging.demo import TRACE_NOTE

    settings.DEBUG = True
    call_command("seed_demo", bookings=0, customers=0, partners=0, quiet=True, stdout=io.StringIO())
    service = Service.objects.order_by("pk").first()
    theirs = insert_with_number(
        customer=customer,
        service=service,
        scheduled_at=timezone.now(),
        address="1 Real Street",
        latitude=28.6,
        longitude=77.2,
        amount=service.price,
        notes=TRACE_NOTE,
    )
    out = io.StringIO()
    call_command("seed_demo", bookings=4, quiet=True, stdout=out)
    assert str(theirs.pk) not in out.getvalue()
    demo = Booking.objects.exclude(pk=theirs.pk).get(notes=TRACE_NOTE)
    assert demo.customer.username.startswith("customer") and demo.status == BookingStatus.COMPLETED
    assert f"/admin/bookings/booking/{demo.pk}/change/" in out.getvalue()
