"""The broker's raw connection (``config.realtime.redis_wire``) reads ``REDIS_URL`` as redis-py
does: the cache and the recovery log use the same URL through redis-py, so a URL that works for
them works for the broker lanes, and one that fails, fails for both."""

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from config.realtime.redis_wire import Wire, command
from tests.live import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[int]:
    """A redis-server of the test's own that speaks TLS only, with a self-signed certificate
    (as managed Redis offers often do: their URLs say ``?ssl_cert_reqs=none``)."""
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.fail("redis-server and openssl are needed for the TLS test")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    certificate = ["-days", "1", "-subj", "/CN=redis.test", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", *certificate],
        check=True,
        capture_output=True,
        timeout=30,
    )
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *tls],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    yield port
    proc.terminate()
    proc.wait(10)


async def _wire_ping(url: str) -> object:
    wire = await Wire.open({"address": url})
    try:
        wire.write(command("PING"))
        async with asyncio.timeout(5):
            return (await wire.replies())[0]
    finally:
        wire.close()


async def _redis_py_ping(url: str) -> object:
    redis = Redis.from_url(url, socket_timeout=5)
    try:
        return await redis.ping()
    finally:
        await redis.aclose()


def test_a_tls_url_s_certificate_options_mean_what_they_mean_to_redis_py(tls_redis):
    """``rediss://...?ssl_cert_reqs=none`` (a self-signed server): redis-py connects, so must the
    lanes; without it the certificate is checked, and both refuse it."""

    async def scenario() -> None:
        lax = f"rediss://127.0.0.1:{tls_redis}?ssl_cert_reqs=none"
        assert await _redis_py_ping(lax) is True
        assert await _wire_ping(lax) == b"PONG"
        strict = f"rediss://127.0.0.1:{tls_redis}"
        for ping in (_redis_py_ping, _wire_ping):
            with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|Connection"):
                await ping(strict)

    asyncio.run(scenario())


CUT_OFF = """
import asyncio, subprocess, sys, time
from config.realtime import redis_wire
from config.realtime.redis_wire import Wire, command

redis_wire.SILENCE_LIMIT, redis_wire.KEEPALIVE_IDLE, redis_wire.KEEPALIVE_INTERVAL = 3, 1, 1

async def main() -> None:
    subscriber = await Wire.open({"address": "redis://10.9.0.2:6390"})
    subscriber.write(command("SUBSCRIBE", "room"))
    await subscriber.replies()
    # From now on nothing comes back: no RST, no FIN, as in a partition or a failover that moves the address.
    cut = "ip route add blackhole 10.9.0.1/32"  # the server's kernel answers nothing any more
    subprocess.run(["nsenter", "-t", sys.argv[1], "-n", *cut.split()], check=True)
    started = time.monotonic()
    try:
        await asyncio.wait_for(subscriber.replies(), 20)
    except OSError as exc:  # the kernel's ETIMEDOUT is a TimeoutError too, with an errno
        print(f"found out after {time.monotonic() - started:.1f} s" if exc.errno else "still waiting after 20 s")

asyncio.run(main())
"""


def test_a_subscriber_cut_off_without_a_reset_is_found_out():
    """An idle subscriber connection whose server vanishes without a reset (a partition, a failover
    that moves the address) is found out by TCP keepalive within seconds, not after the kernel's
    default two hours: the lane reconnects and its rooms hear again. In a network namespace of the
    test's own, so it needs root."""
    cut = _beside_a_redis_of_its_own(CUT_OFF)
    assert "found out after" in cut.stdout, (cut.stdout, cut.stderr[-2000:])


def _beside_a_redis_of_its_own(program: str) -> subprocess.CompletedProcess:
    """Run ``program`` (Python, given the inner namespace's pid) beside a Redis at 10.9.0.2:6390
    that it can cut off without a reset. Needs root: skips otherwise."""
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip", "redis-server")):
        pytest.skip("unshare, nsenter, ip and redis-server are needed to cut a connection without a reset")
    # Two network namespaces of the test's own joined by a veth pair: Redis in the inner one at
    # 10.9.0.2; the cut drops there, in silence, every packet back to the client.
    script = (
        "unshare -n sleep 60 & inner=$!; sleep 0.2;"
        " ip link add va type veth peer name vb && ip addr add 10.9.0.1/24 dev va && ip link set va up"
        " && ip link set vb netns $inner && nsenter -t $inner -n sh -c"
        " 'ip addr add 10.9.0.2/24 dev vb && ip link set vb up' || { kill $inner; exit 1; };"
        " nsenter -t $inner -n redis-server --bind 10.9.0.2 --port 6390 --protected-mode no --save ''"
        " --appendonly no >/dev/null 2>&1 & redis=$!;"
        f' sleep 0.5; {sys.executable} -c "$0" $inner; kill $redis $inner; wait'
    )
    cut = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, program],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    if "Operation not permitted" in cut.stderr:
        pytest.skip("no network namespace here (needs root)")
    return cut


LANE_CUT_OFF = """
import asyncio, logging, os, subprocess, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from config.realtime import redis_wire
from config.realtime.lanes import Lane

redis_wire.SILENCE_LIMIT, redis_wire.KEEPALIVE_IDLE, redis_wire.KEEPALIVE_INTERVAL = 3, 1, 1
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append(record.getMessage().split(" (")[0].split(";")[0])
logging.getLogger("config.realtime.manager").addHandler(handler)

async def until(condition, seconds=20):
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.05)

def route(verb):  # the server's kernel answers nothing while the route is a blackhole
    subprocess.run(["nsenter", "-t", sys.argv[1], "-n", "ip", "route", verb, "blackhole", "10.9.0.1/32"], check=True)

async def main() -> None:
    got = []
    lane = Lane("shard 0", {"address": "redis://10.9.0.2:6390"}, "ch.".__add__, {"a"}, got.append, lambda event: b"m")
    tasks = [asyncio.create_task(lane.listen()), asyncio.create_task(lane.run())]
    lane.changed("a")
    await until(lambda: lane._subscriber is not None and not lane.dirty)
    lane.publish("a", {})
    await until(lambda: got and lane._publisher is not None)
    route("add")  # a partition: both connections idle, found out by keepalive within 3 s
    await until(lambda: lane.down)
    await asyncio.sleep(3)
    route("del")
    await until(lambda: not lane.down)
    await asyncio.sleep(0.3)
    lane.publish("a", {})  # on the publisher keepalive gave up on while it was idle
    await until(lambda: len(got) == 2)
    await asyncio.sleep(1)  # two retries' worth: a flap would have logged by now
    print("logged:", lines)
    for task in tasks:
        task.cancel()

asyncio.run(main())
"""


def test_after_a_partition_the_lane_logs_down_once_and_up_once():
    """A partition (no reset) while the lane is idle: keepalive finds out both connections; the
    lane logs `unavailable` once and `back` once when its subscriber is in again. The first
    publish after, on the publisher whose connection keepalive ended while idle (ETIMEDOUT, no
    ``ConnectionError``), opens a new one: no second `unavailable`, `back` at the first publish."""
    cut = _beside_a_redis_of_its_own(LANE_CUT_OFF)
    expected = "logged: ['channel layer unavailable on shard 0', 'channel layer is back on shard 0']"
    assert expected in cut.stdout, (cut.stdout, cut.stderr[-2000:])
