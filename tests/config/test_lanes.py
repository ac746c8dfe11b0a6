"""A broker lane against a real Redis: net subscription changes per round, batches in order."""

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from config.realtime.inbox import INBOX_MAX_BYTES, Inbox
from config.realtime.lanes import Lane
from config.realtime.manager import ChannelLayerManager
from config.realtime.redis_wire import READ_CHUNK
from config.realtime.transport import ChannelLayerTransport
from tests.live import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("a lane talks to Redis (set REDIS_URL); .ci/run runs it")
    return os.environ["REDIS_URL"].split(",")[0]


class Harness:
    """A lane on its own prefix, its two tasks running, and what its subscriber receives."""

    def __init__(self, url: str, inbox: Inbox | None = None, **options: int) -> None:
        self.layer = RedisPubSubChannelLayer(hosts=[url], prefix=f"lane{uuid.uuid4().hex[:8]}")
        self.loop_layer = self.layer._get_layer()
        self.wanted: set[str] = set()
        self.inbox = inbox or Inbox()  # the manager's (its listener reads it)
        self.lane = Lane(
            "shard 0",
            self.loop_layer._shards[0].host,
            self.loop_layer._get_group_channel_name,
            self.wanted,
            self.inbox.put,
            self.layer.serialize,
            **options,
        )
        self.redis = Redis.from_url(url)
        self.tasks: list[asyncio.Task] = []

    async def start(self, run: bool = True) -> "Harness":
        self.tasks.append(asyncio.create_task(self.lane.listen()))
        if run:
            self.tasks.append(asyncio.create_task(self.lane.run()))
        async with asyncio.timeout(5):
            while self.lane._subscriber is None:
                await asyncio.sleep(0.01)
        return self

    def join(self, group: str) -> None:
        self.wanted.add(group)
        self.lane.changed(group)

    async def joined(self, *groups: str) -> None:
        """Join ``groups`` and wait (at most a second) until their subscriptions are sent."""
        for group in groups:
            self.join(group)
        await self.lane.settled(1.0)

    async def events(self, count: int) -> list[dict]:
        """The next ``count`` items the subscriber hands over (a batch's items one by one)."""
        got: list[dict] = []
        while len(got) < count:
            for raw in await asyncio.wait_for(self.inbox.get(), 5):
                event = self.layer.deserialize(raw)
                got += event["data"] if event["type"] == "sio.batch" else [event["data"]]
        return got

    @contextlib.asynccontextmanager
    async def catching_up(self) -> AsyncIterator[list[dict]]:
        """The listener reads again, for as long as the block runs: what it hears, as it hears it."""
        heard: list[dict] = []

        async def listener() -> None:
            while True:
                heard.extend(await self.events(1))

        reading = asyncio.create_task(listener())
        try:
            yield heard
        finally:
            reading.cancel()

    async def subscribers(self, group: str) -> int:
        [(_, count)] = await self.redis.pubsub_numsub(self.lane._channel_name(group))
        return count

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.layer.flush()
        await self.redis.aclose()  # nothing left for the GC on a closed loop


def test_a_room_joined_and_left_within_a_round_costs_no_subscription(redis_url):
    async def scenario() -> None:
        h = await Harness(redis_url).start()
        written: list[bytes] = []
        wire = h.lane._subscriber
        write = wire.write
        wire.write = lambda data: written.append(data) or write(data)
        try:
            h.join("brief")
            h.wanted.discard("brief")  # left before the lane's round: nothing to send
            h.lane.changed("brief")
            h.join("stays")
            await h.lane.settled(1.0)
            assert h.lane.subscribed == {"stays"} and len(written) == 1 and b"brief" not in written[0]
            assert await h.subscribers("stays") == 1 and await h.subscribers("brief") == 0
            h.wanted.discard("stays")
            h.lane.changed("stays")
            await h.lane.settled(1.0)
            assert h.lane.subscribed == set() and await h.subscribers("stays") == 0
        finally:
            await h.close()

    asyncio.run(scenario())


def test_a_batch_for_several_rooms_arrives_per_room_in_order(redis_url):
    async def scenario() -> None:
        h = await Harness(redis_url).start()
        try:
            await h.joined("a", "b")
            for i in range(5):
                h.lane.publish("a", {"n": f"a{i}"})
                h.lane.publish("b", {"n": f"b{i}"})
                h.lane.publish("nobody", {"n": f"x{i}"})  # no subscriber: published, heard by none
            got = [item["n"] for item in await h.events(10)]
            assert [n for n in got if n[0] == "a"] == [f"a{i}" for i in range(5)]
            assert [n for n in got if n[0] == "b"] == [f"b{i}" for i in range(5)]
            assert not h.lane.messages
        finally:
            await h.close()

    asyncio.run(scenario())


def test_the_layer_and_a_lane_speak_the_same_channels_both_ways(redis_url):
    """A process without a server publishes with the layer's ``group_send``
    (``publish_external``): the lanes' subscribers hear it; a layer subscriber hears a lane."""

    async def scenario() -> None:
        h = await Harness(redis_url).start()
        try:
            h.join("room")
            await h.lane.settled(1.0)
            await h.layer.group_send("room", {"type": "sio.message", "data": {"from": "layer"}})
            assert await h.events(1) == [{"from": "layer"}]
            channel = await h.layer.new_channel()
            await h.layer.group_add("other", channel)
            h.lane.publish("other", {"from": "lane"})
            event = await asyncio.wait_for(h.layer.receive(channel), 5)
            assert event == {"type": "sio.message", "data": {"from": "lane"}}
        finally:
            await h.close()

    asyncio.run(scenario())


def test_a_subscriber_whose_connection_drops_subscribes_again(redis_url):
    """Redis closes the subscriber's connection (CLIENT KILL, as a restart or a failover would):
    the lane reconnects by itself, asks for every group again, and delivers."""

    async def scenario() -> None:
        h = await Harness(redis_url).start()
        try:
            await h.joined("a", "b")
            first = h.lane._subscriber
            host, port = first._writer.get_extra_info("sockname")[:2]
            await h.redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
            async with asyncio.timeout(5):
                while h.lane._subscriber in (None, first) or await h.subscribers("b") == 0:
                    await asyncio.sleep(0.02)
            assert await h.subscribers("a") == 1 and h.lane.subscribed == {"a", "b"}
            h.lane.publish("b", {"n": 1})
            assert await h.events(1) == [{"n": 1}]
        finally:
            await h.close()

    asyncio.run(scenario())


def test_a_publisher_connection_redis_closed_while_idle_is_replaced_at_once(redis_url, caplog):
    """Redis closes the idle publisher's connection (its ``timeout``, a proxy's, CLIENT KILL): the next
    batch goes out on a new one at once, with no failure counted or logged (the shard is up)."""

    def failures() -> float:
        return REGISTRY.get_sample_value("homeservices_publish_failures_total") or 0.0

    async def scenario() -> None:
        h = await Harness(redis_url).start()
        try:
            h.join("a")
            await h.lane.settled(1.0)
            h.lane.publish("a", {"n": 0})
            assert await h.events(1) == [{"n": 0}]
            host, port = h.lane._publisher._writer.get_extra_info("sockname")[:2]
            await h.redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
            before = failures()
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                h.lane.publish("a", {"n": 1})
                assert await h.events(1) == [{"n": 1}]
            assert failures() == before and caplog.records == []
        finally:
            await h.close()

    asyncio.run(scenario())


def test_joins_that_give_up_while_the_broker_is_away_leave_nothing_behind():
    """No subscriber yet (Redis down since start): every join waits its bound and gives
    up; what they waited on does not pile up for the whole outage."""

    async def scenario() -> None:
        wanted: set[str] = set()
        lane = Lane("shard 0", {"address": "redis://127.0.0.1:1"}, str, wanted, print, bytes)
        task = asyncio.create_task(lane.run())
        try:
            for i in range(300):
                wanted.add(f"room{i}")
                lane.changed(f"room{i}")
                await lane.settled(0.001)
            assert len(lane.dirty) == 300 and len(lane._settle_waiters) <= 101
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_past_its_bound_a_lane_drops_publishes_counts_them_and_logs_once(redis_url, caplog):
    """docs/deployment.md: the lanes are bounded (50,000 messages each) and count and log what
    they drop. Here the bound is 5 and the lane holds 8 publishes before its first round."""
    assert Lane("shard 0", {}, str, set(), print, bytes).queue_max == 50_000

    def dropped_total() -> float:
        return REGISTRY.get_sample_value("homeservices_publish_dropped_total") or 0.0

    async def scenario() -> None:
        h = await Harness(redis_url, queue_max=5).start(run=False)  # no round while the queue fills
        before = dropped_total()
        try:
            h.join("a")
            with caplog.at_level(logging.ERROR, logger="config.realtime.manager"):
                for i in range(8):
                    h.lane.publish("a", {"n": i})
            assert [data["n"] for _, data in h.lane.messages] == [0, 1, 2, 3, 4] and h.lane.dropped == 3
            assert dropped_total() - before == 3
            assert [r.getMessage() for r in caplog.records] == [
                "channel layer backlog full on shard 0: 1 messages dropped"
            ]
            # The held five go out, in order; the three dropped never do.
            h.tasks.append(asyncio.create_task(h.lane.run()))
            assert [item["n"] for item in await h.events(5)] == [0, 1, 2, 3, 4] and not h.lane.messages
            h.lane.publish("a", {"n": 9})  # room again once the queue drained
            assert await h.events(1) == [{"n": 9}] and h.lane.dropped == 3
        finally:
            await h.close()

    asyncio.run(scenario())


def listening(failing: int | None = None) -> tuple[RedisPubSubChannelLayer, ChannelLayerManager, list[int]]:
    """A manager whose listener reads the layer's serialisation and notes the ``n`` of each emit it
    hands on (raising on ``failing``'s), without Redis: the layer is there for its format only."""
    layer = RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:1"])
    manager = ChannelLayerManager()
    manager._deserialize = layer.deserialize
    handled: list[int] = []

    async def handle_emit(message: dict) -> None:
        handled.append(message["n"])
        if message["n"] == failing:
            raise RuntimeError("boom")

    manager._handle_emit = handle_emit
    return layer, manager, handled


def test_the_listener_handles_a_read_in_order_counts_it_once_and_a_failure_stops_nothing(caplog):
    """One read of a subscriber: its messages handled in order, this process's own skipped, a
    message that cannot be read or whose handling fails logged, the rest handled; each message
    this process decoded counted, its own too."""
    layer, manager, handled = listening(failing=1)
    emit, own = {"method": "emit", "namespace": "/", "room": None}, manager.host_id
    read = [
        layer.serialize({"type": "sio.batch", "data": [{**emit, "n": 0, "host_id": own}, {**emit, "n": 1}]}),
        b"\xc1",  # no msgpack
        layer.serialize({"type": "sio.message", "data": {**emit, "n": 2}}),
    ]
    before = REGISTRY.get_sample_value("homeservices_broker_messages_total", {"kind": "broadcast"}) or 0
    with caplog.at_level(logging.ERROR, logger="config.realtime.manager"):
        asyncio.run(manager._received(read))
    assert handled == [1, 2]
    assert REGISTRY.get_sample_value("homeservices_broker_messages_total", {"kind": "broadcast"}) == before + 3
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["a broker message could not be read", "broker message emit failed"]


def test_the_listener_hands_back_an_ack_addressed_to_this_process():
    """An ack's return (``callback``) carries the host id of the process that asked for it, its
    receiver: handled here, as python-socketio's listener does, not skipped as this process's own."""
    layer, manager, _ = listening()
    acked: list[tuple] = []

    async def trigger_callback(sid: str, id: int, data: list) -> None:
        acked.append((sid, id, data))

    manager.trigger_callback = trigger_callback
    back = {"method": "callback", "namespace": "/customer", "sid": "s1", "id": 7, "args": [{"ok": True}]}
    read = [
        layer.serialize({"type": "sio.message", "data": {**back, "host_id": manager.host_id}}),
        layer.serialize({"type": "sio.message", "data": {**back, "id": 8, "host_id": "another"}}),
    ]
    asyncio.run(manager._received(read))
    assert acked == [("s1", 7, [{"ok": True}])]


def test_a_message_of_junk_stops_neither_its_read_nor_the_listener(caplog):
    """A broker message whose ``method`` is no string (a list, a map: another program's bug on the
    channel) is skipped like an unknown method: the read's other messages are handled, and a read
    that fails all the same is logged once and the listener reads on (its task ending would leave
    the process deaf to every other process, silently)."""
    layer, manager, handled = listening()
    emit = {"method": "emit", "namespace": "/", "room": None}
    junk = [1, None, {"method": ["emit"]}, {"method": {"a": 1}}, {"method": "nope"}]
    read = [layer.serialize({"type": "sio.batch", "data": [*junk, {**emit, "n": 0}]})]
    with caplog.at_level(logging.INFO, logger="config.realtime.manager"):
        asyncio.run(manager._received(read))
    assert handled == [0]
    assert caplog.records == []

    async def listener() -> None:  # a read that fails for a reason not foreseen, then a good one
        manager._inbox = asyncio.Queue()
        received, reads = manager._received, iter([RuntimeError("unforeseen"), None])

        async def failing_once(payloads: list[bytes]) -> None:
            failure = next(reads)
            if failure is not None:
                raise failure
            await received(payloads)

        manager._received = failing_once
        task = asyncio.create_task(manager._thread())
        for n in (1, 2):
            manager._inbox.put_nowait([layer.serialize({"type": "sio.message", "data": {**emit, "n": n}})])
        for _ in range(50):
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()

    with caplog.at_level(logging.ERROR, logger="config.realtime.manager"):
        asyncio.run(listener())
    assert handled == [0, 2]
    assert [r.getMessage() for r in caplog.records] == ["a broker read could not be handled"]


def test_on_the_in_memory_layer_the_listener_waits_and_says_nothing(settings, caplog):
    """No Redis, no lanes: python-socketio's listener loop gets nothing, and no error (its loop
    retries a failing listener at once: an error here spun a core and flooded the log)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    manager = ChannelLayerManager()
    assert manager.is_local_only

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(manager._thread(), 0.3)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert caplog.records == []


def _start_redis(port: int, *options: str) -> subprocess.Popen:
    """A redis-server of the test's own on ``port`` (nothing saved), once it takes connections."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for a test that stops, restarts or tunes its own Redis")
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*command, *options], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
        time.sleep(0.02)


@pytest.fixture
def redis_with_password() -> Iterator[int]:
    """A redis-server of the test's own that asks for a password (``pw``)."""
    port = free_port()
    proc = _start_redis(port, "--requirepass", "pw")
    yield port
    proc.terminate()
    proc.wait(10)


def test_a_refused_subscriber_logs_once_and_subscribes_again_once_allowed(redis_with_password, caplog):
    """REDIS_URL without the password Redis asks for: every SUBSCRIBE is refused (NOAUTH). The
    lane says so once, not once per round of joins, and claims nothing it does not hold: once
    the operator lets it in (here the password is dropped), every room is subscribed again."""
    port = redis_with_password

    async def scenario() -> None:
        wanted: set[str] = set()
        lane = Lane("shard 0", {"address": f"redis://127.0.0.1:{port}"}, "ch.".__add__, wanted, print, bytes)
        tasks = [asyncio.create_task(lane.listen()), asyncio.create_task(lane.run())]
        admin = Redis(port=port, password="pw")
        try:
            with caplog.at_level(logging.ERROR, logger="config.realtime.manager"):
                for i in range(5):  # five rounds of joins, 0.2 s apart
                    wanted.add(f"r{i}")
                    lane.changed(f"r{i}")
                    await lane.settled(1.0)
                    await asyncio.sleep(0.2)
            assert len(caplog.records) == 1, [r.getMessage() for r in caplog.records]
            await admin.config_set("requirepass", "")
            async with asyncio.timeout(5):
                while (await admin.pubsub_numsub(*(f"ch.r{i}" for i in range(5)))) != [
                    (f"ch.r{i}".encode(), 1) for i in range(5)
                ]:
                    await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await admin.aclose()

    asyncio.run(scenario())


def test_a_batch_on_the_wire_counts_in_the_backlog_a_stop_waits_for():
    """The graceful stop waits while ``publish_backlog`` is not zero (``_drain``), then cancels the
    lanes. A batch the lane took off its queue but Redis has not yet acknowledged (here a server
    that accepts the connection and never answers) is still to deliver: it counts."""

    async def scenario() -> None:
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(8)  # connections complete in the kernel; nobody reads them
            port = mute.getsockname()[1]
            lane = Lane("shard 0", {"address": f"redis://127.0.0.1:{port}"}, str, set(), print, bytes)
            transport = SimpleNamespace(_lanes={0: lane})
            task = asyncio.create_task(lane.run())
            try:
                lane.publish("room", {"n": 1})
                await asyncio.sleep(0.3)  # the lane took it and wrote it; no reply comes
                assert not lane.messages
                assert ChannelLayerTransport.publish_backlog.fget(transport) == 1
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


def test_a_batch_that_redis_refuses_in_part_publishes_the_rest_once(redis_with_password):
    """One PUBLISH of a batch refused (an ACL user allowed some channels only: NOPERM) and the
    others taken: those reached their subscribers and are not published again on each retry."""
    port = redis_with_password

    async def scenario() -> None:
        admin = Redis(port=port, password="pw")
        await admin.execute_command("ACL", "SETUSER", "lane", "on", ">pw", "~*", "resetchannels", "&ch.ok*", "+@all")
        listener = admin.pubsub()
        await listener.subscribe("ch.ok")
        await listener.get_message(timeout=1)  # its subscribe confirmation
        url = f"redis://lane:pw@127.0.0.1:{port}"
        lane = Lane("shard 0", {"address": url}, "ch.".__add__, set(), print, lambda event: repr(event).encode())
        task = asyncio.create_task(lane.run())
        try:
            lane.publish("ok", {"n": 1})
            lane.publish("no", {"n": 2})  # one batch: PUBLISH ch.ok, PUBLISH ch.no (refused)
            heard = []
            deadline = time.monotonic() + 2  # four retries' worth
            while time.monotonic() < deadline:
                if (message := await listener.get_message(timeout=0.1)) is not None:
                    heard.append(message["data"])
            assert len(heard) == 1, heard
            assert lane.down and [group for group, _ in lane.messages] == ["no"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await listener.aclose()
            await admin.aclose()

    asyncio.run(scenario())


@pytest.fixture
def redis_cutting_slow_subscribers() -> Iterator[str]:
    """A redis-server of the test's own that cuts a subscriber 256 KB behind (the default is 32 MB)."""
    port = free_port()
    proc = _start_redis(port, "--client-output-buffer-limit", "pubsub 256kb 128kb 1")
    yield f"redis://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_a_listener_that_falls_behind_holds_a_bounded_inbox_and_its_lane_recovers(
    redis_cutting_slow_subscribers, caplog
):
    """docs/deployment.md: a process whose listener cannot keep up holds at most INBOX_MAX_BYTES of
    broker messages (here 64 KiB): its subscriber stops reading, Redis cuts it past its pubsub
    limit instead of the process growing (20 MB flooded here), and once the listener reads again
    the lane subscribes again and delivers what is published next."""
    assert ChannelLayerManager()._inbox.max_bytes == INBOX_MAX_BYTES == 16 << 20
    url = redis_cutting_slow_subscribers

    async def scenario() -> None:
        h = await Harness(url, inbox=Inbox(max_bytes=64 << 10)).start()
        flooder = Redis.from_url(url)
        peak = 0
        try:
            await h.joined("room")
            first = h.lane._subscriber
            channel = h.lane._channel_name("room")
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                for burst in range(20):  # nobody reads the inbox meanwhile
                    payload = h.layer.serialize({"type": "sio.message", "data": {"n": burst, "pad": "x" * 2000}})
                    async with flooder.pipeline(transaction=False) as pipe:
                        for _ in range(500):
                            pipe.publish(channel, payload)
                        await pipe.execute()
                    peak = max(peak, h.inbox.bytes)
                deadline = time.monotonic() + 10
                while await h.subscribers("room") and time.monotonic() < deadline:
                    peak = max(peak, h.inbox.bytes)
                    await asyncio.sleep(0.05)
                assert 64 << 10 < peak <= (64 << 10) + READ_CHUNK + 4096, peak  # one read past the bound
                assert await h.subscribers("room") == 0  # Redis cut the subscriber that stopped reading
                assert h.lane.behind >= 1 and not h.lane.down
                async with h.catching_up() as heard, asyncio.timeout(10):
                    while h.lane._subscriber in (None, first) or not await h.subscribers("room"):
                        await asyncio.sleep(0.05)
                    h.lane.publish("room", {"n": "after"})
                    while {"n": "after"} not in heard:
                        await asyncio.sleep(0.05)
            assert h.lane.cuts == 1 and not h.lane.down
            lines = [r.getMessage() for r in caplog.records]
            assert lines[0] == "broker listener behind: shard 0's subscriber waits for it (1 times)", lines
            assert "Redis cut shard 0's subscriber, the listener behind (1 times)" in lines, lines
            assert not any("unavailable" in line for line in lines), lines
        finally:
            await flooder.aclose()
            await h.close()

    asyncio.run(scenario())


def test_a_redis_restart_logs_down_once_and_up_once_at_its_return(caplog):
    """A Redis of the test's own, stopped and started again: the lane logs `unavailable` once, at the
    stop, and `back` once, when the subscriber is in again; the first publish after (on a
    publisher connection that died while idle) adds no line, no failure, and is delivered."""
    port = free_port()

    def failures() -> float:
        return REGISTRY.get_sample_value("homeservices_publish_failures_total") or 0.0

    async def scenario() -> None:
        server = _start_redis(port)
        h = await Harness(f"redis://127.0.0.1:{port}").start()
        try:
            await h.joined("a")
            h.lane.publish("a", {"n": 0})
            assert await h.events(1) == [{"n": 0}]
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                server.terminate()
                server.wait(10)
                async with asyncio.timeout(5):
                    while not h.lane.down:
                        await asyncio.sleep(0.02)
                server = _start_redis(port)
                async with asyncio.timeout(5):
                    while h.lane.down:
                        await asyncio.sleep(0.02)
                lines = [r.getMessage() for r in caplog.records]
                await asyncio.sleep(0.3)  # the publisher is idle a while, as a real one is
                before = failures()
                h.lane.publish("a", {"n": 1})
                assert await h.events(1) == [{"n": 1}]
                await asyncio.sleep(1)  # two retries' worth: a flap would have logged by now
            assert [r.getMessage() for r in caplog.records] == lines and failures() == before
            assert [line.split(" (")[0].split(";")[0] for line in lines] == [
                "channel layer unavailable on shard 0",
                "channel layer is back on shard 0",
            ]
        finally:
            await h.close()
            server.terminate()
            server.wait(10)

    asyncio.run(scenario())


def test_rooms_joined_while_a_cut_subscriber_waits_for_the_listener_log_nothing_and_are_heard_after(
    redis_cutting_slow_subscribers, caplog
):
    """A subscriber Redis cut while it waited for a late listener is still the lane's until it
    reads again: rooms joined meanwhile are not written into it (asyncio logged a WARNING for each
    write to the dead connection, one a round for as long as the listener stayed behind) and are
    subscribed, and heard, once the lane is back."""
    url = redis_cutting_slow_subscribers

    async def scenario() -> None:
        h = await Harness(url, inbox=Inbox(max_bytes=64 << 10)).start()
        flooder = Redis.from_url(url)
        try:
            await h.joined("room")
            channel = h.lane._channel_name("room")
            payload = h.layer.serialize({"type": "sio.message", "data": {"pad": "x" * 2000}})
            for _ in range(20):  # 20 MB: past the socket buffers, into Redis's, which cuts
                async with flooder.pipeline(transaction=False) as pipe:
                    for _ in range(500):
                        pipe.publish(channel, payload)
                    await pipe.execute()
            async with asyncio.timeout(10):
                while await h.subscribers("room"):  # cut, the lane still waiting for its listener
                    await asyncio.sleep(0.05)
            with caplog.at_level(logging.WARNING, logger="asyncio"):
                for i in range(10):
                    await h.joined(f"late{i}")
            assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
            async with h.catching_up() as heard, asyncio.timeout(10):
                while not await h.subscribers("late9"):
                    await asyncio.sleep(0.05)
                h.lane.publish("late9", {"n": "after"})
                while {"n": "after"} not in heard:
                    await asyncio.sleep(0.05)
            assert h.lane.cuts == 1 and not h.lane.down
        finally:
            await flooder.aclose()
            await h.close()

    asyncio.run(scenario())


def test_a_redis_stopped_while_the_listener_is_behind_is_logged_down_not_as_a_cut(caplog):
    """A subscriber waiting for a late listener whose Redis then stops: once the listener catches
    up, the subscriber reads to the connection's end within CUT_SECONDS of reading again, yet Redis
    did not cut it, it went away. Logged `unavailable` once and `back` once, no `Redis cut` (it
    was, and counted a cut for every outage that found a listener behind)."""
    port = free_port()
    unbounded = ("--client-output-buffer-limit", "pubsub 0 0 0")  # this Redis never cuts a late reader

    async def scenario() -> None:
        server = _start_redis(port, *unbounded)
        h = await Harness(f"redis://127.0.0.1:{port}", inbox=Inbox(max_bytes=64 << 10)).start()
        try:
            await h.joined("room")
            for n in range(200):
                h.lane.publish("room", {"n": n, "pad": "x" * 2000})
            async with asyncio.timeout(5):
                while not h.lane.behind:
                    await asyncio.sleep(0.02)
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                server.terminate()
                server.wait(10)
                async with h.catching_up() as heard:
                    async with asyncio.timeout(5):
                        while not h.lane.down:
                            await asyncio.sleep(0.02)
                    server = _start_redis(port, *unbounded)
                    async with asyncio.timeout(5):
                        while h.lane.down:
                            await asyncio.sleep(0.02)
                lines = [r.getMessage() for r in caplog.records if "listener behind:" not in r.getMessage()]
            assert len(heard) == 200 and h.lane.cuts == 0, (len(heard), lines)
            assert [line.split(" (")[0] for line in lines] == [
                "channel layer unavailable on shard 0",
                "channel layer is back on shard 0; cross-process delivery resumed",
            ], lines
        finally:
            await h.close()
            server.terminate()
            server.wait(10)

    asyncio.run(scenario())


def test_a_subscriber_redis_ends_while_up_is_a_cut_not_the_shard_down(redis_url, caplog):
    """Redis ends a subscriber of its own accord while it is up, its listener never behind: a
    reader slower than its rooms past the soft pubsub limit (8 MB for 60 s by default), or a
    CLIENT KILL. The lane subscribes again and says Redis cut it (WARNING, counted), not that the
    shard was unavailable and back (an ERROR the shard never earned: a process reading slowly
    logged an outage each minute)."""

    async def scenario() -> None:
        h = await Harness(redis_url).start()
        try:
            await h.joined("a")
            first = h.lane._subscriber
            host, port = first._writer.get_extra_info("sockname")[:2]
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                await h.redis.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
                async with asyncio.timeout(5):
                    while h.lane._subscriber in (None, first) or not await h.subscribers("a"):
                        await asyncio.sleep(0.02)
                h.lane.publish("a", {"n": 1})
                assert await h.events(1) == [{"n": 1}]
            lines = [r.getMessage() for r in caplog.records]
            said = "Redis cut shard 0's subscriber, while up: a slow reader, a CLIENT KILL, a quick restart (1 times)"
            assert lines == [said], lines
            assert h.lane.cuts == 1 and not h.lane.down
        finally:
            await h.close()

    asyncio.run(scenario())


class _Proxy:
    """A TCP proxy in front of Redis, as HAProxy is: with its backend away (``up`` false) it
    still takes each connection, then closes it at once."""

    def __init__(self, target: str) -> None:
        self.target = target.removeprefix("redis://").split("/")[0].split(":")
        self.up, self.pairs = True, []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer) -> None:
        if not self.up:
            writer.close()
            return
        back_reader, back_writer = await asyncio.open_connection(self.target[0], int(self.target[1]))
        self.pairs.append((writer, back_writer))

        async def pump(source, sink) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(1 << 16):
                    sink.write(data)
            sink.close()

        await asyncio.gather(pump(reader, back_writer), pump(back_reader, writer))

    def backend_away(self) -> None:
        self.up = False
        for writer, back_writer in self.pairs:
            writer.close()
            back_writer.close()
        self.pairs.clear()

    async def close(self) -> None:
        self.backend_away()
        self.server.close()


def test_a_connection_a_proxy_takes_and_ends_before_its_pong_is_the_shard_down_not_a_cut(redis_url, caplog):
    """Behind a TCP proxy whose Redis is away, every connection opens and ends before its PING is
    answered: the shard is down (logged `unavailable` once, `back` once), not cut again and again
    (a WARNING for each hundred, never the outage) while its rooms hear nothing."""

    async def scenario() -> None:
        proxy = _Proxy(redis_url)
        h = await Harness(await proxy.start()).start()
        try:
            await h.joined("a")
            with caplog.at_level(logging.WARNING, logger="config.realtime.manager"):
                proxy.backend_away()
                async with asyncio.timeout(5):
                    while not h.lane.down:
                        await asyncio.sleep(0.02)
                await asyncio.sleep(1)  # two retries more: no cut counted meanwhile
                assert h.lane.cuts == 0
                proxy.up = True
                async with asyncio.timeout(5):
                    while h.lane.down:
                        await asyncio.sleep(0.02)
                h.lane.publish("a", {"n": 1})
                assert await h.events(1) == [{"n": 1}]
            lines = [r.getMessage().split(" (")[0] for r in caplog.records]
            assert lines == [
                "channel layer unavailable on shard 0",
                "channel layer is back on shard 0; cross-process delivery resumed",
            ], lines
            assert h.lane.cuts == 0
        finally:
            await h.close()
            await proxy.close()

    asyncio.run(scenario())
