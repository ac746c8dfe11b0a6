"""The dashboard figures (contract 5.3): one object for REST and ``dashboard:stats_update``."""

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.utils import timezone

from bookings.models import OPEN_STATUSES, Booking, BookingStatus
from config.formats import iso
from config.platform_day import start_of_today
from partners.models import KycStatus, Partner


def current_stats() -> dict[str, Any]:
    """The figures with online customers from the cluster-wide presence (runs in a DB thread)."""
    from config import rooms
    from config.realtime.presence import presence

    return dashboard_stats(online_customers=len(presence.online(rooms.CUSTOMER)))


def dashboard_stats(*, online_customers: int | None = None) -> dict[str, Any]:
    now = timezone.now()
    start_of_day = start_of_today(now)
    by_status = dict(Booking.objects.values_list("status").annotate(n=Count("pk")).order_by())
    bookings_today = Booking.objects.filter(created_at__gte=start_of_day).count()
    completed = Booking.objects.filter(status=BookingStatus.COMPLETED)
    revenue_total = completed.aggregate(s=Sum("amount"))["s"] or 0
    revenue_today = completed.filter(completed_at__gte=start_of_day).aggregate(s=Sum("amount"))["s"] or 0
    partners = Partner.objects.aggregate(
        total=Count("pk"),
        online=Count("pk", filter=Q(online_until__gt=now, is_suspended=False)),
        available=Count("pk", filter=Q(online_until__gt=now, is_available=True, is_suspended=False)),
        pending_kyc=Count("pk", filter=Q(kyc_status=KycStatus.PENDING)),
    )
    customers_total = get_user_model().objects.filter(is_active=True, is_staff=False, partner__isnull=True).count()
    return {
        "bookings": {
            "total": sum(by_status.values()),
            "today": bookings_today,
            "active": sum(by_status.get(s, 0) for s in OPEN_STATUSES),
            "byStatus": {status: by_status.get(status, 0) for status in BookingStatus.values},
        },
        "revenue": {
            "today": float(revenue_today),
            "total": float(revenue_total),
            "currency": settings.DEFAULT_CURRENCY,
        },
        "partners": {
            "total": partners["total"],
            "online": partners["online"],
            "available": partners["available"],
            "pendingKyc": partners["pending_kyc"],
        },
        "customers": {"total": customers_total, "online": online_customers or 0},
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
