"""A morning's burst: logins and sign-ups with production's password hashing, against live sockets.

    python bench/morning.py                       # two processes, PostgreSQL + Redis, the full mix
    python bench/morning.py --checkout /tmp/old   # the same burst against another checkout's server

What it does, in one run (contract 9.5, docs/performance.md "Load isolation"):

- two server processes as ``make serve`` runs them (uvicorn, uvloop, httptools, ``DEBUG=0``,
  production's PBKDF2), on PostgreSQL and Redis;
- the tracking hot path running throughout: ``--pairs`` partners each sending
  ``location:update`` (with an ack) so that together they send ``--rate`` a second, to
  customers tracking their bookings on the other process; a worker process of its own
  sends them, so that the burst's client does not slow them down;
- after a warm-up, the burst: ``--requests`` REST requests with ``--in-flight`` at a time (a
  fifth sign-ups, a fifth logins, the rest cheap reads: services, bookings, notifications)
  and ``--connects`` socket connects, all at once.

It reports, per kind: answered, refused (503 with Retry-After), unanswered (no answer in
15 s), p50 / p99 latency; connects completed, refused UNAVAILABLE and timed out (20 s), with
their p99; and the tracking acks' p50 / p99 during the burst beside before it.
"""

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

ROOT = bench.ROOT
LOGIN_USERS = 20
PASSWORD = "tangerine-kettle-42"  # passes the password validators (sign-ups)


def p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def with_passwords(env: dict[str, str]) -> None:
    """Give the first customers a real PBKDF2 hash (one hash, shared: the bench measures logins, not set-up)."""
    code = f"""
import django
django.setup()
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User
encoded = PBKDF2PasswordHasher().encode({PASSWORD!r}, "morningsalt")
User.objects.filter(username__in=[f"c{{i}}" for i in range({LOGIN_USERS})]).update(password=encoded)
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


# ---------------------------------------------------------------- the tracking worker (its own process)
async def tracking(plan: dict[str, Any], seconds: float, rate: int) -> dict[str, Any]:
    import socketio

    urls, pairs = plan["urls"], plan["pairs"]
    acks: list[tuple[float, float]] = []  # (sent at, round trip ms)
    clients = []

    async def connect(url: str, namespace: str, token: str) -> Any:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, namespaces=[namespace], auth={"token": token}, transports=["websocket"])
        clients.append(client)
        return client

    partners = []
    for i, pair in enumerate(pairs):
        customer = await connect(urls[(i + 1) % len(urls)], "/customer", pair["customer_token"])
        await customer.call("booking:track", pair["booking_id"], namespace="/customer")
        partners.append(await connect(urls[i % len(urls)], "/partner", pair["partner_token"]))
    interval = len(partners) / rate
    print(json.dumps({"ready": time.time()}), flush=True)

    async def drive(index: int, client: Any) -> None:
        await asyncio.sleep(interval * index / len(partners))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent = time.time()
            started = time.perf_counter()
            try:
                await client.call("location:update", {"latitude": 28.6, "longitude": 77.2}, namespace="/partner")
                acks.append((sent, (time.perf_counter() - started) * 1000))
            except Exception:
                acks.append((sent, float("inf")))
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))

    await asyncio.gather(*(drive(i, c) for i, c in enumerate(partners)))
    for client in clients:
        await client.disconnect()
    return {"acks": acks}


# ---------------------------------------------------------------- the burst (this process)
def request_of(i: int, plan: dict[str, Any]) -> tuple[str, str, str, dict[str, Any] | None, str | None]:
    token = plan["pairs"][i % len(plan["pairs"])]["customer_token"]
    kind = i % 5
    if kind == 0:
        body = {"username": f"m{secrets.token_hex(6)}", "password": PASSWORD, "name": "New", "phone": "1"}
        return "sign-up", "POST", "/api/auth/register/", body, None
    if kind == 1:
        return "login", "POST", "/api/auth/token/", {"username": f"c{i % LOGIN_USERS}", "password": PASSWORD}, None
    path = ("/api/services/", "/api/bookings/", "/api/notifications/")[i % 3]
    return "read", "GET", path, None, token


async def burst(plan: dict[str, Any], requests: int, in_flight: int, connects: int) -> dict[str, Any]:
    import aiohttp
    import socketio

    urls = plan["urls"]
    results: dict[str, list[tuple[int, float]]] = {"sign-up": [], "login": [], "read": []}
    outcomes: list[tuple[str, float]] = []
    gate = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:

        async def one(i: int) -> None:
            kind, method, path, body, token = request_of(i, plan)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with gate:
                started = time.perf_counter()
                try:
                    async with http.request(method, urls[i % 2] + path, json=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                        if status == 503 and not response.headers.get("Retry-After"):
                            status = -503  # refused without saying when to come back: counted apart
                except TimeoutError:
                    status = 0
                results[kind].append((status, (time.perf_counter() - started) * 1000))

        async def connect(i: int) -> None:
            client = socketio.AsyncClient(reconnection=False)
            refused: list[Any] = []
            client.on("connect_error", lambda data: refused.append(data), namespace="/customer")
            token = plan["pairs"][i % len(plan["pairs"])]["customer_token"]
            started = time.perf_counter()
            try:
                await client.connect(
                    urls[i % 2],
                    namespaces=["/customer"],
                    auth={"token": token},
                    transports=["websocket"],
                    wait_timeout=20,
                )
                outcomes.append(("connected", (time.perf_counter() - started) * 1000))
                await client.disconnect()
            except Exception:
                code = (refused[0] or {}).get("data", {}).get("code") if refused else None
                outcomes.append((code or "timed out", (time.perf_counter() - started) * 1000))

        started = time.time()
        await asyncio.gather(*(one(i) for i in range(requests)), *(connect(i) for i in range(connects)))
    return {"started": started, "ended": time.time(), "rest": results, "connects": outcomes}


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far (``/proc/<pid>/stat``)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def summary(burst_result: dict[str, Any], acks: list[tuple[float, float]]) -> dict[str, Any]:
    rest = {}
    for kind, answers in burst_result["rest"].items():
        ok = [ms for status, ms in answers if 200 <= status < 300]
        rest[kind] = {
            "requests": len(answers),
            "ok": len(ok),
            "refused_503_retry_after": sum(1 for status, _ in answers if status == 503),
            "refused_without_retry_after": sum(1 for status, _ in answers if status == -503),
            "other": sorted(
                {status for status, _ in answers if status not in (0, 503, -503) and not 200 <= status < 300}
            ),
            "unanswered": sum(1 for status, _ in answers if status == 0),
            "p50_ms": p([ms for status, ms in answers if status], 0.5),
            "p99_ms": p([ms for status, ms in answers if status], 0.99),
        }
    connects = burst_result["connects"]
    kinds: dict[str, int] = {}
    for outcome, _ in connects:
        kinds[outcome] = kinds.get(outcome, 0) + 1
    during = [ms for at, ms in acks if burst_result["started"] <= at <= burst_result["ended"]]
    before = [ms for at, ms in acks if at < burst_result["started"]]
    return {
        "burst_s": round(burst_result["ended"] - burst_result["started"], 1),
        "rest": rest,
        "connects": {
            "outcomes": kinds,
            "p50_ms": p([ms for outcome, ms in connects if outcome == "connected"], 0.5),
            "p99_ms": p([ms for outcome, ms in connects if outcome == "connected"], 0.99),
        },
        "tracking": {
            "before_p50_ms": p(before, 0.5),
            "before_p99_ms": p(before, 0.99),
            "during_acks": len(during),
            "during_p50_ms": p(during, 0.5),
            "during_p99_ms": p(during, 0.99),
            "during_failed": sum(1 for ms in during if ms == float("inf")),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", default=str(ROOT), help="the server's source tree (another commit, to compare)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--connects", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=100, help="partner+customer pairs on the tracking hot path")
    parser.add_argument("--rate", type=int, default=1000, help="location updates a second, all partners together")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--tracking-seconds", type=float, default=90)
    parser.add_argument("--out", default=str(bench.RESULTS / "morning.json"))
    parser.add_argument("--tracking-worker", nargs=2, metavar=("PLAN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tracking_worker:
        plan = json.loads(Path(args.tracking_worker[0]).read_text())
        result = asyncio.run(tracking(plan, args.tracking_seconds, args.rate))
        Path(args.tracking_worker[1]).write_text(json.dumps(result))
        return

    db_url = bench.database_url("postgres")
    env = {
        **bench.production_env(db_url),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
        # The morning's own limits are not the subject: one address sends everything here.
        "THROTTLE_AUTH": "1000000/min",
        "THROTTLE_LOGIN": "1000000/min",
        "PASSWORD_HASH_PER_ADDRESS": "0",  # no share per address: they are all one here
        "THROTTLE_WRITES": "1000000/min",
        "RATE_LOCATION": "1000000",
        "RATE_CONNECT": "1000000",
    }
    print(f"preparing {args.pairs} pairs on PostgreSQL ...", flush=True)
    plan = bench.prepare(env, args.pairs, 0)
    with_passwords(env)
    server_env = {**env, "PYTHONPATH": args.checkout}
    servers = bench.start_servers("uvicorn", 2, server_env, cwd=Path(args.checkout))
    plan["urls"] = [url for _, url in servers]
    plan_path, tracking_out = bench.RESULTS / "morning-plan.json", bench.RESULTS / "morning-tracking.json"
    plan_path.write_text(json.dumps(plan))
    worker = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--tracking-worker",
            str(plan_path),
            str(tracking_out),
            "--rate",
            str(args.rate),
            "--tracking-seconds",
            str(args.tracking_seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(worker.stdout.readline())["ready"]  # every tracking socket is up
        pids = [proc.pid for proc, _ in servers]
        quiet = cpu_seconds(pids), time.monotonic()
        time.sleep(args.warmup)
        loud = cpu_seconds(pids), time.monotonic()
        print(
            f"burst: {args.requests} requests ({args.in_flight} in flight) + {args.connects} connects ...", flush=True
        )
        burst_result = asyncio.run(burst(plan, args.requests, args.in_flight, args.connects))
        after = cpu_seconds(pids), time.monotonic()
        worker.wait(timeout=args.tracking_seconds + 120)
    finally:
        if worker.poll() is None:
            worker.kill()
        for proc, _ in servers:
            proc.terminate()
            proc.wait(timeout=20)
        plan_path.unlink(missing_ok=True)
    acks = [tuple(a) for a in json.loads(tracking_out.read_text())["acks"]]
    tracking_out.unlink(missing_ok=True)
    cores = os.cpu_count() or 1
    server_cpu = {  # both processes together, in % of the machine's cores
        "tracking_only_pct": round(100 * (loud[0] - quiet[0]) / (loud[1] - quiet[1]) / cores, 1),
        "during_burst_pct": round(100 * (after[0] - loud[0]) / (after[1] - loud[1]) / cores, 1),
    }
    result = {"checkout": args.checkout, "config": vars(args), "server_cpu": server_cpu, **summary(burst_result, acks)}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
