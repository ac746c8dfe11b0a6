"""A broker lane against a real Redis: net subscription changes per round, batches in order."""

import asyncio
import contextlib
import logging
import os
import uuid

import pytest
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import create_pool
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from config.realtime.lanes import Lane

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("a lane talks to Redis (set REDIS_URL); .ci/run runs it")
    return os.environ["REDIS_URL"].split(",")[0]


async def lane_on(url: str, **options: int) -> tuple[Lane, RedisPubSubChannelLayer, str, set[str], asyncio.Task]:
    layer = RedisPubSubChannelLayer(hosts=[url], prefix=f"lane{uuid.uuid4().hex[:8]}")
    loop_layer = layer._get_layer()
    channel = await layer.new_channel()
    wanted: set[str] = set()
    redis = Redis(connection_pool=create_pool(loop_layer._shards[0].host))
    lane = Lane("shard 0", layer, redis, loop_layer._get_group_channel_name, lambda: channel, wanted, **options)
    return lane, layer, channel, wanted, asyncio.create_task(lane.run())


async def subscribers(lane: Lane, group: str) -> int:
    [(_, count)] = await lane.redis.pubsub_numsub(lane._channel_name(group))
    return count


def test_a_room_joined_and_left_within_a_round_costs_no_subscription(redis_url):
    async def scenario() -> None:
        lane, layer, _, wanted, task = await lane_on(redis_url)
        joined: list[str] = []
        group_add = layer.group_add
        layer.group_add = lambda group, channel: joined.append(group) or group_add(group, channel)
        try:
            wanted.add("brief")
            lane.changed("brief")
            wanted.discard("brief")  # left before the lane's round: nothing to send
            lane.changed("brief")
            wanted.add("stays")
            lane.changed("stays")
            await lane.settled(1.0)
            assert lane.subscribed == {"stays"} and joined == ["stays"]
            assert await subscribers(lane, "stays") == 1 and await subscribers(lane, "brief") == 0
            wanted.discard("stays")
            lane.changed("stays")
            await lane.settled(1.0)
            assert lane.subscribed == set() and await subscribers(lane, "stays") == 0
        finally:
            task.cancel()
            await layer.flush()
            await lane.redis.aclose(close_connection_pool=True)  # nothing left for the GC on a closed loop

    asyncio.run(scenario())


def test_a_batch_for_several_rooms_arrives_per_room_in_order(redis_url):
    async def scenario() -> None:
        lane, layer, channel, wanted, task = await lane_on(redis_url)
        try:
            for group in ("a", "b"):
                wanted.add(group)
                lane.changed(group)
            await lane.settled(1.0)
            for i in range(5):
                lane.publish("a", {"n": f"a{i}"})
                lane.publish("b", {"n": f"b{i}"})
                lane.publish("nobody", {"n": f"x{i}"})  # no subscriber: published, heard by none
            got: list[str] = []
            while len(got) < 10:
                event = await asyncio.wait_for(layer.receive(channel), 5)
                batch = event["data"] if event["type"] == "sio.batch" else [event["data"]]
                got += [item["n"] for item in batch]
            assert [n for n in got if n[0] == "a"] == [f"a{i}" for i in range(5)]
            assert [n for n in got if n[0] == "b"] == [f"b{i}" for i in range(5)]
            assert not lane.messages
        finally:
            task.cancel()
            await layer.flush()
            await lane.redis.aclose(close_connection_pool=True)  # nothing left for the GC on a closed loop

    asyncio.run(scenario())


def test_joins_that_give_up_while_the_broker_is_away_leave_nothing_behind():
    """No listener channel yet (Redis down since start): every join waits its bound and gives
    up; what they waited on does not pile up for the whole outage."""

    async def scenario() -> None:
        wanted: set[str] = set()
        lane = Lane("shard 0", None, None, str, lambda: None, wanted)
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
    assert Lane("shard 0", None, None, str, lambda: None, set()).queue_max == 50_000

    def dropped_total() -> float:
        return REGISTRY.get_sample_value("homeservices_publish_dropped_total") or 0.0

    async def scenario() -> None:
        lane, layer, channel, wanted, task = await lane_on(redis_url, queue_max=5)
        task.cancel()  # the lane's round waits while the queue fills
        with contextlib.suppress(asyncio.CancelledError):
            await task
        before = dropped_total()
        try:
            wanted.add("a")
            lane.changed("a")
            with caplog.at_level(logging.ERROR, logger="config.realtime.manager"):
                for i in range(8):
                    lane.publish("a", {"n": i})
            assert [data["n"] for _, data in lane.messages] == [0, 1, 2, 3, 4] and lane.dropped == 3
            assert dropped_total() - before == 3
            assert [r.getMessage() for r in caplog.records] == [
                "channel layer backlog full on shard 0: 1 messages dropped"
            ]
            task = asyncio.create_task(lane.run())  # the held five go out, in order; the three dropped never do
            got: list[int] = []
            while len(got) < 5:
                event = await asyncio.wait_for(layer.receive(channel), 5)
                got += [item["n"] for item in (event["data"] if event["type"] == "sio.batch" else [event["data"]])]
            assert got == [0, 1, 2, 3, 4] and not lane.messages
            lane.publish("a", {"n": 9})  # room again once the queue drained
            event = await asyncio.wait_for(layer.receive(channel), 5)
            assert event["data"] == {"n": 9} and lane.dropped == 3
        finally:
            task.cancel()
            await layer.flush()
            await lane.redis.aclose(close_connection_pool=True)

    asyncio.run(scenario())
