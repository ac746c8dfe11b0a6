"""A year of history: what the ops side costs with 1,000,000 past bookings (PostgreSQL).

    python bench/history.py --bookings 1000000                      # load, then time this checkout
    python bench/history.py --bookings 1000000 --baseline /tmp/old  # time another checkout too, same data

Loads a scratch database (``homeservices_history``) through SQL, in a minute or two: one
customer per ten bookings, 5,000 partners (approved, online), and ``--bookings`` bookings
spread over the last 365 days, 80 % completed and 20 % cancelled, each with its creation and
final history rows and, when completed, an earning. Then the tallies are rebuilt (what the
upgrade's migration does; timed), ``VACUUM ANALYZE`` runs (autovacuum's job on a live
database), and each checkout is timed in a process of its own, in process and with no
network, as staff:

- dashboard figures: ``dashboard.selectors.dashboard_stats()``;
- ``GET /api/bookings/``: the first page, and the 500th (``?page=500``, or following ``next``);
- the Django admin's booking list, and its search by booking number and by username;
- ``booking_accept``: an offer accepted (dispatch's write path, which the tallies join).

Past bookings are numbered ``H`` + 7 digits, beside the product's ``BK`` + 6 digits, so a
run can load up to 10,000,000 (see docs/deployment.md on the number space). Writes a table
and ``bench/results/history.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
from dispatch import summary  # noqa: E402
from run import production_env  # noqa: E402

SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "homeservices_history"
PARTNERS = 5_000
CITY = (28.6139, 77.2090)
ACCEPTS = 30

LOAD_SQL = """
INSERT INTO bookings_service (name, description, price, currency, duration_minutes, is_active)
SELECT 'History service ' || s, '', 300 + 100 * s, 'INR', 60, true FROM generate_series(1, 5) s;

INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'hist-c' || i, 'Customer ' || i, '', '', false, true, now() - interval '400 days'
FROM generate_series(1, %(customers)s) i;

INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'hist-p' || i, 'Partner ' || i, '', '', false, true, now() - interval '400 days'
FROM generate_series(1, %(partners)s) i;

INSERT INTO partners_partner (user_id, name, phone, rating, is_available, is_suspended, kyc_status,
    last_latitude, last_longitude, last_location_at, online_until, created_at)
SELECT id, first_name, '+91', 4.5, true, false, 'APPROVED',
    %(lat)s + (random() - 0.5) * 0.2, %(lng)s + (random() - 0.5) * 0.2, now(), now() + interval '2 hours', date_joined
FROM auth_user WHERE username LIKE 'hist-p%%';

INSERT INTO partners_partner_services (partner_id, service_id)
SELECT p.user_id, s.id FROM partners_partner p CROSS JOIN bookings_service s;

CREATE TEMP TABLE ids AS SELECT
    (SELECT min(id) FROM auth_user WHERE username LIKE 'hist-c%%') AS c0,
    (SELECT min(id) FROM auth_user WHERE username LIKE 'hist-p%%') AS p0,
    (SELECT min(id) FROM bookings_service) AS s0;

INSERT INTO bookings_booking (id, number, customer_id, partner_id, service_id, status, scheduled_at, address,
    latitude, longitude, amount, currency, notes, cancel_reason, cancelled_by_id, created_at, updated_at,
    completed_at, dispatch_state, dispatch_attempts, dispatch_due_at)
SELECT gen_random_uuid(), 'H' || lpad(i::text, 7, '0'), c0 + i %% %(customers)s,
    CASE WHEN i %% 5 = 0 AND i %% 2 = 0 THEN NULL ELSE p0 + i %% %(partners)s END,
    s0 + i %% 5, CASE WHEN i %% 5 = 0 THEN 'CANCELLED' ELSE 'COMPLETED' END,
    t + interval '2 hours', i || ' History Street', %(lat)s, %(lng)s, 300 + 100 * (1 + i %% 5), 'INR', '',
    CASE WHEN i %% 5 = 0 THEN 'Changed my mind' ELSE '' END, NULL, t, t + interval '3 hours',
    CASE WHEN i %% 5 = 0 THEN NULL ELSE t + interval '3 hours' END, 'done', 1, NULL
FROM ids, (SELECT i, now() - interval '365 days' + (interval '365 days' - interval '4 hours') * i / %(bookings)s AS t
           FROM generate_series(1, %(bookings)s) i) g;

INSERT INTO bookings_bookingstatuschange
    (booking_id, from_status, to_status, actor_id, role, partner_id, note, created_at)
SELECT id, '', 'PENDING', customer_id, 'customer', NULL, '', created_at FROM bookings_booking WHERE number LIKE 'H%%'
UNION ALL
SELECT id, 'IN_PROGRESS', status, partner_id, 'partner', partner_id, '', updated_at
FROM bookings_booking WHERE number LIKE 'H%%' AND status = 'COMPLETED'
UNION ALL
SELECT id, 'PENDING', status, customer_id, 'customer', NULL, '', updated_at
FROM bookings_booking WHERE number LIKE 'H%%' AND status = 'CANCELLED';

INSERT INTO partners_earning (partner_id, booking_id, amount, currency, created_at)
SELECT partner_id, id, amount * 0.8, currency, completed_at FROM bookings_booking
WHERE number LIKE 'H%%' AND status = 'COMPLETED';

INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ('!', true, 'hist-staff', 'Ops', '', '', true, true, now());
"""


def load(bookings: int) -> dict:
    """Runs in a child process with this checkout's Django (the schema of the code under test)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bookings import tallies

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    params = {"bookings": bookings, "customers": max(1, bookings // 10), "partners": PARTNERS}
    params.update(lat=CITY[0], lng=CITY[1])
    with connection.cursor() as cursor:
        cursor.execute(LOAD_SQL, params)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    tallies.rebuild()
    rebuilt = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"load_seconds": round(loaded, 1), "tally_rebuild_seconds": round(rebuilt, 1)}


def timed(func: object, repeat: int) -> dict[str, float]:
    func()  # warm: connections, caches, the first plan
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000)
    return summary(out)


def measure(repeat: int, bookings: int) -> dict:
    """Runs in a child process whose ``sys.path`` starts with the checkout being timed."""
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from bookings import services
    from bookings.models import Service
    from dashboard.selectors import dashboard_stats

    staff = get_user_model().objects.get(username="hist-staff")
    api = Client(headers={"authorization": f"Bearer {AccessToken.for_user(staff)}"})
    admin = Client()
    admin.force_login(staff)

    def ok(client: Client, url: str) -> dict | str:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        return response.json() if response["content-type"].startswith("application/json") else response.content

    first = ok(api, "/api/bookings/")
    if "count" in first:  # numbered pages
        deep = "/api/bookings/?page=500"
    else:  # a cursor: the 500th page is where 499 ``next`` links lead
        deep = first["next"]
        for _ in range(498):
            deep = ok(api, deep)["next"]
    number = f"H{bookings // 2:07d}"
    found = ok(admin, f"/admin/bookings/booking/?q={number}")
    assert number.encode() in found, "the admin search did not find the booking"

    results = {
        "dashboard figures": timed(dashboard_stats, repeat),
        "staff list, first page": timed(lambda: ok(api, "/api/bookings/"), repeat),
        "staff list, page 500": timed(lambda: ok(api, deep), repeat),
        "admin booking list": timed(lambda: ok(admin, "/admin/bookings/booking/"), repeat),
        "admin search by number": timed(lambda: ok(admin, f"/admin/bookings/booking/?q={number}"), repeat),
        "admin search by username": timed(lambda: ok(admin, "/admin/bookings/booking/?q=hist-c4242"), repeat),
    }
    service = Service.objects.order_by("pk").first()
    offers = []
    for i in range(ACCEPTS + 1):
        customer = get_user_model().objects.create(username=f"hist-accept-{os.getpid()}-{i}")
        booking = services.booking_create(
            customer=customer,
            service=service,
            scheduled_at=timezone.now() + timedelta(hours=1),
            address="accept",
            latitude=CITY[0],
            longitude=CITY[1],
        )
        assert booking.partner_id is not None, "nobody was offered the booking"
        offers.append(booking)
    accepts = iter(offers)
    results["accept"] = timed(
        lambda: services.booking_accept(booking_id=(b := next(accepts)).pk, partner_user=b.partner.user), ACCEPTS
    )
    return results


def child(phase: str, tree: Path, env: dict[str, str], *args: str) -> dict:
    """Run a phase in a fresh interpreter whose Django is ``tree``'s; its last stdout line is JSON."""
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); sys.path.insert(1, {str(ROOT / 'bench')!r});"
        f"import json, history; print(json.dumps(history.{phase}({', '.join(args)})))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{phase} in {tree} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="another checkout to time on the same data (first)")
    parser.add_argument("--out", type=Path, default=RESULTS / "history.json")
    args = parser.parse_args()
    if not 10_000 <= args.bookings < 10_000_000:
        raise SystemExit("--bookings from 10,000 (the 500th page of 20 must exist) to 9,999,999 (H + 7 digits)")

    for sql in (f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}"):
        subprocess.run(["psql", f"{SERVER}/postgres", "-qc", sql], check=True, capture_output=True)
    env = production_env(f"{SERVER}/{DATABASE}")
    env.pop("REDIS_URL", None)  # in process: the in-memory layer and cache
    env["ALLOWED_HOSTS"] = "testserver"
    report: dict = {"bookings": args.bookings, "partners": PARTNERS, "customers": max(1, args.bookings // 10)}
    report.update(child("load", ROOT, env, str(args.bookings)))
    print(
        f"loaded {args.bookings:,} bookings in {report['load_seconds']} s; tallies rebuilt in "
        f"{report['tally_rebuild_seconds']} s",
        flush=True,
    )
    trees = {"baseline": args.baseline, "this": ROOT} if args.baseline else {"this": ROOT}
    for name, tree in trees.items():
        report[name] = child("measure", tree.resolve(), env, str(args.repeat), str(args.bookings))
    print_table(report, list(trees))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


def print_table(report: dict, trees: list[str]) -> None:
    print(f"\n{report['bookings']:,} past bookings, p50 (max) in ms")
    print(f"{'what':<28}" + "".join(f"{name:>22}" for name in trees))
    for what in report[trees[-1]]:
        cells = [f"{report[t][what]['p50_ms']:>12} ({report[t][what]['max_ms']})" for t in trees]
        print(f"{what:<28}" + "".join(f"{cell:>22}" for cell in cells))


if __name__ == "__main__":
    main()
