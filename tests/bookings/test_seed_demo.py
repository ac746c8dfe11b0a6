"""``manage.py seed_demo``: demo data that follows the product's own rules."""

import io
from collections import Counter

import pytest
from django.core.management import call_command

from bookings.models import Booking, BookingStatus

pytestmark = pytest.mark.django_db


def test_seeded_bookings_follow_the_dispatch_rules():
    for _ in range(2):  # idempotent: the second run tops up and breaks nothing
        call_command("seed_demo", bookings=60, quiet=True, stdout=io.StringIO())
    offers = Booking.objects.filter(status=BookingStatus.PARTNER_ASSIGNED)
    assert offers.exists() and all(b.dispatch_state == "offered" and b.dispatch_due_at for b in offers)
    assert max(Counter(offers.values_list("partner_id", flat=True)).values()) == 1  # one open offer each
    pending = Booking.objects.filter(status=BookingStatus.PENDING)
    assert all(b.dispatch_state == "unassigned" for b in pending)
    assert Booking.objects.filter(status=BookingStatus.COMPLETED, dispatch_state="done").exists()
