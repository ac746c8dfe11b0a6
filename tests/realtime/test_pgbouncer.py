"""``make cluster PGBOUNCER=1``: eight processes share PostgreSQL through PgBouncer in transaction mode.

Eight processes with ``DB_POOL_SIZE`` 10 each could open 80 connections; through PgBouncer
PostgreSQL sees at most ``PGBOUNCER_POOL`` (20) during a 1,000-request burst of reads and
writes, and every request succeeds. (Contract 9.4.)
"""

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from django.db import connection

from bookings.models import Booking
from tests.factories import UserFactory
from tests.live import free_port, run, token_for, watch_cluster_logs
from tests.realtime.make_cluster import cluster_python  # noqa: F401 - fixture
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_proxy_cluster import get

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
WORKERS, POOL_SIZE, PGBOUNCER_POOL, REQUESTS = 8, 10, 20, 1000


def server_connections(database: str) -> int:
    """Sessions PostgreSQL holds on ``database``, this test's own excepted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        )
        return cursor.fetchone()[0]


def test_eight_processes_share_twenty_connections_through_pgbouncer(cluster_env, cluster_python, service):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL (.ci/run runs this on PostgreSQL)")
    database = connection.settings_dict["NAME"]
    customers = [UserFactory() for _ in range(20)]
    tokens = [token_for(customer) for customer in customers]
    port = free_port()
    state_file = Path(tempfile.mkdtemp()) / "state.json"
    worker_logs = watch_cluster_logs(state_file)  # read by the log check after the test
    before = server_connections(database)
    env = {
        **os.environ,
        **cluster_env,
        **cluster_python["env"],
        "CLUSTER_STATE": str(state_file),
        "SHUTDOWN_TIMEOUT": "5",
        "DB_POOL_SIZE": str(POOL_SIZE),
        "PGBOUNCER_POOL": str(PGBOUNCER_POOL),
    }
    cluster = subprocess.Popen(
        ["make", "cluster", f"WORKERS={WORKERS}", f"PORT={port}", "PGBOUNCER=1", *cluster_python["args"]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    peak = {"server": 0, "clients": 0}
    sampling = threading.Event()

    def sample() -> None:  # PostgreSQL's own count, every 20 ms, for the whole burst
        try:
            while not sampling.is_set():
                peak["server"] = max(peak["server"], server_connections(database) - before - 1)  # -1: this thread's
                time.sleep(0.02)
        finally:
            connection.close()

    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # PgBouncer may be installed first
        while not (state_file.exists() and get(url + "/readyz")[0] == 200):
            assert cluster.poll() is None and time.monotonic() < deadline, "make cluster did not come up"
            time.sleep(0.3)
        state = json.loads(state_file.read_text())
        assert state["pgbouncer_port"], state
        for worker in state["workers"]:
            while get(f"http://127.0.0.1:{worker['port']}/readyz")[0] != 200:
                assert time.monotonic() < deadline, "a worker did not come up"
                time.sleep(0.3)
        time.sleep(2.5)  # HAProxy marks every worker up (rise 2, inter 1 s)

        admin_password = (Path(state["pgbouncer_dir"]) / "admin-password").read_text().strip()

        def pgbouncer_clients() -> int:  # the workers' connections, as PgBouncer's console counts them
            console = ["-p", str(state["pgbouncer_port"]), "-U", state["pgbouncer_admin"], "pgbouncer"]
            out = subprocess.run(
                ["psql", "-h", "127.0.0.1", "-At", "-w", *console],
                input="SHOW CLIENTS;",
                capture_output=True,
                text=True,
                timeout=10,
                env={**os.environ, "PGPASSWORD": admin_password},
            )
            return sum(1 for line in out.stdout.splitlines() if f"|{database}|" in line)

        def request(i: int) -> tuple[str, str, dict | None, str | None]:
            token = tokens[i % len(tokens)]
            if i % 10 == 0:  # a write: one transaction, an insert and its events
                body = {
                    "serviceId": service.pk,
                    "scheduledAt": "2030-01-01T10:00:00Z",
                    "address": f"{i} Road",
                    "latitude": 28.6,
                    "longitude": 77.2,
                }
                return "POST", "/api/bookings/", body, token
            if i % 2:
                return "GET", "/api/bookings/", None, token
            return "GET", "/api/services/", None, None

        async def burst() -> list[tuple[int, str]]:
            gate = asyncio.Semaphore(100)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

                async def one(i: int) -> tuple[int, str]:
                    method, path, body, token = request(i)
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with gate, http.request(method, url + path, json=body, headers=headers) as response:
                        return response.status, (await response.text())[:200]

                return await asyncio.gather(*(one(i) for i in range(REQUESTS)), return_exceptions=True)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        answers = run(burst(), timeout=120)
        took = time.monotonic() - started
        peak["clients"] = pgbouncer_clients()
        sampling.set()
        sampler.join(timeout=5)
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)  # make, deploy/cluster.py, the workers, HAProxy, PgBouncer
        try:
            cluster.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        worker_logs.done = True
    failed = [a for a in answers if isinstance(a, BaseException) or a[0] not in (200, 201)]
    print(
        f"{REQUESTS} requests in {took:.1f} s; the workers hold {peak['clients']} connections to PgBouncer, "
        f"PostgreSQL saw at most {peak['server']} sessions above the baseline"
    )
    assert failed == [], failed[:5]
    assert Booking.objects.filter(address__endswith=" Road").count() == REQUESTS // 10
    assert 1 <= peak["server"] <= PGBOUNCER_POOL, peak
    assert peak["clients"] > PGBOUNCER_POOL, peak  # more client connections than server ones: pooled
