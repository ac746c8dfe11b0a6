"""One lane per broker shard: the subscriptions this process wants there, then its publishes.

A lane is a task with its own queue, so a shard that refuses or hangs holds back only the
rooms that hash to it; the others go on. Within a lane, subscription changes go first,
so a socket that joined a room is listening before anything is published after its join.

Joins and leaves are not sent one per socket: a room's group is joined when its first
local socket enters and left when its last one leaves, and a lane applies only the *net*
change of everything that happened since its last round (a reconnect storm of 1,000
sockets into 1,000 rooms is one round of 1,000 SUBSCRIBE writes, none of which waits
for a reply; a socket that comes and goes within a round costs nothing).
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from django.conf import settings

from config import metrics

logger = logging.getLogger("config.realtime.manager")

PUBLISH_QUEUE_MAX = 50_000
PUBLISH_BATCH_MAX = 500
RETRY_SECONDS = 0.5


class Lane:
    """Subscriptions through the layer's groups; publishes pipelined on ``redis``, the shard's own client.

    channels-redis sends one PUBLISH per ``group_send`` and waits for its reply; a batch for
    many rooms is many round trips. A lane writes the batch as one pipeline: one round trip,
    the same channel names (``channel_name``) and serialisation as the layer's, so its
    subscribers cannot tell the difference. docs/performance.md has the measurement.
    """

    def __init__(
        self,
        name: str,
        layer: Any,
        redis: Any,
        channel_name: Callable[[str], str],
        channel: Callable[[], str | None],
        wanted: set[str],
        queue_max: int = PUBLISH_QUEUE_MAX,
    ) -> None:
        """``queue_max``: the publishes a lane holds while its shard is slow or away; past it
        they are dropped, counted and logged (docs/deployment.md)."""
        self.name = name
        self.layer = layer
        self.redis = redis
        self._channel_name = channel_name
        self._channel = channel  # the listener's channel, once it has one
        self._wanted = wanted  # groups of rooms with a local socket (shared with the transport)
        self.messages: deque[tuple[str, dict[str, Any]]] = deque()
        self.dirty: set[str] = set()
        self.subscribed: set[str] = set()
        self.wake = asyncio.Event()
        self._settle_waiters: list[asyncio.Future[None]] = []
        self.down = False
        self.dropped = 0
        self.queue_max = queue_max

    # ------------------------------------------------------------ fed by the transport
    def publish(self, group: str, data: dict[str, Any]) -> None:
        if len(self.messages) >= self.queue_max:
            self.dropped += 1
            metrics.PUBLISH_DROPPED.inc()
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.error("channel layer backlog full on %s: %d messages dropped", self.name, self.dropped)
            return
        self.messages.append((group, data))
        self.wake.set()

    def changed(self, group: str) -> None:
        self.dirty.add(group)
        self.wake.set()

    async def settled(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until the subscription changes asked for so far are sent."""
        if not self.dirty:
            return
        if len(self._settle_waiters) > 100:  # a long outage: joins that gave up leave no trace
            self._settle_waiters = [waiter for waiter in self._settle_waiters if not waiter.done()]
        waiter = asyncio.get_running_loop().create_future()
        self._settle_waiters.append(waiter)
        self.wake.set()
        with contextlib.suppress(TimeoutError):  # a shard that hangs: the join stands, its events wait
            await asyncio.wait_for(waiter, timeout)  # cancels the waiter when the time is up

    # ------------------------------------------------------------ the task
    async def run(self) -> None:
        linger = settings.SOCKETIO["PUBLISH_LINGER_MS"] / 1000
        while True:
            await self.wake.wait()
            if linger and not self.dirty and len(self.messages) == 1:
                # Wait a moment for company: messages for one room travel as one batch.
                await asyncio.sleep(linger)
            self.wake.clear()
            try:
                if self._channel() is not None:
                    await self._reconcile()
                while self.messages:
                    await self._send_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.PUBLISH_FAILURES.inc()
                self._mark_down(exc)
                await asyncio.sleep(RETRY_SECONDS)
                self.wake.set()
                continue
            self._mark_up()

    async def _reconcile(self) -> None:
        waiters, self._settle_waiters = self._settle_waiters, []
        dirty, self.dirty = list(self.dirty), set()
        channel = self._channel()
        done = 0
        try:
            for group in dirty:
                want = group in self._wanted
                if want and group not in self.subscribed:
                    await self.layer.group_add(group, channel)
                    self.subscribed.add(group)
                elif not want and group in self.subscribed:
                    await self.layer.group_discard(group, channel)
                    self.subscribed.discard(group)
                done += 1
        except BaseException:
            self.dirty.update(dirty[done:])  # what is left, for the next round
            self._settle_waiters = [waiter for waiter in waiters if not waiter.done()] + self._settle_waiters
            raise
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _send_batch(self) -> None:
        """Whatever queued up: one PUBLISH per group (a group's messages keep their order), one round trip."""
        taken = [self.messages.popleft() for _ in range(min(len(self.messages), PUBLISH_BATCH_MAX))]
        by_group: dict[str, list[dict[str, Any]]] = {}
        for group, data in taken:
            by_group.setdefault(group, []).append(data)
        pipe = self.redis.pipeline(transaction=False)
        for group, items in by_group.items():
            one = len(items) == 1
            event = {"type": "sio.message" if one else "sio.batch", "data": items[0] if one else items}
            pipe.publish(self._channel_name(group), self.layer.serialize(event))
        try:
            await pipe.execute()
        except BaseException:
            self.messages.extendleft(reversed(taken))  # back to the front, in order, for the next attempt
            raise
        metrics.PUBLISH_BATCHES.inc()

    def _mark_down(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error("channel layer unavailable on %s (%s); local sockets keep working, retrying", self.name, exc)

    def _mark_up(self) -> None:
        if self.down:
            self.down = False
            logger.warning("channel layer is back on %s; cross-process delivery resumed", self.name)
