"""A day of job traces: what storing partners' fixes costs (PostgreSQL), through the product's own code.

    python bench/traces.py                              # 1,000 partners, 8 hours, a fix every 5 s
    python bench/traces.py --partners 20 --hours 1      # small: a few seconds

Into a database of its own (``homeservices_traces`` on the PostgreSQL of ``BENCH_DATABASE_URL``,
default 127.0.0.1:5432, dropped and made again each run), with production settings:

- ``--partners`` partners work ``--hours`` hours of jobs, each job ``--drive-minutes`` on the road
  (about 8 m/s) then ``--site-minutes`` on site (a few metres of GPS jitter); their phones record
  a fix every ``--every`` seconds, the day ending a minute ago (every fix within the 24-hour bound);
- every fix goes through the live path's buffer (``partners.tracking.LocationBuffer.record``, the
  thinning of ``TRACE_MIN_SECONDS`` / 25 m included), and the buffer is written as the flush loop
  writes it (``partners.tracking.write_buffered``: last locations and trace points) once per
  ``LOCATION_FLUSH_INTERVAL`` of the simulated day;
- each job is a completed booking with its history (accepted at the drive's start, arrived, completed
  at the site's end), so the trace endpoint can be timed on the same data (``measure_trace_endpoint``:
  ``--trace-jobs`` 2-hour jobs read ``--trace-reads`` times each as staff; p50/p99, target p99 <= 50 ms);
- an offline hour of ``--batch-partners`` partners then goes through the batch path
  (``LocationBuffer.store_batch``: thinning, the read of what exists, the insert), 500 fixes a batch.

Reports rows, bytes per point (``pg_total_relation_size`` of ``partners_locationfix``, indexes
included, after ``VACUUM ANALYZE``, over its rows) and the write costs: CPU and wall seconds per
1,000 points of this process (the database's own CPU is not in them). Writes a table and
``bench/results/traces.json`` (``--out``).
"""

import argparse
import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
from dispatch import CITY, setup_django  # noqa: E402

DATABASE = "homeservices_traces"
DRIVE_SPEED = 8.0  # m/s
JITTER_M = 3.0  # GPS noise on site
M_PER_DEG = 111_195.0


class Phone:
    """One partner's day: drive to a job, work on site, drive to the next; a fix every ``every`` s."""

    def __init__(self, rng: random.Random, drive_s: float, site_s: float) -> None:
        self.rng = rng
        self.lat, self.lng = CITY[0] + rng.uniform(-0.1, 0.1), CITY[1] + rng.uniform(-0.1, 0.1)
        self.drive_s, self.site_s = drive_s, site_s
        self.heading = rng.uniform(0, 2 * math.pi)

    def at(self, elapsed: float, every: float) -> dict:
        """The fix at ``elapsed`` seconds into the day (driving or on site)."""
        in_job = elapsed % (self.drive_s + self.site_s)
        if in_job < self.drive_s:
            self.heading += self.rng.gauss(0, 0.2)
            step = DRIVE_SPEED * every
            self.lat += step * math.cos(self.heading) / M_PER_DEG
            self.lng += step * math.sin(self.heading) / (M_PER_DEG * math.cos(math.radians(self.lat)))
            return {"latitude": self.lat, "longitude": self.lng, "speed": DRIVE_SPEED}
        jitter = self.rng.gauss(0, JITTER_M) / M_PER_DEG
        return {"latitude": self.lat + jitter, "longitude": self.lng + jitter, "speed": 0.0, "accuracy": 5.0}


def load_people(partners: int) -> tuple[list[int], int, int]:
    """``partners`` partners (approved), one customer, one service: their ids."""
    from django.contrib.auth import get_user_model

    from bookings.models import Service
    from partners.models import KycStatus, Partner

    users = get_user_model().objects
    customer = users.create(username="trace-customer")
    service = Service.objects.create(name="Trace service", price=499)
    made = users.bulk_create([users.model(username=f"trace-p{i}", first_name=f"P{i}") for i in range(partners)])
    Partner.objects.bulk_create(
        [Partner(user=u, name=u.first_name, phone="+91", kyc_status=KycStatus.APPROVED) for u in made]
    )
    return [u.pk for u in made], customer.pk, service.pk


JOB_SQL = """
WITH jobs(n, partner_id, accepted, arrived, completed) AS (VALUES {values}),
made AS (
    INSERT INTO bookings_booking (id, number, customer_id, partner_id, service_id, status, scheduled_at, address,
        latitude, longitude, amount, currency, notes, cancel_reason, cancelled_by_id, created_at, updated_at,
        completed_at, dispatch_state, dispatch_attempts, dispatch_due_at)
    SELECT gen_random_uuid(), 'T' || lpad(n::text, 7, '0'), %s, partner_id, %s, 'COMPLETED', arrived::timestamptz,
        'Trace street', 0, 0, 499, 'INR', '', '', NULL, accepted::timestamptz, completed::timestamptz,
        completed::timestamptz, 'done', 1, NULL
    FROM jobs RETURNING id, partner_id, created_at, scheduled_at, completed_at
)
INSERT INTO bookings_bookingstatuschange (booking_id, from_status, to_status, actor_id, role, partner_id, note,
    created_at)
SELECT id, f, t, partner_id, 'partner', partner_id, '', at FROM made, LATERAL (VALUES
    ('', 'PENDING', created_at - interval '1 minute'), ('PARTNER_ASSIGNED', 'PARTNER_ACCEPTED', created_at),
    ('PARTNER_EN_ROUTE', 'PARTNER_ARRIVED', scheduled_at), ('IN_PROGRESS', 'COMPLETED', completed_at)) s(f, t, at)
"""


def load_jobs(partner_ids: list[int], customer: int, service: int, start: datetime, args: argparse.Namespace) -> int:
    """A completed booking per job of every partner, with the history rows its trace reads."""
    from django.db import connection

    job_s = (args.drive_minutes + args.site_minutes) * 60
    rows, n = [], 0
    for pk in partner_ids:
        t = 0.0
        while t < args.hours * 3600:
            n += 1
            accepted = start + timedelta(seconds=t)
            arrived = accepted + timedelta(minutes=args.drive_minutes)
            rows.append((n, pk, accepted, arrived, arrived + timedelta(minutes=args.site_minutes)))
            t += job_s
    with connection.cursor() as cursor:
        for i in range(0, len(rows), 1000):
            chunk = rows[i : i + 1000]
            values = ", ".join(["(%s::int, %s::int, %s::timestamptz, %s::timestamptz, %s::timestamptz)"] * len(chunk))
            cursor.execute(JOB_SQL.format(values=values), [*[v for row in chunk for v in row], customer, service])
    return n


def live_day(partner_ids: list[int], start: datetime, args: argparse.Namespace) -> dict:
    """Every fix of the day through the live buffer; the buffer written once per flush interval."""
    from django.conf import settings

    from partners import tracking

    buffer = tracking.LocationBuffer()
    rng = random.Random(1)
    phones = {
        pk: Phone(random.Random(rng.random()), args.drive_minutes * 60, args.site_minutes * 60) for pk in partner_ids
    }
    steps = int(args.hours * 3600 / args.every)
    flush_every = max(1, round(settings.LOCATION_FLUSH_INTERVAL / args.every))
    record_cpu = write_cpu = write_wall = 0.0
    fixes = points = 0
    for step in range(steps):
        at = (start + timedelta(seconds=step * args.every)).isoformat()
        payloads = [(pk, {**phone.at(step * args.every, args.every), "recordedAt": at}) for pk, phone in phones.items()]
        began = time.process_time()
        for pk, payload in payloads:
            buffer.record(pk, payload, trace=True)
        record_cpu += time.process_time() - began
        fixes += len(payloads)
        if (step + 1) % flush_every == 0 or step == steps - 1:
            batch, trace = buffer.take()
            points += sum(len(p) for p in trace.values())
            began, began_wall = time.process_time(), time.perf_counter()
            tracking.write_buffered(batch, trace)
            write_cpu += time.process_time() - began
            write_wall += time.perf_counter() - began_wall
    per_k = 1000 / max(points, 1)
    return {
        "fixes": fixes,
        "points": points,
        "kept_ratio": round(points / max(fixes, 1), 3),
        "record_cpu_us_per_fix": round(record_cpu / max(fixes, 1) * 1e6, 2),
        "write_cpu_s_per_1000_points": round(write_cpu * per_k, 4),
        "write_wall_s_per_1000_points": round(write_wall * per_k, 4),
    }


def offline_batches(partner_ids: list[int], start: datetime, args: argparse.Namespace) -> dict:
    """An offline hour of some partners (fixes between the live ones) through the batch path."""
    from partners import tracking
    from partners.traces import batch_of

    buffer = tracking.LocationBuffer()
    chosen = partner_ids[: args.batch_partners]
    fixes = stored_before = 0
    cpu = wall = 0.0
    for pk in chosen:
        phone = Phone(random.Random(pk), args.drive_minutes * 60, args.site_minutes * 60)
        items = [
            {
                **phone.at(s, args.every),
                "recordedAt": (start + timedelta(seconds=s + args.every / 2)).isoformat(),
            }
            for s in range(0, 3600, int(args.every))
        ]
        for i in range(0, len(items), 500):
            began, began_wall = time.process_time(), time.perf_counter()
            batch, _ = batch_of({"fixes": items[i : i + 500]})
            stored_before += asyncio.run(buffer.store_batch(pk, batch))
            cpu += time.process_time() - began
            wall += time.perf_counter() - began_wall
            fixes += len(batch)
    per_k = 1000 / max(fixes, 1)
    return {
        "partners": len(chosen),
        "fixes": fixes,
        "duplicates": stored_before,
        "cpu_s_per_1000_fixes": round(cpu * per_k, 4),
        "wall_s_per_1000_fixes": round(wall * per_k, 4),
    }


def storage() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE partners_locationfix")
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('partners_locationfix'), pg_relation_size('partners_locationfix')"
            " FROM partners_locationfix"
        )
        rows, total, heap = cursor.fetchone()
    return {
        "rows": rows,
        "total_bytes": total,
        "bytes_per_point": round(total / max(rows, 1), 1),
        "heap_bytes_per_point": round(heap / max(rows, 1), 1),
    }


def measure_trace_endpoint(args: argparse.Namespace, start: datetime) -> dict:
    """The trace endpoint's latency on this data (``GET /api/bookings/{id}/trace/``): p50/p99.

    ``--trace-jobs`` 2-hour jobs (accepted, completed two hours later: the partner's fixes of two of
    the day's jobs, read out of the whole day's table) of partners spread over the day, each read
    ``--trace-reads`` times as staff, in process: the DRF view (authentication, the selector's five
    queries, JSON rendering), and the selector with its shape and ``json.dumps`` alone.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIRequestFactory, force_authenticate

    from bookings.models import Booking
    from dashboard.apis import BookingTraceApi
    from dashboard.traces import booking_trace, trace_data

    hours = min(2.0, args.hours)
    users = get_user_model().objects
    staff = users.create(username="trace-staff", is_staff=True)
    customer, service = Booking.objects.values_list("customer_id", "service_id").first()
    partner_ids = list(Booking.objects.values_list("partner_id", flat=True).distinct().order_by("partner_id"))
    chosen = partner_ids[:: max(1, len(partner_ids) // args.trace_jobs)][: args.trace_jobs]
    rows = []
    for i, pk in enumerate(chosen):
        accepted = start + timedelta(hours=(args.hours - hours) * i / max(1, len(chosen)))
        rows.append(
            (9_000_000 + i, pk, accepted, accepted + timedelta(hours=hours / 2), accepted + timedelta(hours=hours))
        )
    with connection.cursor() as cursor:
        values = ", ".join(["(%s::int, %s::int, %s::timestamptz, %s::timestamptz, %s::timestamptz)"] * len(rows))
        cursor.execute(JOB_SQL.format(values=values), [*[v for row in rows for v in row], customer, service])
        cursor.execute("ANALYZE")
    jobs = list(Booking.objects.filter(number__gte="T9000000").values_list("pk", flat=True))
    view, factory = BookingTraceApi.as_view(), APIRequestFactory()

    def over_http_view(booking_id: str) -> int:
        request = factory.get(f"/api/bookings/{booking_id}/trace/")
        force_authenticate(request, user=staff)
        response = view(request, booking_id=booking_id)
        response.render()
        assert response.status_code == 200, response.content[:200]
        return len(response.content)

    def selector(booking_id: str) -> int:
        return len(json.dumps(trace_data(booking_trace(booking_id=booking_id, user=staff))))

    report: dict = {"jobs": len(jobs), "job_hours": hours, "reads_each": args.trace_reads}
    for name, read in (("view", over_http_view), ("selector", selector)):
        for pk in jobs:  # warm: the first read of a job pays the plan and the pages
            read(str(pk))
        timings, sizes = [], []
        for _ in range(args.trace_reads):
            for pk in jobs:
                began = time.perf_counter()
                sizes.append(read(str(pk)))
                timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        report[name] = {
            "p50_ms": round(timings[len(timings) // 2], 2),
            "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
            "max_ms": round(timings[-1], 2),
            "reads": len(timings),
            "bytes": round(sum(sizes) / len(sizes)),
        }
    points = [len(booking_trace(booking_id=str(pk), user=staff).points) for pk in jobs]
    report["points_per_trace"] = {"min": min(points), "max": max(points), "mean": round(sum(points) / len(points))}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=1_000)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between a phone's fixes")
    parser.add_argument("--drive-minutes", type=float, default=15.0)
    parser.add_argument("--site-minutes", type=float, default=45.0)
    parser.add_argument("--batch-partners", type=int, default=50, help="partners whose offline hour is backfilled")
    parser.add_argument("--trace-jobs", type=int, default=20, help="2-hour jobs whose trace is timed")
    parser.add_argument("--trace-reads", type=int, default=25, help="reads of each, per way of reading")
    parser.add_argument("--database", default=DATABASE, help="the scratch database (dropped and made again)")
    parser.add_argument("--out", type=Path, default=RESULTS / "traces.json")
    args = parser.parse_args()
    if not 0 < args.hours <= 23.5:
        raise SystemExit("--hours: up to 23.5 (every fix must be within the 24-hour bound when it is sent)")

    server = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
    subprocess.run(
        ["psql", f"{server}/postgres", "-qc", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)"], check=True
    )
    setup_django(args.database)
    from django.conf import settings

    start = datetime.now(UTC) - timedelta(hours=args.hours, minutes=1)
    partner_ids, customer, service = load_people(args.partners)
    report: dict = {
        "partners": args.partners,
        "hours": args.hours,
        "every_s": args.every,
        "drive_minutes": args.drive_minutes,
        "site_minutes": args.site_minutes,
        "trace_min_seconds": settings.TRACE_MIN_SECONDS,
        "jobs": load_jobs(partner_ids, customer, service, start, args),
    }
    began = time.perf_counter()
    report["live"] = live_day(partner_ids, start, args)
    report["live"]["seconds"] = round(time.perf_counter() - began, 1)
    report["storage"] = storage()
    report["batch"] = offline_batches(partner_ids, start, args)
    report["trace_endpoint"] = measure_trace_endpoint(args, start)

    live, size = report["live"], report["storage"]
    print(f"{args.partners} partners x {args.hours:g} h, a fix every {args.every:g} s: {live['fixes']:,} fixes")
    print(f"  kept {live['points']:,} points ({live['kept_ratio']:.0%}); rows {size['rows']:,}")
    print(f"  {size['bytes_per_point']} bytes a point with indexes ({size['heap_bytes_per_point']} in the table)")
    print(
        f"  live: {live['record_cpu_us_per_fix']} us CPU a fix in the buffer; writes "
        f"{live['write_cpu_s_per_1000_points']} s CPU, {live['write_wall_s_per_1000_points']} s wall per 1,000 points"
    )
    batch = report["batch"]
    print(
        f"  offline batches: {batch['cpu_s_per_1000_fixes']} s CPU, {batch['wall_s_per_1000_fixes']} s wall "
        f"per 1,000 fixes ({batch['fixes']:,} fixes of {batch['partners']} partners)"
    )
    trace = report["trace_endpoint"]
    if trace:
        print(
            f"  trace endpoint, {trace['jobs']} jobs of {trace['job_hours']:g} h "
            f"({trace['points_per_trace']['mean']} points, {trace['view']['bytes']:,} bytes): "
            f"p50 {trace['view']['p50_ms']} ms, p99 {trace['view']['p99_ms']} ms over {trace['view']['reads']} reads "
            f"(selector and JSON alone: p50 {trace['selector']['p50_ms']} ms, p99 {trace['selector']['p99_ms']} ms)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
