"""``manage.py seed_demo``: demo data that follows the product's own rules."""

import io
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from bookings.models import HELD_STATUSES, Booking, BookingStatus

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
