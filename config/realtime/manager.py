"""A python-socketio client manager whose pub/sub transport is the Channels layer.

``AsyncPubSubManager`` asks for two methods, ``_publish`` and ``_listen``; this
class supplies them over ``channels.layers.get_channel_layer()``, so one Redis
(channels-redis) carries rooms and broadcasts across server processes and any
Django process can reach connected sockets.

Beyond that it adds what a product needs from the transport:

- an *outbox*: messages committed by sync code in other threads are delivered
  in order by one task on the server's loop;
- a *publisher* task with a bounded queue, so a slow or absent Redis never
  stalls local delivery; an outage is logged once and delivery resumes by itself;
- *control* messages (kick a user, refresh a partner's bookings, presence)
  routed to handlers that the apps register.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from socketio.async_pubsub_manager import AsyncPubSubManager

from config import metrics
from config.realtime import catalogue, recovery
from config.realtime.orm import orm_in_flight

logger = logging.getLogger(__name__)

ControlHandler = Callable[["ChannelLayerManager", dict[str, Any]], Awaitable[None]]
_control_handlers: dict[str, ControlHandler] = {}
_startup_hooks: list[Callable[["ChannelLayerManager"], None]] = []
ShutdownHook = Callable[["ChannelLayerManager"], Awaitable[None]]
_shutdown_hooks: list[ShutdownHook] = []

PUBLISH_QUEUE_MAX = 50_000
PUBLISH_BATCH_MAX = 500
SIO_METHODS = {"emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"}


def on_control(method: str) -> Callable[[ControlHandler], ControlHandler]:
    """Register the handler of a control message ``method`` (run on every process)."""

    def register(handler: ControlHandler) -> ControlHandler:
        _control_handlers[method] = handler
        return handler

    return register


def on_startup(hook: Callable[["ChannelLayerManager"], None]) -> Callable[["ChannelLayerManager"], None]:
    """Register a function called once the server's loop runs (start background tasks there)."""
    _startup_hooks.append(hook)
    return hook


def on_shutdown(hook: ShutdownHook) -> ShutdownHook:
    """Register a coroutine run once when the process stops (write what is buffered, withdraw state)."""
    _shutdown_hooks.append(hook)
    return hook


class _OutageLog(logging.Filter):
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


class ChannelLayerManager(AsyncPubSubManager):
    name = "channels"

    def __init__(self, group: str | None = None, **kwargs: Any) -> None:
        super().__init__(channel=group or settings.SOCKETIO["CHANNEL_GROUP"], **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._publish_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._outage = _OutageLog()
        self._layer_down = False
        self.dropped = 0
        self.tasks: list[asyncio.Task[Any]] = []
        # Set when the process begins to stop: new connects are refused, /readyz answers 503.
        self.stopping = False
        # eio_sid -> the sid a recovering connection gets back (``server.Server``); read by ``pre_connect``.
        self.reused_sids: dict[str, str] = {}
        # Logger filters do not apply to records of child loggers: name each one.
        for name in ("channels_redis.pubsub", "channels_redis.core"):
            logging.getLogger(name).addFilter(self._outage)

    # ------------------------------------------------------------ life cycle
    @property
    def layer(self) -> Any:
        return get_channel_layer()

    @property
    def is_local_only(self) -> bool:
        """The in-memory layer reaches no other process: publishing would be wasted work."""
        return isinstance(self.layer, InMemoryChannelLayer)

    def initialize(self) -> None:
        super().initialize()
        self.loop = asyncio.get_running_loop()
        # ORM calls from handlers run here (``namespace.db``): a bounded pool,
        # so at most DB_THREADS database connections per process.
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=settings.SOCKETIO["DB_THREADS"], thread_name_prefix="orm")
        )
        self.outbox = asyncio.Queue()
        self._publish_queue = asyncio.Queue(maxsize=PUBLISH_QUEUE_MAX)
        self.tasks.append(self.loop.create_task(self._drain_outbox()))
        self.tasks.append(self.loop.create_task(self._run_publisher()))
        for hook in _startup_hooks:
            hook(self)
        if self.server.recovery is not None:
            self.start_task(self._trim_recovery_log())
        self.start_task(self._sample_gauges())
        from config.realtime.tuning import LoopDiagnostics, diagnostics_enabled

        if diagnostics_enabled():
            diagnostics = LoopDiagnostics()
            diagnostics.install()
            self.start_task(diagnostics.watch_loop())

    def start_task(self, coro: Awaitable[Any]) -> None:
        assert self.loop is not None
        self.tasks.append(self.loop.create_task(coro))

    async def _trim_recovery_log(self) -> None:
        """Every few seconds, drop logged events older than the recovery window."""
        while True:
            await asyncio.sleep(10)
            await self.server.recovery.trim(list(self.server.namespace_handlers))

    async def _sample_gauges(self) -> None:
        """Once a second: the gauges (sockets, queues) from state this process keeps anyway."""
        while True:
            for namespace, members in self.rooms.items():
                metrics.SOCKETS.labels(namespace).set(len(members.get(None, ())))
            metrics.ORM_QUEUE.set(orm_in_flight())
            metrics.PUBLISH_QUEUE.set(self._publish_queue.qsize() if self._publish_queue is not None else 0)
            await asyncio.sleep(1)

    async def shutdown(self) -> None:
        """Stop gracefully (ASGI lifespan shutdown), within ``SHUTDOWN_TIMEOUT`` seconds.

        The server has stopped accepting connections and closed its websockets by now
        (uvicorn sends 1012, so clients reconnect elsewhere at once). Close what is
        left at the transport level (a server-side Socket.IO disconnect would tell
        clients not to reconnect), run the apps' hooks (buffered writes, presence),
        then hand over everything still queued for other processes.
        """
        self.stopping = True
        if self.loop is None:
            return  # never served a socket: nothing to hand over
        try:
            await asyncio.wait_for(self._stop(), timeout=settings.SHUTDOWN_TIMEOUT)
        except TimeoutError:
            logger.error("graceful shutdown did not finish within %s s", settings.SHUTDOWN_TIMEOUT)
        for task in self.tasks:
            task.cancel()
        metrics.process_stopping()

    async def _stop(self) -> None:
        for eio_sid in list(self.server.eio.sockets):
            await self.server.eio.disconnect(eio_sid)
        for hook in _shutdown_hooks:
            try:
                await hook(self)
            except Exception:
                logger.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))
        while not self.outbox.empty():
            await self.dispatch(self.outbox.get_nowait())
        while self._publish_queue is not None and not self._publish_queue.empty() and not self.is_local_only:
            await asyncio.sleep(0.01)  # the publisher task sends the rest

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """A recovering connection gets its old sid back; any other a new one."""
        reused = self.reused_sids.pop(eio_sid, None)
        if reused is None:
            return await super().pre_connect(eio_sid, namespace)
        self.basic_enter_room(reused, namespace, None, eio_sid=eio_sid)
        self.basic_enter_room(reused, namespace, reused, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(reused)
        return reused

    # ------------------------------------------------------------ delivery
    async def _log(self, message: dict[str, Any]) -> None:
        """Give a server event its offset: appended once to the recovery log, before anyone receives it.

        Not for events asking for an ack, volatile ones (superseded by the next) or replies
        a process computes for itself (``local``).
        """
        recovery = self.server.recovery
        if recovery is None or message.get("callback") is not None or "offset" in message:
            return
        if catalogue.is_volatile(message["namespace"], message["event"]):
            return
        offset = await recovery.append(message["namespace"], message)
        if offset is not None:
            message["offset"] = offset

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """Deliver with the event's offset as the last argument (``recovery``)."""
        if settings.EMIT_VALIDATION:
            for problem in catalogue.violations(message):
                logger.error("an emitted payload breaks the event catalogue: %s", problem)
        if message.get("offset"):
            message = {**message, "data": [*message["data"], message["offset"]]}
        await super()._handle_emit(message)

    async def dispatch(self, message: dict[str, Any], local: bool = False) -> None:
        """Deliver to this process's sockets, then (unless ``local``) publish for the others."""
        message.setdefault("host_id", self.host_id)
        method = message["method"]
        try:
            if method == "emit" and not local:
                await self._log(message)
            if method == "emit":
                metrics.SERVER_EVENTS.labels(message["event"]).inc()
                await self._handle_emit(message)
            elif method == "close_room":
                await self._handle_close_room(message)
            elif method in _control_handlers:
                await _control_handlers[method](self, message)
        except Exception:
            logger.exception("local delivery of %s failed", message.get("event") or method)
        if not local:
            await self._publish(message)

    async def _drain_outbox(self) -> None:
        while True:
            message = await self.outbox.get()
            await self.dispatch(message)

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
                if not isinstance(data, dict) or data.get("host_id") == self.host_id:
                    continue
                method = data.get("method")
                if method in SIO_METHODS:
                    yield data
                elif method in _control_handlers:
                    try:
                        await _control_handlers[method](self, data)
                    except Exception:
                        logger.exception("control message %s failed", method)
