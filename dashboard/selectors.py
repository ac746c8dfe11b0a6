"""The dashboard figures (contract 5.3): one object for REST and ``dashboard:stats_update``."""

import contextlib
import math
import os
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone
from redis.exceptions import RedisError

from bookings import events, tallies
from bookings.models import OPEN_STATUSES, Booking, BookingStatus
from bookings.selectors import bookings_needing_staff
from config import metrics, rooms
from config.formats import iso
from config.platform_day import platform_day
from config.realtime.presence import presence
from partners.models import KycStatus, Partner

SHARED_STATS_KEY = "dashboard:stats"
SHARED_STATS_TURN_KEY = "dashboard:stats:turn"
MONITOR_LIMIT = 200


def shared_stats(max_age: float) -> dict[str, Any] | None:
    """The figures computed once per ``max_age`` for the whole cluster (runs in a DB thread).

    The process that takes the turn computes them and stores them in the cache; the others
    relay what it stored. None: another process is computing them right now. With the cache
    away, each process computes its own: the figures stay right, only the saving is lost.
    """
    ttl = max(1, math.ceil(max_age))  # the Redis cache keeps whole seconds
    try:
        stats = cache.get(SHARED_STATS_KEY)
        if stats is not None:
            return stats
        if not cache.add(SHARED_STATS_TURN_KEY, os.getpid(), timeout=ttl):
            return None
    except RedisError:
        return current_stats()
    stats = current_stats()
    metrics.DASHBOARD_FIGURES.inc()
    with contextlib.suppress(RedisError):  # not stored: the next tick computes again
        cache.set(SHARED_STATS_KEY, stats, timeout=ttl)
    return stats


def current_stats() -> dict[str, Any]:
    """The figures with online customers from the cluster-wide presence (runs in a DB thread)."""
    return dashboard_stats(online_customers=len(presence.online(rooms.CUSTOMER)))


def dashboard_stats(*, online_customers: int | None = None) -> dict[str, Any]:
    """The figures from the running tallies and indexed counts: the same cost at any history size."""
    now = timezone.now()
    booking = tallies.figures(platform_day(now))  # bookings and customers
    by_status = booking.by_status
    partners = Partner.objects.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(online_until__gt=now, is_suspended=False)),
        available=Count("pk", filter=Q(online_until__gt=now, is_available=True, is_suspended=False)),
        pending_kyc=Count("pk", filter=Q(kyc_status=KycStatus.PENDING)),
    )
    return {
        "bookings": {
            "total": sum(by_status.values()),
            "today": booking.created_today,
            "active": sum(by_status.get(s, 0) for s in OPEN_STATUSES),
            "byStatus": {status: by_status.get(status, 0) for status in BookingStatus.values},
        },
        "revenue": {
            "today": float(booking.revenue_today),
            "total": float(booking.revenue_total),
            "currency": settings.DEFAULT_CURRENCY,
        },
        "partners": {
            "total": partners["total"],
            "online": partners["online"],
            "available": partners["available"],
            "pendingKyc": partners["pending_kyc"],
        },
        "customers": {"total": booking.customers, "online": online_customers or 0},
        "generatedAt": iso(now),
    }


def cockpit_map(*, limit: int = 500) -> dict[str, Any]:
    """Partners' last known positions (online first) and open bookings, for the cockpit's map."""
    now = timezone.now()
    partners = (
        Partner.objects.filter(last_latitude__isnull=False, last_longitude__isnull=False)
        .order_by("-online_until", "-last_location_at")
        .values("user_id", "name", "last_latitude", "last_longitude", "online_until")[:limit]
    )
    bookings = Booking.objects.filter(status__in=OPEN_STATUSES).values(
        "id", "number", "status", "latitude", "longitude"
    )[:limit]
    return {
        "partners": [
            {
                "id": str(p["user_id"]),
                "name": p["name"],
                "location": {"latitude": p["last_latitude"], "longitude": p["last_longitude"]},
                "online": bool(p["online_until"] and p["online_until"] > now),
            }
            for p in partners
        ],
        "bookings": [
            {
                "id": str(b["id"]),
                "bookingNumber": b["number"],
                "status": b["status"],
                "location": {"latitude": b["latitude"], "longitude": b["longitude"]},
            }
            for b in bookings
        ],
        "generatedAt": iso(now),
    }


def cockpit_timeline(*, minutes: int = 60, bucket: int = 5) -> dict[str, Any]:
    """Bookings entering each status per ``bucket`` minutes over the last ``minutes`` (from the history)."""
    from bookings.models import BookingStatusChange

    now = timezone.now()
    start = now - timezone.timedelta(minutes=minutes)
    buckets = minutes // bucket
    series = {status: [0] * buckets for status in BookingStatus.values}
    for to_status, at in BookingStatusChange.objects.filter(created_at__gte=start).values_list(
        "to_status", "created_at"
    ):
        index = min(buckets - 1, int((at - start).total_seconds() // (bucket * 60)))
        if to_status in series:
            series[to_status][index] += 1
    return {"from": iso(start), "bucketMinutes": bucket, "series": series, "generatedAt": iso(now)}


def monitor_bookings_rows() -> list[dict[str, Any]]:
    """The ``monitor:bookings`` ack: the bookings that need staff first (``attention``), then the
    newest open ones, ``MONITOR_LIMIT`` in all (runs in a DB thread)."""
    flagged = list(bookings_needing_staff()[:MONITOR_LIMIT])
    seen = {booking.pk for booking in flagged}
    qs = Booking.objects.filter(status__in=OPEN_STATUSES).select_related("service", "customer", "partner")
    recent = [booking for booking in qs.order_by("-created_at")[:MONITOR_LIMIT] if booking.pk not in seen]
    return [events.booking(booking) for booking in (flagged + recent)[:MONITOR_LIMIT]]
