"""The manager's pub/sub over the Channels layer: per-room groups, per-shard lanes, the listener.

A message for one room (or one socket) is published on that room's channel group, and a
process is in a room's group only while it has a local socket in the room
(``config.realtime.routing``); the rest travels on the shared group every process is in.
Publishing and subscribing go through one lane per broker shard (``config.realtime.lanes``),
so a slow or absent Redis never stalls local delivery, nor the rooms of the other shards.
Mixed into ``ChannelLayerManager``, which owns the shared group's name and the host id.
"""

import asyncio
import logging
import uuid
from typing import Any

from channels_redis.utils import create_pool
from redis.asyncio import Redis

from config import metrics
from config.realtime import catalogue, hooks, recovery
from config.realtime.lanes import Lane
from config.realtime.routing import SIO_METHODS, group_of, kind_of, room_group

logger = logging.getLogger("config.realtime.manager")

# A join waits this long, at most, for its room's subscription to be sent before it is acked.
JOIN_SETTLE_SECONDS = 1.0


class OutageLog(logging.Filter):
    """Lets one channels-redis receive error through per outage, not one a second."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if self.down:
            return False
        self.down = True
        return True


class ChannelLayerTransport:
    """``_publish`` and ``_listen`` for ``AsyncPubSubManager``, over ``self.layer``."""

    def _start_lanes(self) -> None:
        """One lane per shard of the layer (none for the in-memory layer: nobody else to reach)."""
        if self.is_local_only:
            return
        # channels-redis (pinned) places a group on a shard by the hash of its channel name;
        # asking the layer itself keeps a lane and the layer's shard the same thing.
        self._broker = self.layer._get_layer()
        for index, shard in enumerate(self._broker._shards):
            lane = Lane(
                f"shard {index}",
                self.layer,
                Redis(connection_pool=create_pool(shard.host)),
                self._broker._get_group_channel_name,
                lambda: self._listen_channel,
                self._wanted,
            )
            self._lanes[id(shard)] = lane
            self.start_task(lane.run())

    def lane_of(self, group: str) -> Lane:
        broker = self._broker
        return self._lanes[id(broker._get_shard(broker._get_group_channel_name(group)))]

    @property
    def publish_backlog(self) -> int:
        return sum(len(lane.messages) for lane in self._lanes.values())

    async def _publish(self, data: dict[str, Any]) -> None:
        if not self._lanes:
            return
        data.setdefault("host_id", self.host_id)
        group = group_of(self.channel, data)
        self.lane_of(group).publish(group, data)

    # ------------------------------------------------------------ subscriptions follow local rooms
    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        opened = room is not None and room not in self.rooms.get(namespace, ())
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if opened and self._lanes:
            group = room_group(self.channel, namespace, room)
            self._wanted.add(group)
            self.lane_of(group).changed(group)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        if room is not None and self._lanes and room not in self.rooms.get(namespace, ()):
            group = room_group(self.channel, namespace, room)
            if group in self._wanted:
                self._wanted.discard(group)
                self.lane_of(group).changed(group)

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: str | None = None) -> None:
        """Join, then wait (briefly) until this process listens to the room: what follows the ack reaches it."""
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        await self.listening(namespace, [room])

    async def listening(self, namespace: str, rooms: list[str]) -> None:
        """Wait (at most ``JOIN_SETTLE_SECONDS``) until the subscriptions of ``rooms`` are sent."""
        if not self._lanes:
            return  # one process: nothing to subscribe to
        lanes = {id(lane): lane for lane in (self.lane_of(room_group(self.channel, namespace, r)) for r in rooms)}
        await asyncio.gather(*(lane.settled(JOIN_SETTLE_SECONDS) for lane in lanes.values()))

    async def publish_external(self, message: dict[str, Any]) -> None:
        """Publish from a process that runs no Socket.IO server (no local sockets)."""
        if self.is_local_only:
            return
        message.setdefault("host_id", f"external-{uuid.uuid4().hex}")
        if message["method"] == "emit" and self.server.recovery is not None:
            # Each call runs on a loop of its own (async_to_sync): a store for this call only.
            own = recovery.build()
            try:
                if message.get("callback") is None and not catalogue.is_volatile(
                    message["namespace"], message["event"]
                ):
                    [message["offset"]] = await own.append([(message["namespace"], message)])
                    if message["offset"] is None:  # no offset, and this store object ends here:
                        message["unlogged"] = True  # the server processes mark the gap (manager)
            finally:
                await own.close()
        await self.layer.group_send(group_of(self.channel, message), {"type": "sio.message", "data": message})

    # ------------------------------------------------------------ listening
    async def _listen(self):  # type: ignore[override]
        layer = self.layer
        channel, failures = None, 0
        while channel is None:
            try:
                channel = await layer.new_channel()
                await layer.group_add(self.channel, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.error("channel layer unavailable (%s); local sockets keep working, retrying", exc)
                channel = None
                await asyncio.sleep(1)
        self._listen_channel = channel
        for lane in self._lanes.values():
            lane.wake.set()  # the room groups asked for so far can be joined now
        while True:
            event = await layer.receive(channel)
            self._outage.down = False
            if not isinstance(event, dict):
                continue
            batch = event.get("data") if event.get("type") == "sio.batch" else [event.get("data")]
            if not isinstance(batch, list):
                continue
            for data in batch:
                if not isinstance(data, dict):
                    continue
                # What this process decodes: its rooms' messages (its own publishes to a room it
                # is in come back too) and the shared group's (docs/performance.md).
                metrics.BROKER_MESSAGES.labels(kind_of(data)).inc()
                if data.get("host_id") == self.host_id:
                    continue
                method = data.get("method")
                if method in SIO_METHODS:
                    yield data
                elif (handler := hooks.control_handler(method)) is not None:
                    try:
                        await handler(self, data)
                    except Exception:
                        logger.exception("control message %s failed", method)
