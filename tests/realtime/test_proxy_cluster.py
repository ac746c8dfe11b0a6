"""``make cluster``: processes behind HAProxy with sticky sessions, used by official clients with default options.

200 socket.io-client 4.8 clients connect through the proxy's one port the way the event
document's examples do (long-polling first, then the websocket upgrade); each must
connect, upgrade, and hear events emitted by both processes; when one process stops,
its clients must come back through the proxy on the other.
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from bookings.models import BookingStatus as S
from tests.config.test_bounds import post_chunked
from tests.config.test_metrics import value
from tests.factories import BookingFactory, PartnerFactory, StaffFactory, UserFactory
from tests.live import free_port, run, token_for, watch_cluster_logs
from tests.realtime.make_cluster import cluster_python  # noqa: F401 - fixture
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.node]
ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 200


def get(url: str, timeout: float = 2) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:  # not listening yet
        return 0, b""


def post(url: str, token: str, body: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_make_cluster_serves_default_clients_through_haproxy(cluster_env, cluster_python, service):  # noqa: F811
    port = free_port()
    state_file = Path(tempfile.mkdtemp()) / "state.json"
    worker_logs = watch_cluster_logs(state_file)  # read by the log check after the test
    staff = StaffFactory()
    partner = PartnerFactory(services=[service])
    clients = []
    for i in range(CLIENTS):
        customer = UserFactory(username=f"crowd{i}")
        booking = BookingFactory(customer=customer, service=service, status=S.PENDING)
        clients.append({"token": token_for(customer), "booking_id": str(booking.pk)})
    # make cluster takes a list of Redis servers (a sharded broker): two "servers" here, one Redis's
    # two databases (pub/sub ignores the database, so rooms split over two shard connections).
    redis_url = cluster_env["REDIS_URL"]
    shards = f"{redis_url},{redis_url.rsplit('/', 1)[0]}/{(int(redis_url.rsplit('/', 1)[1] or 0) + 1) % 16}"
    env = {
        **os.environ,
        **cluster_env,
        **cluster_python["env"],
        "REDIS_URL": shards,
        "CLUSTER_STATE": str(state_file),
        "SHUTDOWN_TIMEOUT": "5",
    }
    cluster = subprocess.Popen(
        ["make", "cluster", "WORKERS=2", f"PORT={port}", *cluster_python["args"]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    node = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not (state_file.exists() and get(url + "/readyz")[0] == 200):
            assert cluster.poll() is None and time.monotonic() < deadline, "make cluster did not come up"
            time.sleep(0.3)
        state = json.loads(state_file.read_text())
        for worker in state["workers"]:  # both processes up, and marked up by HAProxy's checks (rise 2, inter 1 s)
            while get(f"http://127.0.0.1:{worker['port']}/readyz")[0] != 200:
                assert time.monotonic() < deadline, "a worker did not come up"
                time.sleep(0.3)
        time.sleep(2.5)
        assert get(url + "/static/admin/css/base.css")[0] == 200  # static files through the proxy too
        status, body = get(url + "/api/services/")
        assert status == 200 and json.loads(body)
        assert run(post_chunked(url, "/api/bookings/", 4 * 1024 * 1024))[0] == 411  # refused unread, at the proxy

        plan = Path(tempfile.mkdtemp()) / "plan.json"
        plan.write_text(json.dumps({"url": url, "clients": clients}))
        node = subprocess.Popen(
            ["node", "cluster_clients.mjs", str(plan)],
            cwd=ROOT / "tests" / "js",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

        def phase(command: str | None = None) -> dict:
            if command:
                node.stdin.write(command + "\n")
                node.stdin.flush()
            line = node.stdout.readline()
            assert line, "the client script ended early"
            return json.loads(line)

        connected = phase()
        print(f"through HAProxy: {connected}")
        assert connected["connected"] == connected["upgraded"] == connected["tracked"] == CLIENTS, connected
        # /metrics on either process sums both (multiprocess mode): 200 customer sockets in all.
        deadline = time.monotonic() + 5
        while (
            value(get(url + "/metrics")[1].decode(), "homeservices_sockets_connected", namespace="/customer") != CLIENTS
        ):
            assert time.monotonic() < deadline, get(url + "/metrics")[1].decode()[-2000:]
            time.sleep(0.3)

        # Each booking changes twice, once through each process's own port: every client hears
        # one event emitted on its own process and one emitted on the other.
        staff_token = token_for(staff)
        a, b = (f"http://127.0.0.1:{w['port']}" for w in state["workers"])
        for client in clients:
            booking = client["booking_id"]
            assert post(f"{a}/api/bookings/{booking}/assign/", staff_token, {"partnerId": partner.pk}) == 200
            assert post(f"{b}/api/bookings/{booking}/cancel/", staff_token, {"reason": "test"}) == 200
        events = phase("events")
        assert events["both"] == CLIENTS, events

        os.kill(state["workers"][0]["pid"], signal.SIGTERM)
        dropped = phase("dropped")
        print(
            f"after stopping one process: {dropped['dropped']} dropped, {dropped['reconnected']} back, "
            f"slowest {max(dropped['seconds'] or [0]):.2f} s"
        )
        # round robin put about half the clients on the stopped process; all of them came back
        assert CLIENTS // 4 <= dropped["dropped"] <= CLIENTS * 3 // 4, dropped
        assert dropped["reconnected"] == dropped["dropped"], dropped
        assert max(dropped["seconds"]) < 10
    finally:
        if node is not None and node.poll() is None:
            node.kill()
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        worker_logs.done = True
