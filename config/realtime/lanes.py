"""One lane per broker shard: the subscriptions this process wants there, its publishes, and
the subscriber that hears the shard's messages for this process.

A lane is two tasks with their own connections and queue, so a shard that refuses or hangs
holds back only the rooms that hash to it; the others go on. Within a lane, subscription
changes go first, so a socket that joined a room is listening before anything is published
after its join.

Joins and leaves are not sent one per socket: a room's group is joined when its first
local socket enters and left when its last one leaves, and a lane applies only the *net*
change of everything that happened since its last round (a reconnect storm of 1,000
sockets into 1,000 rooms is one round and one SUBSCRIBE command of 1,000 channels, which
waits for no reply; a socket that comes and goes within a round costs nothing).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import hiredis
from django.conf import settings

from config import metrics
from config.realtime.redis_wire import Wire, command

logger = logging.getLogger("config.realtime.manager")

PUBLISH_QUEUE_MAX = 50_000
PUBLISH_BATCH_MAX = 500
RETRY_SECONDS = 0.5
SUBSCRIBE_CHUNK = 10_000  # channel names per SUBSCRIBE command
# A subscriber's connection Redis ends this soon after it waited for the listener is logged as cut
# for that (it reads the backlog left in its socket within a second); later, for another reason.
# Either way it is a cut, not the shard down: that is the next connection failing (``listen``).
CUT_SECONDS = 5.0


class Lane:
    """A shard's two connections (``config.realtime.redis_wire``): publishes pipelined on one,
    the groups this process wants subscribed on the other, whose messages go to ``received``.

    channels-redis sends one PUBLISH per ``group_send`` and waits for its reply; a batch for
    many rooms is many round trips. A lane writes the batch at once: one round trip, the
    same channel names (``channel_name``) and serialisation (``serialize``) as the layer's, so
    ``group_send`` from a process without a server (``publish_external``) reaches the same
    subscribers. docs/performance.md has the measurement.
    """

    def __init__(
        self,
        name: str,
        host: dict[str, Any],
        channel_name: Callable[[str], str],
        wanted: set[str],
        received: Callable[[list[bytes]], Awaitable[Any] | None],
        serialize: Callable[[dict[str, Any]], bytes],
        queue_max: int = PUBLISH_QUEUE_MAX,
    ) -> None:
        """``host``: the shard, as channels-redis describes it. ``received``: called with the
        messages' bytes as they arrive, in order; what it returns, if not ``None``, is waited on
        before the subscriber reads again (``config.realtime.inbox``: the listener is behind).
        ``queue_max``: the publishes a lane holds while its shard is slow or away; past it they are
        dropped, counted and logged (docs/deployment.md)."""
        self.name = name
        self.host = host
        self._channel_name = channel_name
        self._wanted = wanted  # groups of rooms with a local socket (shared with the transport)
        self._received = received
        self._serialize = serialize
        self.messages: deque[tuple[str, dict[str, Any]]] = deque()
        self.in_flight = 0  # messages taken off ``messages``, written, not yet acknowledged
        self.dirty: set[str] = set()
        self.subscribed: set[str] = set()  # what the subscriber is asked for, again on each reconnect
        self.wake = asyncio.Event()
        self._settle_waiters: list[asyncio.Future[None]] = []
        self._publisher: Wire | None = None
        self._subscriber: Wire | None = None  # set while connected and its subscriptions taken
        self.down = False
        self.dropped = 0
        self.queue_max = queue_max
        self.behind = 0  # times the subscriber stopped reading for the listener (``_wait_for_listener``)
        self.cuts = 0  # subscriber connections Redis ended while it stayed up (``listen``)
        self._resumed = -CUT_SECONDS  # monotonic: when the subscriber last read again after waiting
        self._cut = ""  # why Redis, up, may have ended the last subscriber: told once the next is in

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

    @property
    def backlog(self) -> int:
        """The messages still to deliver, the batch on the wire included (a stop waits for them)."""
        return len(self.messages) + self.in_flight

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

    # ------------------------------------------------------------ the publishing task
    async def run(self) -> None:
        linger = settings.SOCKETIO["PUBLISH_LINGER_MS"] / 1000
        try:
            while True:
                await self.wake.wait()
                if linger and not self.dirty and len(self.messages) == 1:
                    # Wait a moment for company: messages for one room travel as one batch.
                    await asyncio.sleep(linger)
                self.wake.clear()
                try:
                    # Not into a subscriber found cut while it waited for the listener (the first write
                    # failed): asyncio logs each write after; the changes go when the lane is back.
                    if self._subscriber is not None and not self._subscriber.closed:
                        self._reconcile(self._subscriber)
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
                if self._subscriber is not None:
                    self._mark_up()
        finally:
            self._close_publisher()

    def _reconcile(self, subscriber: Wire) -> None:
        """Send the net subscription changes since the last round (written, not waited for)."""
        waiters, self._settle_waiters = self._settle_waiters, []
        dirty, self.dirty = self.dirty, set()
        joined = [group for group in dirty if group in self._wanted and group not in self.subscribed]
        left = [group for group in dirty if group not in self._wanted and group in self.subscribed]
        self._write_subscriptions(subscriber, "SUBSCRIBE", joined)
        self._write_subscriptions(subscriber, "UNSUBSCRIBE", left)
        self.subscribed.update(joined)
        self.subscribed.difference_update(left)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write_subscriptions(self, wire: Wire, verb: str, groups: Iterable[str]) -> None:
        names = [self._channel_name(group) for group in groups]
        for start in range(0, len(names), SUBSCRIBE_CHUNK):  # UNSUBSCRIBE with no name would mean all
            wire.write(command(verb, *names[start : start + SUBSCRIBE_CHUNK]))

    async def _send_batch(self) -> None:
        """Whatever queued up: one PUBLISH per group (a group's messages keep their order), one round trip."""
        taken = [self.messages.popleft() for _ in range(min(len(self.messages), PUBLISH_BATCH_MAX))]
        self.in_flight = len(taken)
        by_group: dict[str, list[dict[str, Any]]] = {}
        for group, data in taken:
            by_group.setdefault(group, []).append(data)
        commands = []
        for group, items in by_group.items():
            one = len(items) == 1
            event = {"type": "sio.message" if one else "sio.batch", "data": items[0] if one else items}
            commands.append(command("PUBLISH", self._channel_name(group), self._serialize(event)))
        try:
            replies = await self._write_publishes(b"".join(commands), len(commands))
        except BaseException:
            self.messages.extendleft(reversed(taken))  # back to the front, in order, for the next attempt
            self._close_publisher()  # replies may be outstanding: the next attempt starts afresh
            raise
        finally:
            self.in_flight = 0
        answers = zip(by_group, replies, strict=True)
        refused = {group: reply for group, reply in answers if isinstance(reply, hiredis.ReplyError)}
        if refused:  # only those go back: the others reached their subscribers already
            self.messages.extendleft(reversed([(group, data) for group, data in taken if group in refused]))
            raise next(iter(refused.values()))
        metrics.PUBLISH_BATCHES.inc()

    async def _write_publishes(self, data: bytes, count: int) -> list[Any]:
        """Write ``count`` commands on the publisher; their replies. A connection kept from an
        earlier batch that ended meanwhile (Redis's idle ``timeout``, a proxy's, a restart, keepalive
        giving up during a partition: an ``OSError`` that is no ``ConnectionError``) is replaced at
        once, not after a failed round: only a shard that refuses a new one is down, so the lane's
        log says what the shard did, not when this process next published. As after any failure,
        a batch Redis took in part before the connection went is sent again."""
        if self._publisher is not None and self._publisher.closed:
            self._close_publisher()  # found out while idle: no write into a dead connection
        if self._publisher is not None:
            try:
                self._publisher.write(data)
                return await self._publisher.expect(count)
            except OSError:
                self._close_publisher()
        self._publisher = await Wire.open(self.host)
        self._publisher.write(data)
        return await self._publisher.expect(count)

    def _close_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # ------------------------------------------------------------ the subscribing task
    async def listen(self) -> None:
        """Keep the subscriber connected: on each (re)connect it asks for every group wanted so far,
        then hands over the messages. One Redis ends once subscribed is a cut, told when the next is
        subscribed; one that fails before (a stop, a proxy whose Redis is away) is the shard down."""
        while True:
            wire = None
            try:
                wire = await Wire.open(self.host)
                self._write_subscriptions(wire, "SUBSCRIBE", self.subscribed)
                wire.write(command("PING"))  # its answer: the subscriptions before it were taken
                await self._read(wire)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, ConnectionError) and self._subscriber is not None:
                    # Down only if the next connection fails: Redis also cuts a reader slower than
                    # its rooms whose listener kept up (the limit's 8 MB for 60 s), or a CLIENT KILL.
                    recent = time.monotonic() - self._resumed < CUT_SECONDS
                    self._cut = (
                        "the listener behind" if recent else "while up: a slow reader, a CLIENT KILL, a quick restart"
                    )
                else:
                    self._cut = ""
                    self._mark_down(exc)
            finally:
                self._subscriber = None
                if wire is not None:
                    wire.close()
            await asyncio.sleep(RETRY_SECONDS)

    async def _read(self, wire: Wire) -> None:
        """Hand over the messages; the first PING's answer makes ``wire`` the lane's subscriber. A
        refused command (NOAUTH, NOPERM) raises: the lane is down and reconnects, rather than
        count as subscribed rooms that hear nothing."""
        while True:
            payloads, refused = [], None
            for reply in await wire.replies():
                if isinstance(reply, list) and reply[0] == b"message":
                    payloads.append(reply[2])
                elif isinstance(reply, hiredis.ReplyError):
                    refused = refused or reply
                elif reply in ([b"pong", b""], b"PONG") and refused is None:
                    self._subscriber = wire
                    self.wake.set()  # the changes asked for while away go now
                    if self._cut:
                        self._count_cut(self._cut)
            if payloads and (room := self._received(payloads)) is not None:
                await self._wait_for_listener(room)
            if refused is not None:
                raise refused

    async def _wait_for_listener(self, room: Awaitable[Any]) -> None:
        """Read no more until the listener has room: what comes meanwhile waits in the socket's
        buffers, then in Redis, which cuts the subscriber past its pubsub limit (``inbox``)."""
        self.behind += 1
        metrics.BROKER_BEHIND.inc()
        if self.behind == 1 or self.behind % 100 == 0:
            logger.warning("broker listener behind: %s's subscriber waits for it (%d times)", self.name, self.behind)
        await room
        self._resumed = time.monotonic()

    def _count_cut(self, why: str) -> None:
        self._cut = ""
        self.cuts += 1
        metrics.BROKER_CUTS.inc()
        if self.cuts == 1 or self.cuts % 100 == 0:  # what Redis had not sent is lost
            logger.warning("Redis cut %s's subscriber, %s (%d times)", self.name, why, self.cuts)

    def _mark_down(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            logger.error("channel layer unavailable on %s (%s); local sockets keep working, retrying", self.name, exc)

    def _mark_up(self) -> None:
        if self.down:
            self.down = False
            logger.warning("channel layer is back on %s; cross-process delivery resumed", self.name)
