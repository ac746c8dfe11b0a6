"""Safety alerts (contract 10.3) on several server processes, a paused Redis and a cut connection.

Real uvicorn processes on the test database and real Redis, python-socketio clients for the
staff desks and phones, the official socket.io-client for the recovery of a missed alert.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from config import rooms
from config.realtime import recovery_store
from config.realtime.server import sio
from messaging import safety
from messaging.models import SafetyAlert
from tests.live import Client, ServerProcess, TcpProxy, eventually, require_node, run, token_for
from tests.realtime.test_cluster import cluster_env, own_redis  # noqa: F401 - fixtures
from tests.realtime.test_recovery import NodeClient, kind

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]
ESCALATE = 1.0  # SAFETY_ESCALATE_SECONDS of these servers


def alerts_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "SAFETY_ESCALATE_SECONDS": str(ESCALATE), "SAFETY_SWEEP_INTERVAL": "0.1"}


@pytest.fixture(scope="module")
def servers(cluster_env) -> Iterator[tuple[ServerProcess, ServerProcess]]:  # noqa: F811
    a, b = ServerProcess(alerts_env(cluster_env)), ServerProcess(alerts_env(cluster_env))
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


def acknowledge_over_rest(url: str, staff, alert_id: str) -> dict:
    request = urllib.request.Request(
        f"{url}/api/safety/{alert_id}/acknowledge/",
        data=b"",
        headers={"Authorization": f"Bearer {token_for(staff)}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def of(alert_id: str):
    return lambda payload: payload["alertId"] == alert_id


def test_an_alert_raised_on_a_reaches_staff_on_b_in_under_a_second(servers, customer, staff):
    a, b = servers

    async def scenario() -> str:
        desk = await Client(b.url, "/admin").connect(token_for(staff))
        phone = await Client(a.url, "/customer").connect(token_for(customer))
        started = time.monotonic()
        ack = await phone.call("safety:alert", {"latitude": 12.97, "longitude": 77.59, "clientAlertId": "x-1"})
        assert ack["ok"], ack
        [alert] = await desk.wait_for("safety:alert", where=of(ack["alertId"]), timeout=1.0)
        took = time.monotonic() - started
        print(f"A -> B in {took * 1000:.0f} ms")
        assert took < 1.0 and alert["location"] == {"latitude": 12.97, "longitude": 77.59}
        assert alert["raisedBy"]["role"] == "customer" and alert["escalation"] == 0
        for client in (desk, phone):
            await client.close()
        return ack["alertId"]

    alert_id = run(scenario())
    acknowledge_over_rest(a.url, staff, alert_id)  # no escalation left running for the next test


def test_escalation_goes_once_per_number_across_processes_and_the_acknowledgement_stops_it_everywhere(
    servers, customer, staff
):
    """Both processes sweep every 0.1 s for alerts due every second: each desk (one per process) gets
    escalations 0, 1, 2 exactly once each; after staff acknowledge on B, no desk gets another for
    more than three periods, and the raiser hears the acknowledgement."""
    a, b = servers

    async def scenario() -> None:
        desks = [await Client(server.url, "/admin").connect(token_for(staff)) for server in (a, b)]
        phone = await Client(a.url, "/customer").connect(token_for(customer))
        ack = await phone.call("safety:alert", {"note": "someone is following me"})
        alert_id = ack["alertId"]
        for desk in desks:
            await desk.wait_for(
                "safety:alert", where=lambda m: m["alertId"] == alert_id and m["escalation"] == 2, timeout=6
            )
        await asyncio.to_thread(acknowledge_over_rest, b.url, staff, alert_id)  # ~1 s before escalation 3 is due
        for client in (*desks, phone):
            [heard] = await client.wait_for("safety:acknowledged", where=of(alert_id))
            assert heard["by"]["id"] == str(staff.pk)
        before = [[m["escalation"] for m in desk.events["safety:alert"] if m["alertId"] == alert_id] for desk in desks]
        for numbers in before:
            assert numbers == list(range(len(numbers))) and len(numbers) >= 3, before  # once each, in order
        await asyncio.sleep(3.5 * ESCALATE)
        after = [[m["escalation"] for m in desk.events["safety:alert"] if m["alertId"] == alert_id] for desk in desks]
        assert after == before, "an escalation after the acknowledgement"
        for client in (*desks, phone):
            await client.close()

    run(scenario())
    alert = SafetyAlert.objects.get()
    assert alert.acknowledged_by_id == staff.pk and alert.next_escalation_at is None


def test_two_staff_acknowledging_at_once_on_two_processes_one_wins_and_both_agree(servers, staff):
    """The same alert acknowledged at the same instant over REST on A and over the socket on B, ten
    times: exactly one wins each time, the other is CONFLICT naming the winner, and each desk hears
    one ``safety:acknowledged`` per alert."""
    from tests.factories import StaffFactory, UserFactory

    a, b = servers
    other = StaffFactory(username="ops2")

    def over_rest(alert_id: str) -> tuple[int, dict]:
        try:
            return 200, acknowledge_over_rest(a.url, staff, alert_id)
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    async def scenario() -> None:
        desk_a = await Client(a.url, "/admin").connect(token_for(staff))
        desk_b = await Client(b.url, "/admin").connect(token_for(other))
        for _ in range(10):
            raiser = await asyncio.to_thread(UserFactory)  # one each: RATE_SAFETY is 3 per 10 s
            alert, _ = await asyncio.to_thread(safety.safety_alert_raise, user=raiser, role="customer")
            alert_id = str(alert.pk)
            rest, sock = await asyncio.gather(
                asyncio.to_thread(over_rest, alert_id), desk_b.call("safety:acknowledge", {"alertId": alert_id})
            )
            status, body = rest
            assert (status == 200) != bool(sock["ok"]), (rest, sock)
            winner = body if status == 200 else {k: sock[k] for k in ("alertId", "by", "at")}
            loser = sock["error"] if status == 200 else body
            assert loser["code"] == "CONFLICT" and loser["details"] == winner, (winner, loser)
            for desk in (desk_a, desk_b):
                await desk.wait_for("safety:acknowledged", where=of(alert_id))
        await asyncio.sleep(0.5)
        for desk in (desk_a, desk_b):
            heard = [m["alertId"] for m in desk.events["safety:acknowledged"]]
            assert len(heard) == len(set(heard)) == 10
        for client in (desk_a, desk_b):
            await client.close()

    run(scenario())
    assert SafetyAlert.objects.filter(acknowledged_at=None).count() == 0


@pytest.mark.server_errors(r"channel layer unavailable")
def test_with_redis_paused_a_staff_socket_on_the_same_process_gets_the_alert_at_once(
    own_redis,  # noqa: F811
    cluster_env,  # noqa: F811
    customer,
    staff,
):
    """Redis stops answering (SIGSTOP): the alert waits 0.1 s for its log write
    (``URGENT_STORE_TIMEOUT``), not the 0.5 s an ordinary event may wait, and the desk on the phone's
    process has it at once; the write goes on, and Redis back within ``STORE_TIMEOUT`` lands it:
    no breaker opens for a pause that short."""
    port, _ = own_redis
    a = ServerProcess(alerts_env({**cluster_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})).start()
    info = subprocess.run(["redis-cli", "-p", str(port), "info", "server"], capture_output=True, text=True, timeout=10)
    redis_pid = int(info.stdout.split("process_id:")[1].split()[0])

    async def scenario() -> None:
        desk = await Client(a.url, "/admin").connect(token_for(staff))
        phone = await Client(a.url, "/customer").connect(token_for(customer))
        os.kill(redis_pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            started = time.monotonic()
            ack = await phone.call("safety:alert", {"note": "paused"}, timeout=5)
            acked = time.monotonic()
            assert ack["ok"], ack
            await desk.wait_for("safety:alert", where=of(ack["alertId"]), timeout=2)
            took, after_ack = time.monotonic() - started, time.monotonic() - acked
            print(f"with Redis paused: {took * 1000:.0f} ms after the press, {after_ack * 1000:.0f} ms after its ack")
            # The ack leaves at the commit, the alert once its log write gave up: what is between
            # them is the wait on Redis (about 0.1 s; an ordinary event's would be 0.5 s).
            assert took < 1.0 and after_ack < 0.3, (took, after_ack)
        finally:
            os.kill(redis_pid, signal.SIGCONT)
            paused.append(time.monotonic() - stopped)
        for client in (desk, phone):
            await client.close()

    paused: list[float] = []
    try:
        run(scenario())
    finally:
        a.stop()
    if paused[0] < recovery_store.STORE_TIMEOUT - 0.1:  # the late write landed (a longer pause may open it)
        assert "recovery log unavailable" not in a.output()


def test_recovery_replays_a_missed_alert_to_a_staff_socket(live_server_url, customer, other_customer, staff):
    """The official client on /admin loses its connection; an alert raised meanwhile is replayed to it,
    once, when it comes back within the window (``socket.recovered``)."""
    require_node()
    proxy = TcpProxy(live_server_url).start()
    node = NodeClient(proxy.url, "/admin", token_for(staff))
    try:
        first = node.wait(kind("connect"))
        seen, _ = safety.safety_alert_raise(user=customer, role="customer")
        node.wait(lambda line: line.get("name") == "safety:alert")  # a logged event: the client has an offset
        proxy.cut()
        gone = node.wait(kind("disconnect"))
        eventually(lambda: not sio.manager.is_connected(first["id"], rooms.ADMIN), what="server saw the cut")
        missed, _ = safety.safety_alert_raise(user=other_customer, role="customer", note="while you were away")
        proxy.reopen()
        back = node.wait(kind("connect"))
        assert back["recovered"] is True and back["id"] == first["id"]
        replayed = [p for name, p in node.events_after(gone) if name == "safety:alert"]
        assert [(p["alertId"], p["note"]) for p in replayed] == [(str(missed.pk), "while you were away")]
        assert seen.pk != missed.pk
    finally:
        node.close()
        proxy.stop()
