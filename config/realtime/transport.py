"""The manager's pub/sub over the Channels layer: a batching publisher and the listener.

A *publisher* task with a bounded queue, so a slow or absent Redis never stalls local
delivery; an outage is logged once and delivery resumes by itself. Mixed into
``ChannelLayerManager``, which owns the queue, the channel group and the host id.
"""

import asyncio
import logging
import uuid
from typing import Any

from django.conf import settings

from config import metrics
from config.realtime import catalogue, hooks, recovery
from config.realtime.identity import user_room

logger = logging.getLogger("config.realtime.manager")

PUBLISH_QUEUE_MAX = 50_000
PUBLISH_BATCH_MAX = 500
SIO_METHODS = {"emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"}


def kind_of(message: dict[str, Any]) -> str:
    """What a broker message is addressed to: a room, a user's room, everyone, one socket, or a control."""
    if message.get("method") not in SIO_METHODS:
        return "control"
    room = message.get("room")
    if room is None:
        return "broadcast" if message.get("method") in ("emit", "close_room") else "socket"
    targets = room if isinstance(room, list) else [room]
    if all(isinstance(target, str) and target.startswith(user_room("")) for target in targets):
        return "user"
    return "room"


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

    async def _publish(self, data: dict[str, Any]) -> None:
        if self.is_local_only or self._publish_queue is None:
            return
        data.setdefault("host_id", self.host_id)
        try:
            self._publish_queue.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1
            metrics.PUBLISH_DROPPED.inc()
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("channel layer backlog full: %d cross-process messages dropped", self.dropped)

    async def _run_publisher(self) -> None:
        """Publish in batches: whatever queued up while the last PUBLISH was in flight.

        Under load one Redis round trip (and one msgpack frame, one wake-up of every
        subscriber) carries many messages instead of one each.
        """
        queue = self._publish_queue
        assert queue is not None
        linger = settings.SOCKETIO["PUBLISH_LINGER_MS"] / 1000
        while True:
            batch = [await queue.get()]
            if linger and queue.empty():
                # Wait a moment for company: a few ms of latency buys far fewer
                # PUBLISHes (and wake-ups of every subscriber) per message.
                await asyncio.sleep(linger)
            while not queue.empty() and len(batch) < PUBLISH_BATCH_MAX:
                batch.append(queue.get_nowait())
            event = (
                {"type": "sio.message", "data": batch[0]} if len(batch) == 1 else {"type": "sio.batch", "data": batch}
            )
            while True:
                try:
                    await self.layer.group_send(self.channel, event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.PUBLISH_FAILURES.inc()
                    self._mark_down(exc)
                    await asyncio.sleep(0.5)
                    continue
                metrics.PUBLISH_BATCHES.inc()
                self._mark_up()
                break

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
                    message["offset"] = await own.append(message["namespace"], message)
                    if message["offset"] is None:  # no offset, and this store object ends here:
                        message["unlogged"] = True  # the server processes mark the gap (manager)
            finally:
                await own.close()
        await self.layer.group_send(self.channel, {"type": "sio.message", "data": message})

    def _mark_down(self, exc: BaseException) -> None:
        if not self._layer_down:
            self._layer_down = True
            logger.error("channel layer unavailable (%s); local sockets keep working, retrying", exc)

    def _mark_up(self) -> None:
        if self._layer_down:
            self._layer_down = False
            logger.warning("channel layer is back; cross-process delivery resumed")
        self._outage.down = False

    # ------------------------------------------------------------ listening
    async def _listen(self):  # type: ignore[override]
        layer = self.layer
        channel = None
        while channel is None:
            try:
                channel = await layer.new_channel()
                await layer.group_add(self.channel, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                channel = None
                self._mark_down(exc)
                await asyncio.sleep(1)
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
                # Every process decodes every message today, its own included: what this counts
                # is what per-room delivery (docs/performance.md, issue 21) is meant to cut.
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
