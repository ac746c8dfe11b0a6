"""The platform's calendar day (contract 8.1): "today" is the day in ``PLATFORM_TIME_ZONE``.

Times are stored and sent in UTC; only the figures "of today" (the dashboard's, a partner's
earnings of the day) cut the timeline at the platform's midnight, which in India is 18:30 UTC
of the day before: a job finished at 02:00 in Delhi belongs to that Delhi day.
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def platform_zone() -> ZoneInfo:
    return ZoneInfo(settings.PLATFORM_TIME_ZONE)


def start_of_today(now: datetime | None = None) -> datetime:
    """The platform's last midnight, as an aware datetime (compare it with stored UTC times)."""
    local = (now or timezone.now()).astimezone(platform_zone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def platform_day(moment: datetime | None = None) -> date:
    """The platform's calendar day a moment falls on (a booking at 00:30 in Delhi is that Delhi day)."""
    return (moment or timezone.now()).astimezone(platform_zone()).date()
