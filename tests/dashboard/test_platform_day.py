"""'Today' is the calendar day in PLATFORM_TIME_ZONE (contract 8.1), not UTC's."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bookings import tallies
from bookings.models import Booking
from bookings.models import BookingStatus as S
from config.platform_day import start_of_today
from dashboard.selectors import dashboard_stats
from partners.models import Earning
from partners.services import earnings_totals
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db
DELHI = ZoneInfo("Asia/Kolkata")


def test_the_platforms_midnight_is_not_utcs():
    # 02:00 in Delhi on 5 March is 20:30 UTC on 4 March: that instant's day began at 18:30 UTC.
    now = datetime(2026, 3, 4, 20, 30, tzinfo=UTC)
    assert start_of_today(now) == datetime(2026, 3, 5, 0, 0, tzinfo=DELHI)
    assert start_of_today(now).astimezone(UTC) == datetime(2026, 3, 4, 18, 30, tzinfo=UTC)


def test_a_booking_at_half_past_midnight_local_counts_for_that_local_day(partner, settings):
    settings.PLATFORM_TIME_ZONE = "Asia/Kolkata"
    midnight = start_of_today()
    after = BookingFactory(partner=partner, status=S.COMPLETED, amount=Decimal("100.00"))
    before = BookingFactory(partner=partner, status=S.COMPLETED, amount=Decimal("40.00"))
    # 00:30 and 23:30 Delhi time around the platform's last midnight (auto_now_add: set afterwards).
    Booking.objects.filter(pk=after.pk).update(
        created_at=midnight + timedelta(minutes=30), completed_at=midnight + timedelta(minutes=30)
    )
    Booking.objects.filter(pk=before.pk).update(
        created_at=midnight - timedelta(minutes=30), completed_at=midnight - timedelta(minutes=30)
    )
    tallies.rebuild()  # the times were moved behind the services' back
    stats = dashboard_stats()
    assert stats["bookings"]["today"] == 1 and stats["revenue"]["today"] == 100.0
    for booking, amount, at in ((after, "80.00", 30), (before, "32.00", -30)):
        earning = Earning.objects.create(partner=partner, booking=booking, amount=Decimal(amount), currency="INR")
        Earning.objects.filter(pk=earning.pk).update(created_at=midnight + timedelta(minutes=at))
    assert earnings_totals(partner_id=partner.pk) == {"today": Decimal("80.00"), "total": Decimal("112.00")}


PINNED = datetime(2026, 3, 4, 20, 30, tzinfo=UTC)  # 02:00 on 5 March in Delhi; still 4 March in UTC


def test_today_under_a_pinned_clock_is_the_platforms_day_not_utcs(partner, settings, monkeypatch):
    """The clock pinned inside the 18:30-24:00 UTC window, where UTC's date and Delhi's differ; the
    midnight the test compares with is written out, not computed with the clock under test."""
    from datetime import date

    import django.utils.timezone

    from config.platform_day import platform_day

    settings.PLATFORM_TIME_ZONE = "Asia/Kolkata"
    monkeypatch.setattr(django.utils.timezone, "now", lambda: PINNED)
    assert platform_day() == date(2026, 3, 5)
    assert start_of_today() == datetime(2026, 3, 5, 0, 0, tzinfo=DELHI)
    midnight = datetime(2026, 3, 4, 18, 30, tzinfo=UTC)
    after = BookingFactory(partner=partner, status=S.COMPLETED, amount=Decimal("100.00"))
    before = BookingFactory(partner=partner, status=S.COMPLETED, amount=Decimal("40.00"))
    for booking, at in ((after, 30), (before, -30)):
        moment = midnight + timedelta(minutes=at)
        Booking.objects.filter(pk=booking.pk).update(created_at=moment, completed_at=moment)
    tallies.rebuild()
    stats = dashboard_stats()
    assert stats["bookings"]["today"] == 1 and stats["revenue"]["today"] == 100.0
