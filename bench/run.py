"""The product benchmark: the real server, real tokens and bookings, the official client.

    python bench/run.py                      # the full run (several minutes)
    python bench/run.py --quick              # a smoke run, under a minute
    python bench/run.py --server daphne      # daphne instead of uvicorn
    python bench/run.py --processes 2        # two processes sharing Redis (REDIS_URL or the local one)
    python bench/run.py --processes 4 --colocate   # each customer on its partner's process
    python bench/run.py --fleet 8            # 8 processes, a few sockets each: what each one decodes
    python bench/run.py --processes 2 --colocate --redis-delay 20   # a Redis that answers slowly
    python bench/run.py --idle 10000 --hold 60   # 10,000 idle sockets kept across heartbeats
    python bench/run.py --churn 70:300       # connection churn: RSS per round beside bare python-socketio

It prepares N partner+customer pairs with bookings in PARTNER_ACCEPTED directly through the
ORM (PostgreSQL database ``homeservices_bench``, or ``$BENCH_DATABASE``, when PostgreSQL answers, else SQLite), mints
real JWTs, starts the server as production would, and runs ``bench/loadgen.js``
(socket.io-client 4.8 over websockets). Prints a table; writes ``bench/results/latest.json``
(schema: ``docs/performance.md``).
"""

import argparse
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import anchors
import prerequisites

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# BENCH_DATABASE: another name, so that two checkouts can bench at once without dropping each other's.
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "homeservices_bench")
PG_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}"
SCHEMA_VERSION = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_up() -> bool:
    return (
        shutil.which("pg_isready") is not None
        and subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0
    )


def database_url(kind: str) -> str:
    if kind == "postgres" or (kind == "auto" and postgres_up()):
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", BENCH_DATABASE], check=True
        )
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", BENCH_DATABASE], check=True)
        return PG_URL
    path = ROOT / "bench" / "bench.sqlite3"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def prepare(env: dict[str, str], pairs: int, accepts: int) -> dict:
    """Users, partners, bookings through the ORM; tokens minted for them. Runs in a child process."""
    code = f"""
import json, django, os
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import timedelta
from decimal import Decimal
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from bookings.models import Booking, Service
from partners.models import Partner
N, A = {pairs}, {accepts}
service = Service.objects.create(name="House Cleaning", price=Decimal("999.00"))
users = User.objects.bulk_create([User(username=f"c{{i}}", first_name=f"C{{i}}") for i in range(N)]
                                 + [User(username=f"p{{i}}", first_name=f"P{{i}}") for i in range(N)])
customers, partner_users = users[:N], users[N:]
Partner.objects.bulk_create([Partner(user=u, name=u.first_name, phone="+91", kyc_status="APPROVED",
                                     last_latitude=28.6, last_longitude=77.2) for u in partner_users])
when = timezone.now() + timedelta(hours=2)
def booking(i, status):
    return Booking(number=f"BK{{len(made):06d}}", customer=customers[i], partner_id=partner_users[i].pk,
                   service=service, status=status, scheduled_at=when, address="1 Bench St",
                   latitude=28.6, longitude=77.2, amount=service.price)
made = []
for i in range(N):
    made.append(booking(i, "PARTNER_ACCEPTED"))
for k in range(A):
    made.append(booking(k % N, "PARTNER_ASSIGNED"))
Booking.objects.bulk_create(made)
life = timedelta(hours=6)
def tok(u):
    t = AccessToken.for_user(u); t.set_exp(lifetime=life); return str(t)
plan = {{"pairs": [{{"partner_token": tok(partner_users[i]), "customer_token": tok(customers[i]),
                    "booking_id": str(made[i].pk), "partner_id": str(partner_users[i].pk)}} for i in range(N)],
        "accepts": [{{"pair": k % N, "booking_id": str(made[N + k].pk)}} for k in range(A)]}}
print(json.dumps(plan))
"""
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def production_env(db_url: str) -> dict[str, str]:
    """The environment of a server started as production starts it, on loopback."""
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        # Production settings refuse to start without these; TLS ends nowhere on loopback.
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        # Thousands of load-generator sockets connect from one loopback address.
        "RATE_CONNECT_ADDRESS": "100000000",
        "SOCKETIO_SESSIONS_PER_ADDRESS": "100000000",
    }


def uvicorn_command(app: str, port: int, *, ws: str, extra: list[str] = ()) -> list[str]:
    """uvicorn as production runs it (uvloop, httptools), on a loopback port."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws",
        ws,
        "--no-access-log",
        "--no-proxy-headers",  # as make serve: config/proxies.py alone reads forwarding headers
        "--log-level",
        "warning",
        "--backlog",
        "4096",
        *extra,
    ]


PRODUCT_WS = "config.realtime.websocket_protocol:WebSocketProtocol"  # as make serve runs it


def start_servers(kind: str, count: int, env: dict[str, str], cwd: Path = ROOT) -> list[tuple[subprocess.Popen, str]]:
    """``count`` server processes as production runs them, from the source tree ``cwd``."""
    servers = []
    for _ in range(count):
        port = free_port()
        if kind == "uvicorn":
            ws = os.environ.get("BENCH_UVICORN_WS", PRODUCT_WS)
            # As make serve: Engine.IO's heartbeat is the one. Only for the product's protocol:
            # websockets' legacy one would ping in a loop with an interval of 0.
            no_keepalive = ("--ws-ping-interval", "0") if ws == PRODUCT_WS else ()
            cmd = uvicorn_command(
                "config.asgi:application",
                port,
                ws=ws,
                extra=[
                    *("--ws-per-message-deflate", os.environ.get("BENCH_WS_DEFLATE", "false")),
                    *no_keepalive,
                    *("--lifespan", "on"),
                ],
            )
        else:
            cmd = [
                sys.executable,
                "-m",
                "daphne",
                "-e",
                f"tcp:port={port}:interface=127.0.0.1:backlog=4096",
                "config.asgi:application",
            ]
        log = open(RESULTS / f"server-{kind}-{len(servers)}.log", "w")  # noqa: SIM115
        servers.append(
            (subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT), f"http://127.0.0.1:{port}")
        )
    for proc, url in servers:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/api/services/", timeout=2).read()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server {url} did not start") from None
                time.sleep(0.2)
    return servers


def run_loadgen(plan: dict, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        plan_path, out_path = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan_path.write_text(json.dumps(plan))
        env = {**os.environ, "NODE_PATH": str(ROOT / "tests" / "js" / "node_modules")}
        subprocess.run(
            ["node", str(ROOT / "bench" / "loadgen.js"), "--plan", str(plan_path), "--out", str(out_path)],
            env=env,
            timeout=timeout,
            check=False,
        )
        return json.loads(out_path.read_text())


def cpu_per_update_us(step: dict) -> float:
    """Server CPU (all processes) per delivered update, in microseconds."""
    delivered_per_s = step["offered_rate"] * step["delivered_ratio"]
    return round(step["server_cpu_pct"] / 100 * 1e6 / delivered_per_s, 1) if delivered_per_s else 0.0


def broker_counts(servers: list[tuple[subprocess.Popen, str]]) -> list[float]:
    """What each process decoded from the broker (``homeservices_broker_messages_total``, all kinds)."""
    counts = []
    for _, url in servers:
        try:
            text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
        except OSError:
            counts.append(-1.0)
            continue
        counts.append(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("homeservices_broker_messages_total{")
            )
        )
    return counts


def table(result: dict) -> str:
    r = result["loadgen"]
    lines = [
        f"server {result['config']['server']} x{result['config']['processes']}, {result['config']['pairs']} pairs, "
        f"db {result['config']['database']}, layer {result['config']['layer']}",
        f"connect ramp: {r['ramp']['connected']}/{r['ramp']['sockets_wanted']} sockets in {r['ramp']['ramp_s']} s "
        f"(connect p50 {r['ramp']['connect_ms_p50']} ms, p99 {r['ramp']['connect_ms_p99']} ms)",
        f"booking:track burst: every answer in {r['track'].get('first_answers_s')} s, first try refused "
        f"{r['track'].get('first_refused')} {r['track'].get('codes', {})}; all {r['track']['acked']} tracked "
        f"after retries in {r['track']['track_s']} s, failed {r['track']['failed']}, "
        f"disconnects {r['track'].get('disconnects', 0)}"
        if r.get("track")
        else "booking:track: skipped (idle run)",
        f"idle: {r['idle']['rss_per_socket_kib']} KiB per socket "
        f"({r['idle']['server_rss_idle_kib'] / 1024:.0f} MiB total)",
    ]
    if r.get("hold"):
        h = r["hold"]
        lines.append(f"hold {h['seconds']} s: {h['still_connected']} still connected, {h['disconnects']} disconnects")
    if r["steps"]:
        lines.append("")
        columns = [
            "updates/s",
            "sent",
            "delivered",
            "misrouted",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "server CPU %",
            "server CPU µs per update",
            "loadgen CPU %",
            "pass",
        ]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        for s in r["steps"]:
            lines.append(
                f"| {s['offered_rate']} | {s['sent']} | {s['delivered_ratio'] * 100:.3f} % | {s['misrouted']} "
                f"| {s['lat_ms_p50']} | {s['lat_ms_p95']} | {s['lat_ms_p99']} | {s['lat_ms_max']} "
                f"| {s['server_cpu_pct']} | {cpu_per_update_us(s)} | {s['loadgen_cpu_pct']} "
                f"| {'yes' if s['pass'] else 'NO'} |"
            )
    if result.get("broker"):
        b = result["broker"]
        lines.append(
            f"broker messages decoded per process: {b['per_process']} "
            f"({b['per_process_per_update']} per update a process relays)"
        )
    for c in r.get("chat") or []:
        lines.append(
            f"chat {c['rate']}/s: delivered {c['received']}/{c['sent']}, p50 {c['lat_ms_p50']} ms, "
            f"p99 {c['lat_ms_p99']} ms, max {c['lat_ms_max']} ms, server CPU {c['server_cpu_pct']} %"
        )
    if r.get("accept"):
        a = r["accept"]
        lines.append(
            f"accept -> status_updated {a['rate']}/s: {a['received']}/{a['sent']}, p50 {a['lat_ms_p50']} ms, "
            f"p99 {a['lat_ms_p99']} ms, max {a['lat_ms_max']} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument(
        "--fleet",
        type=int,
        metavar="N",
        help="a bigger cluster without the CPU for it: N processes, 8 pairs each, 200 updates/s; "
        "reports what each process decodes from the broker",
    )
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--no-broker",
        action="store_true",
        help="no Redis: each process on its own (with --colocate: the cost of N processes, nothing crossing)",
    )
    parser.add_argument(
        "--redis-delay", type=float, metavar="MS", help="Redis behind a proxy that delays each chunk MS each way"
    )
    parser.add_argument(
        "--colocate", action="store_true", help="each customer on its partner's process (nothing crosses the broker)"
    )
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--fanout", type=int, default=1, help="customer sockets tracking each booking")
    parser.add_argument("--steps", default="500:10,1000:20,1500:20,2000:20,2500:20")
    parser.add_argument("--chat", default="50:10,200:15", help="rate:seconds steps of message:send, '' to skip")
    parser.add_argument("--accepts", type=int, default=500, help="booking:accept count at --accept-rate")
    parser.add_argument("--accept-rate", type=int, default=50)
    parser.add_argument("--idle", type=int, default=0, help="idle-only run with this many sockets")
    parser.add_argument("--hold", type=int, default=0, help="seconds to hold idle sockets")
    parser.add_argument("--database", choices=["auto", "postgres", "sqlite"], default="auto")
    parser.add_argument("--gc", choices=["tuned", "default"], default="tuned")
    parser.add_argument("--stop-on-fail", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    parser.add_argument("--churn", metavar="ROUNDS:SOCKETS", help="connection churn run (bench/churn.py) only")
    parser.add_argument("--diagnostics", action="store_true", help="servers log loop stalls and GC pauses")
    parser.add_argument("--profile", action="store_true", help="py-spy the servers into bench/results/profile-*.txt")
    parser.add_argument(
        "--anchors",
        choices=["auto", "yes", "no"],
        default="auto",
        help="then Node socket.io and bare python-socketio (../shared/anchors) with the same load, and the "
        "product's ratios to them (auto: when they are installed)",
    )
    args = parser.parse_args()

    if args.quick:
        args.pairs, args.steps, args.chat, args.accepts = 200, "500:5,1000:5", "30:5", 100
    if args.fleet:
        args.processes, args.pairs, args.steps, args.chat, args.accepts = args.fleet, 8 * args.fleet, "200:15", "", 0
    if args.idle:
        args.pairs, args.steps, args.chat, args.accepts = args.idle // 2, "", "", 0
        args.hold = args.hold or 60

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    db_url = database_url(args.database)
    env = {
        **production_env(db_url),
        "RATE_MESSAGES": "100000",
        "RATE_TYPING": "100000",
        "GC_TUNING": "1" if args.gc == "tuned" else "0",
    }
    if args.diagnostics:
        env["LOOP_DIAGNOSTICS"] = "1"
    if (args.processes > 1 and not args.no_broker) or args.redis_delay is not None:
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1")
    else:
        env.pop("REDIS_URL", None)
    if args.redis_delay is not None:
        import delay_proxy

        upstream = urllib.parse.urlsplit(env["REDIS_URL"])
        port = free_port()
        delay_proxy.start_in_thread(port, (upstream.hostname, upstream.port or 6379), args.redis_delay)
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}{upstream.path}"
    if args.churn:
        import churn

        # Memory is measured here: no event refused for rate or load.
        churn.main(args.churn, {**env, "RATE_TRACK": "1000000", "SOCKETIO_DB_QUEUE_MAX": "1000000"})
        return
    print(f"preparing {args.pairs} pairs on {db_url.split('://')[0]} ...", flush=True)
    plan = prepare(env, args.pairs, args.accepts)
    servers = start_servers(args.server, args.processes, env)
    steps = [{"rate": int(r), "seconds": float(s)} for r, s in (x.split(":") for x in args.steps.split(",") if x)]
    plan.update(
        urls=[url for _, url in servers],
        server_pids=[p.pid for p, _ in servers],
        fanout=args.fanout,
        colocate=args.colocate,
        steps=steps,
        chat=[{"rate": int(r), "seconds": float(sec)} for r, sec in (x.split(":") for x in args.chat.split(",") if x)],
        accept_rate=args.accept_rate if args.accepts else 0,
        idle_settle_s=5 if args.quick else 10,
        hold_s=args.hold,
        skip_track=bool(args.idle),
        stop_on_fail=args.stop_on_fail,
        p99_limit_ms=50,
        concurrency=100,
        max_runtime_s=1500,
    )
    spies = []
    if args.profile:
        spies = [
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "-o",
                    str(RESULTS / f"profile-{i}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, (proc, _) in enumerate(servers)
        ]
    broker = None
    try:
        loadgen = run_loadgen(plan, timeout=1600)
        if "REDIS_URL" in env:
            per_process = broker_counts(servers)
            # Per update a process relays (its partners send 1/N of them): 1, flat as N grows, when
            # each process decodes only its rooms' messages; N when every process decodes them all.
            own = (sum(step["sent"] for step in loadgen["steps"]) or 1) / args.processes
            broker = {
                "per_process": per_process,
                "per_process_per_update": round(sum(per_process) / len(per_process) / own, 3),
            }
    finally:
        for spy in spies:
            spy.send_signal(2)
            spy.wait(timeout=30)
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    result = {
        "schema": SCHEMA_VERSION,
        "measured_at": datetime.now(UTC).isoformat(),
        "config": {
            "server": args.server,
            "processes": args.processes,
            "pairs": args.pairs,
            "fanout": args.fanout,
            "colocate": args.colocate,
            "database": db_url.split("://")[0],
            "layer": "in-memory" if "REDIS_URL" not in env else "redis-pubsub",
            "redis_delay_ms": args.redis_delay,
            "gc": args.gc,
            "quick": args.quick,
            "idle_only": bool(args.idle),
        },
        "loadgen": loadgen,
        "broker": broker,
    }
    if args.anchors == "yes" or (args.anchors == "auto" and anchors.installed() and loadgen["steps"]):
        result["anchors"] = anchors.run(args.pairs, args.steps)
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(table(result))
    if result.get("anchors"):
        print("\nbeside the anchors, same run (product / anchor):\n" + anchors.ratios(loadgen, result["anchors"]))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    prerequisites.ensure()
    main()
