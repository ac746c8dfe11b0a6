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

from config import metrics
from config.realtime import catalogue, hooks, recovery
from config.realtime.lanes import Lane
from config.realtime.routing import SIO_METHODS, group_of, kind_of, room_group

logger = logging.getLogger("config.realtime.manager")

# A join waits this long, at most, for its room's subscription to be sent before it is acked.
JOIN_SETTLE_SECONDS = 1.0


class ChannelLayerTransport:
    """``_publish`` and the listener (``_thread``) for ``AsyncPubSubManager``: on the lanes' own connections to
    ``self.layer``'s shards, in its channel names and serialisation."""

    def _start_lanes(self) -> None:
        """One lane per shard of the layer (none for the in-memory layer: nobody else to reach)."""
        if self.is_local_only:
            return
        # channels-redis (pinned) places a group on a shard by the hash of its channel name;
        # asking the layer itself keeps a lane and the layer's shard the same thing.
        self._broker = self.layer._get_layer()
        self._deserialize = self.layer.deserialize  # the layer's, bound once: the listener's per message
        for index, shard in enumerate(self._broker._shards):
            lane = Lane(
                f"shard {index}",
                shard.host,
                self._broker._get_group_channel_name,
                self._wanted,
                self._inbox.put,
                self.layer.serialize,
            )
            self._lanes[id(shard)] = lane
            self.start_task(lane.run())
            self.start_task(lane.listen())
        # The shared group (broadcasts, control messages): wanted for as long as the process runs.
        self._wanted.add(self.channel)
        self.lane_of(self.channel).changed(self.channel)

    def lane_of(self, group: str) -> Lane:
        broker = self._broker
        return self._lanes[id(broker._get_shard(broker._get_group_channel_name(group)))]

    @property
    def publish_backlog(self) -> int:
        return sum(lane.backlog for lane in self._lanes.values())

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
    async def _thread(self) -> None:
        """python-socketio's listener task, over the lanes' reads (``self._inbox``): each read decoded
        and counted at once, its messages handled in order. Its own loop rather than a ``_listen``
        for python-socketio's: no async generator step, ``isinstance`` checks and debug line
        formatted per message (``_handle_broker`` does what its loop did with each)."""
        while True:
            payloads = await self._inbox.get()  # never, on the in-memory layer (no lanes)
            try:
                await self._received(payloads)
            except Exception:  # this task ending would leave the process deaf to the others, silently
                logger.exception("a broker read could not be handled")

    async def _received(self, payloads: list[bytes]) -> None:
        messages = []
        for raw in payloads:
            try:
                event = self._deserialize(raw)
            except Exception:
                logger.exception("a broker message could not be read")
                continue
            if not isinstance(event, dict):
                continue
            batch = event.get("data") if event.get("type") == "sio.batch" else [event.get("data")]
            if isinstance(batch, list):
                messages += [data for data in batch if isinstance(data, dict)]
        # What this process decodes: its rooms' messages (its own publishes to a room it is in come
        # back too) and the shared group's (docs/performance.md). Counted per read, not per message.
        kinds: dict[str, int] = {}
        for data in messages:
            kind = kind_of(data)
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, count in kinds.items():
            metrics.child(metrics.BROKER_MESSAGES, kind).inc(count)
        # This process's own messages are skipped, but an ack's return (``callback``), whose host id
        # names the process that asked for the ack: its receiver (python-socketio's rule).
        host_id = self.host_id
        for data in messages:
            if data.get("host_id") != host_id or data.get("method") == "callback":
                await self._handle_broker(data)

    async def _handle_broker(self, data: dict[str, Any]) -> None:
        """What python-socketio's listener does with another process's message (or an ack's return to
        this one), and the control messages the composition root registered (``hooks``); a failure is
        logged, the next goes on."""
        method = data.get("method")
        try:
            if method == "emit":
                await self._handle_emit(data)
            elif method == "callback":
                await self._handle_callback(data)
            elif method == "disconnect":
                await self._handle_disconnect(data)
            elif method == "enter_room":
                await self._handle_enter_room(data)
            elif method == "leave_room":
                await self._handle_leave_room(data)
            elif method == "close_room":
                await self._handle_close_room(data)
            elif isinstance(method, str) and method not in SIO_METHODS:  # another program's junk (a list) is none
                await hooks.run_control(self, method, data)  # a task unless ordered: the listener goes on
        except Exception:
            logger.exception("broker message %s failed", method)
