"""What one cross-process message costs on the broker, publish and receive, in one process.

    python bench/broker_micro.py            # REDIS_URL or redis://127.0.0.1:6379/5

20,000 messages over 1,000 rooms' channels. First through channels-redis and redis-py (what
the server used before issue 34's fifth pass): a channels-redis subscriber receives them, sent
one ``group_send`` each (a round trip per message), then as redis-py pipelines of 10 and 100.
Then what a lane does now (``config.realtime.redis_wire``): pipelines of 10 and 100 written on
one raw connection and read by another, parsed by hiredis. Prints CPU microseconds per
message, publish and receive together. docs/performance.md, "Scale-out" and "Issue 34".
"""

import asyncio
import os
import resource
import sys
from pathlib import Path

import uvloop
from channels_redis.pubsub import RedisPubSubChannelLayer
from redis import asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config.realtime.redis_wire import Wire, command

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5").split(",")[0]
MESSAGES, ROOMS = 20_000, 1_000


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def event(i: int) -> dict:
    return {"type": "sio.message", "data": {"method": "emit", "event": "x", "data": [{"i": i}], "room": "r"}}


async def measure(pipeline: int) -> float:
    """CPU µs per message; ``pipeline`` 0 means one ``group_send`` per message."""
    prefix = f"micro{pipeline}"
    subscriber = RedisPubSubChannelLayer(hosts=[URL], prefix=prefix)
    publisher = RedisPubSubChannelLayer(hosts=[URL], prefix=prefix)
    redis = aioredis.Redis.from_url(URL)
    channel = await subscriber.new_channel()
    groups = [f"g{i}" for i in range(ROOMS)]
    for group in groups:
        await subscriber.group_add(group, channel)
    await asyncio.sleep(0.3)

    async def receive() -> None:
        for _ in range(MESSAGES):
            await subscriber.receive(channel)

    receiving = asyncio.create_task(receive())
    started = cpu()
    if pipeline == 0:
        for i in range(MESSAGES):
            await publisher.group_send(groups[i % ROOMS], event(i))
    else:
        for first in range(0, MESSAGES, pipeline):
            pipe = redis.pipeline(transaction=False)
            for i in range(first, first + pipeline):
                pipe.publish(f"{prefix}__group__{groups[i % ROOMS]}", subscriber.serialize(event(i)))
            await pipe.execute()
    await asyncio.wait_for(receiving, 60)
    spent = (cpu() - started) / MESSAGES * 1e6
    await redis.aclose()
    return spent


async def measure_wire(pipeline: int) -> float:
    """CPU µs per message as a lane publishes and subscribes: raw connections, hiredis."""
    layer = RedisPubSubChannelLayer(hosts=[URL], prefix="microwire")  # its names and serialisation
    names = [f"microwire__group__g{i}" for i in range(ROOMS)]
    publisher, subscriber = await Wire.open({"address": URL}), await Wire.open({"address": URL})
    subscriber.write(command("SUBSCRIBE", *names))
    await subscriber.expect(ROOMS)

    async def receive() -> None:
        got = 0
        while got < MESSAGES:
            for reply in await subscriber.replies():
                layer.deserialize(reply[2])
                got += 1

    receiving = asyncio.create_task(receive())
    started = cpu()
    for first in range(0, MESSAGES, pipeline):
        publisher.write(
            b"".join(
                command("PUBLISH", names[i % ROOMS], layer.serialize(event(i))) for i in range(first, first + pipeline)
            )
        )
        await publisher.expect(pipeline)
    await asyncio.wait_for(receiving, 60)
    spent = (cpu() - started) / MESSAGES * 1e6
    publisher.close()
    subscriber.close()
    return spent


def main() -> None:
    uvloop.install()  # as the server runs
    for pipeline, what in ((0, "group_send, one per message"), (10, "pipelines of 10"), (100, "pipelines of 100")):
        print(f"{what:30} {asyncio.run(measure(pipeline)):6.1f} µs CPU per message, publish and receive")
    for pipeline in (10, 100):
        what = f"lane wire, pipelines of {pipeline}"
        print(f"{what:30} {asyncio.run(measure_wire(pipeline)):6.1f} µs CPU per message, publish and receive")


if __name__ == "__main__":
    main()
