"""Dispatch at city scale: how long choosing a partner takes with 50,000 partners online around one city.

    python bench/dispatch.py                      # 50,000 partners, 300 dispatches, PostgreSQL
    python bench/dispatch.py --partners 5000      # smaller

Loads the partners into a database of its own (``homeservices_bench`` on the PostgreSQL
of ``BENCH_DATABASE_URL``, default 127.0.0.1:5432), then times, for the same bookings:

- ``ring search``: ``bookings.dispatch.nearest_eligible_partner`` (bounding-box rings on
  the ``partner_position`` index, up to ``DISPATCH_MAX_KM``), in a transaction rolled back;
- ``full scan``: the search as it was before (every eligible partner of the city read
  into Python, a haversine for each), for comparison;
- ``dispatch``: ``bookings.services.booking_dispatch``, the whole offer (search, the claim,
  the booking's update and history, events queued), committed;
- ``lapse under a backlog``: ``--backlog`` bookings waiting for a retry, all due, and one
  lapsed offer due after all of them: how long the sweep (100 bookings a pass, as each
  server process runs it every ``DISPATCH_SWEEP_INTERVAL``) takes to lapse the offer.

Writes a table and ``bench/results/dispatch.json``.
"""

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CITY = (28.6139, 77.2090)


def setup_django(database: str) -> None:
    server = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
    # CREATE DATABASE fails harmlessly when it exists.
    subprocess.run(["psql", f"{server}/postgres", "-qc", f"CREATE DATABASE {database}"], capture_output=True)
    os.environ.update(DATABASE_URL=f"{server}/{database}", DJANGO_SETTINGS_MODULE="config.settings")
    # Production settings (no query log): a key of the run's own, as bench/run.py gives its servers.
    os.environ.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="127.0.0.1")
    os.environ.pop("REDIS_URL", None)  # the in-memory layer: events are queued, nobody listens
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def near_city(rng: random.Random, km: float) -> tuple[float, float]:
    return CITY[0] + rng.uniform(-km, km) / 111.2, CITY[1] + rng.uniform(-km, km) / 97.6


def load_partners(count: int, rng: random.Random) -> object:
    """``count`` approved, available, online partners spread over 30 x 30 km; returns their service."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from bookings.models import Booking, Service
    from partners.models import KycStatus, Partner

    service, _ = Service.objects.get_or_create(name="Bench service", defaults={"price": 499})
    users = get_user_model().objects
    tables = ", ".join(m._meta.db_table for m in (Booking, Partner, users.model))
    with connection.cursor() as cursor:  # a fresh city every run (a database of its own)
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    until = timezone.now() + timedelta(hours=2)
    for start in range(0, count, 5000):
        batch = range(start, min(start + 5000, count))
        created = users.bulk_create([users.model(username=f"bench-{i}", first_name=f"P{i}") for i in batch])
        partners = []
        for user in created:
            lat, lng = near_city(rng, 15)
            partners.append(
                Partner(
                    user=user,
                    name=user.first_name,
                    phone="+91",
                    kyc_status=KycStatus.APPROVED,
                    last_latitude=lat,
                    last_longitude=lng,
                    online_until=until,
                )
            )
        Partner.objects.bulk_create(partners)
        Partner.services.through.objects.bulk_create(
            [Partner.services.through(partner_id=p.pk, service_id=service.pk) for p in partners]
        )
    customer = users.create(username="bench-customer")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return service, customer


def full_scan(booking: object) -> int | None:
    """The search before this change: every eligible partner of the city, a haversine each."""
    from django.utils import timezone

    from bookings.models import ACTIVE_STATUSES
    from partners.geo import distance_m
    from partners.models import Partner

    rows = (
        Partner.objects.filter(
            services=booking.service_id,
            kyc_status="APPROVED",
            is_suspended=False,
            is_available=True,
            online_until__gt=timezone.now(),
            user__is_active=True,
            last_latitude__isnull=False,
            last_longitude__isnull=False,
        )
        .exclude(pk=booking.customer_id)
        .exclude(rejections__booking=booking)
        .exclude(bookings__status__in=ACTIVE_STATUSES)
        .values_list("pk", "last_latitude", "last_longitude")
    )
    best = min(rows, key=lambda r: distance_m(booking.latitude, booking.longitude, r[1], r[2]), default=None)
    return best[0] if best else None


def timed(func: object, items: list) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        func(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=50_000)
    parser.add_argument("--bookings", type=int, default=300)
    parser.add_argument("--backlog", type=int, default=10_000, help="bookings waiting for a retry in the lapse run")
    parser.add_argument("--database", default="homeservices_bench")
    args = parser.parse_args()
    setup_django(args.database)

    from django.db import transaction
    from django.utils import timezone

    from bookings import services
    from bookings.dispatch import nearest_eligible_partner
    from bookings.models import Booking

    rng = random.Random(7)
    started = time.perf_counter()
    service, customer = load_partners(args.partners, rng)
    loaded = time.perf_counter() - started
    bookings = []
    for i in range(args.bookings):
        lat, lng = near_city(rng, 12)
        bookings.append(
            Booking.objects.create(
                number=f"BN{i:06d}",
                customer=customer,
                service=service,
                scheduled_at=timezone.now(),
                address="bench",
                latitude=lat,
                longitude=lng,
            )
        )

    def ring(booking: Booking) -> None:
        with transaction.atomic():
            assert nearest_eligible_partner(booking) is not None
            transaction.set_rollback(True)

    def dispatch(booking: Booking) -> None:
        assert services.booking_dispatch(booking_id=booking.pk) is not None

    ring(bookings[0]), full_scan(bookings[0])  # warm caches and connections
    results = {
        "partners": args.partners,
        "load_seconds": round(loaded, 1),
        "ring search": summary(timed(ring, bookings)),
        "full scan": summary(timed(full_scan, bookings[: max(20, args.bookings // 10)])),
        "dispatch": summary(timed(dispatch, bookings)),
        "lapse under a backlog": lapse_under_backlog(args.backlog, service, customer),
    }
    print(f"{args.partners:,} partners online around one city (PostgreSQL), loaded in {loaded:.0f} s")
    lapse = results["lapse under a backlog"]
    print(
        f"lapse under a backlog of {lapse['backlog']:,} waiting bookings: the offer lapsed as booking "
        f"{lapse['handled_before_lapse']} of the sweep, {lapse['seconds']} s after it started"
    )
    print(f"{'':12} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in ("ring search", "full scan", "dispatch"):
        r = results[name]
        print(f"{name:12} {r['n']:>5} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dispatch.json").write_text(json.dumps(results, indent=2) + "\n")


def lapse_under_backlog(backlog: int, service: object, customer: object) -> dict:
    """``backlog`` retries due before one lapsed offer: sweep as a server does until the offer lapses."""
    from datetime import timedelta

    from django.utils import timezone

    from bookings import services
    from bookings.models import Booking, BookingStatus, DispatchState
    from partners.models import Partner

    long_ago = timezone.now() - timedelta(minutes=5)
    Booking.objects.bulk_create(
        Booking(
            number=f"BW{i:06d}",
            customer=customer,
            service=service,
            scheduled_at=timezone.now() + timedelta(hours=2),
            address="waiting",
            latitude=0.0,  # far from every partner: each retry finds nobody and waits again
            longitude=0.0,
            dispatch_state=DispatchState.UNASSIGNED,
            dispatch_due_at=long_ago,
        )
        for i in range(backlog)
    )
    partner = Partner.objects.first()
    offered = Booking.objects.create(
        number="BL000000",
        customer=customer,
        service=service,
        partner=partner,
        status=BookingStatus.PARTNER_ASSIGNED,
        scheduled_at=timezone.now() + timedelta(hours=2),
        address="lapsing",
        latitude=CITY[0],
        longitude=CITY[1],
        dispatch_state=DispatchState.OFFERED,
        dispatch_attempts=1,
        dispatch_due_at=timezone.now(),  # due after every retry above
    )
    # One booking at a time, as a pass takes them: how many the sweep handled, and how long it took,
    # before the offer lapsed.
    started, handled = time.perf_counter(), 0
    while Booking.objects.filter(pk=offered.pk, partner=partner, status=BookingStatus.PARTNER_ASSIGNED).exists():
        handled += services.dispatch_sweep(limit=1)
    return {"backlog": backlog, "handled_before_lapse": handled, "seconds": round(time.perf_counter() - started, 3)}


if __name__ == "__main__":
    main()
