"""A sharded broker: ``REDIS_URL`` lists three Redis servers and rooms are spread over them.

Real ``redis-server`` processes, two real server processes, real clients. One server is
shut down and started again on its port, or paused (SIGSTOP: no RST) and resumed: only
the rooms whose groups hash to it stop, and they deliver again once it is back, with no
process restarted. (Contract 9.4.)
"""

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from bookings.models import BookingStatus as S
from config import rooms
from config.realtime.routing import room_group
from tests.factories import BookingFactory, PartnerFactory
from tests.live import Client, ServerProcess, database_url, free_port, run, socket_barrier, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SHARDS = 3


class RedisServers:
    def __init__(self, count: int) -> None:
        # In the order the settings sort REDIS_URL, so an index here is the servers' shard index.
        self.ports = sorted((free_port() for _ in range(count)), key=lambda port: self.url_of(port))
        self.procs: dict[int, subprocess.Popen] = {}

    @staticmethod
    def url_of(port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    @property
    def url(self) -> str:
        return ",".join(self.url_of(port) for port in reversed(self.ports))  # listed in any order

    def start(self, port: int) -> None:
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.procs[port] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, f"redis-server on {port} did not start"
            time.sleep(0.05)

    def stop(self, port: int) -> None:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], timeout=10, capture_output=True)
        self.procs.pop(port).wait(timeout=10)

    def pause(self, port: int) -> None:
        """Stops answering without refusing (no RST): as a partition or a failover looks."""
        self.procs[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGCONT)


@pytest.fixture
def redis_servers() -> Iterator[RedisServers]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for the sharded broker test")
    servers = RedisServers(SHARDS)
    for port in servers.ports:
        servers.start(port)
    yield servers
    for proc in servers.procs.values():
        proc.send_signal(signal.SIGCONT)  # a paused one would never act on the SIGTERM
        proc.terminate()


def shard_of(url: str, group: str) -> int:
    """The shard channels-redis publishes ``group`` on, asked of a layer built like the servers'."""

    async def ask() -> int:
        hosts = sorted(url.split(","))  # as the settings order them
        layer = RedisPubSubChannelLayer(hosts=hosts, prefix=os.environ.get("CHANNELS_PREFIX", "hs"))
        loop_layer = layer._get_layer()
        return loop_layer._shards.index(loop_layer._get_shard(loop_layer._get_group_channel_name(group)))

    return asyncio.run(ask())


@pytest.mark.parametrize("fault", ["shut down", "paused"])
@pytest.mark.server_errors(r"channel layer unavailable")
def test_a_stopped_shard_stops_only_its_rooms_and_they_come_back(redis_servers, service, fault):
    env = {
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": redis_servers.url,
        "RATE_LOCATION": "1000000",
    }
    # Bookings until each shard but the first (which also keeps the recovery log) holds two rooms,
    # and the one to be stopped a third, whose customer first tracks it during the outage; the
    # first at least one (a room on every shard that stays up carries the barrier below).
    shared = settings.SOCKETIO["CHANNEL_GROUP"]
    bookings: dict[int, list] = {index: [] for index in range(SHARDS)}
    while not bookings[0] or len(bookings[1]) < 2 or len(bookings[2]) < 3:
        booking = BookingFactory(partner=PartnerFactory(services=[service]), status=S.PARTNER_EN_ROUTE, service=service)
        index = shard_of(redis_servers.url, room_group(shared, rooms.CUSTOMER, rooms.booking(booking.pk)))
        bookings[index].append(booking)
        assert sum(map(len, bookings.values())) < 60
    victim = 2
    late = bookings[victim].pop()
    a, b = ServerProcess(env).start(), ServerProcess(env).start()

    async def scenario() -> float:
        late_partner = await Client(b.url, "/partner").connect(token_for(late.partner.user))
        pairs = []  # (shard, customer on A, partner on B)
        for index, chosen in bookings.items():
            for booking in chosen:
                c = await Client(a.url, "/customer").connect(token_for(booking.customer))
                assert (await c.call("booking:track", str(booking.pk)))["ok"]
                p = await Client(b.url, "/partner").connect(token_for(booking.partner.user))
                pairs.append((index, c, p))

        async def round_of(latitude: float, who: list) -> None:
            for _, _, p in who:
                assert (await p.call("location:update", {"latitude": latitude, "longitude": 77.0}))["ok"]

        def got(c: Client, latitude: float) -> bool:
            return any(e["location"]["latitude"] == latitude for e in c.events["partner:location_update"])

        await round_of(10.0, pairs)
        for _, c, _ in pairs:
            await c.wait_for("partner:location_update", where=lambda e: e["location"]["latitude"] == 10.0)

        port = redis_servers.ports[victim]
        await asyncio.to_thread(redis_servers.stop if fault == "shut down" else redis_servers.pause, port)
        await asyncio.sleep(0.5)
        await round_of(11.0, pairs)
        for index, c, _ in pairs:  # the other shards' rooms go on as if nothing happened
            if index != victim:
                await c.wait_for("partner:location_update", where=lambda e: e["location"]["latitude"] == 11.0)
        # The barrier: a later update in every other room, from the same process B. Had B sent a
        # victim's 11.0 through a shard that is up, that shard's lane would have published it first,
        # and A would have delivered it before these; the round trip on each waiting socket then
        # flushes what A had queued for it.
        await round_of(11.5, [pair for pair in pairs if pair[0] != victim])
        for index, c, _ in pairs:
            if index != victim:
                await c.wait_for("partner:location_update", where=lambda e: e["location"]["latitude"] == 11.5)
        stopped = [c for index, c, _ in pairs if index == victim]
        for c in stopped:
            await socket_barrier(c)
        assert not any(got(c, 11.0) for c in stopped)  # the victim's rooms wait for it
        # A join whose room lives on the stopped server is acked all the same (its subscription
        # waits at most a second), and is made once the server is back.
        joining = time.monotonic()
        late_customer = await Client(a.url, "/customer").connect(token_for(late.customer))
        assert (await late_customer.call("booking:track", str(late.pk)))["ok"]
        assert time.monotonic() - joining < 3
        stopped.append(late_customer)
        pairs.append((victim, late_customer, late_partner))

        await asyncio.to_thread(redis_servers.start if fault == "shut down" else redis_servers.resume, port)
        back = time.monotonic()
        while not all(got(c, 12.0) for c in stopped):
            assert time.monotonic() - back < 5, "the shard's rooms did not deliver within 5 s of its return"
            await round_of(12.0, [pair for pair in pairs if pair[0] == victim])
            await asyncio.sleep(0.3)
        took = time.monotonic() - back
        await round_of(13.0, pairs)  # and every room still delivers
        for _, c, _ in pairs:
            await c.wait_for("partner:location_update", where=lambda e: e["location"]["latitude"] == 13.0)
        assert a.proc.poll() is None and b.proc.poll() is None  # the same two processes throughout
        for _, c, p in pairs:
            await c.close()
            await p.close()
        return took

    try:
        took = run(scenario())
    finally:
        a.stop()
        b.stop()
    print(f"{fault}: the shard's rooms delivered again {took:.2f} s after it came back")
    if fault == "shut down":
        # Both processes' lanes for the shard (A's joins, B's publishes) were refused: each says
        # so once, and once that it is back; the other shards' lanes say nothing.
        for server in (a, b):
            said = [
                line.split(" config.realtime.manager ", 1)[1]
                for line in server.output().splitlines()
                if " config.realtime.manager channel layer " in line
            ]
            assert len(said) == 2 and said[0].startswith("channel layer unavailable on shard 2 ("), said
            assert said[1] == "channel layer is back on shard 2; cross-process delivery resumed", said
