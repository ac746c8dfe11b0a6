"""A python-socketio client manager whose pub/sub transport is the Channels layer.

``AsyncPubSubManager`` asks for two methods, ``_publish`` and ``_listen``;
``config.realtime.transport`` supplies them over the Channels layer, so one Redis
(channels-redis) carries rooms and broadcasts across server processes and any
Django process can reach connected sockets.

This class is the process's delivery: its life cycle (startup hooks, graceful
shutdown), an *outbox* (messages committed by sync code in other threads are
delivered in order by one task on the server's loop), the recovery log's offsets,
*control* messages routed to the handlers the composition root registered
(``config.realtime.hooks``), and the gauges.
"""

import asyncio
import functools
import logging
import signal
import threading
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from socketio.async_pubsub_manager import AsyncPubSubManager

from config import metrics
from config.realtime import catalogue, hooks
from config.realtime.lanes import Lane
from config.realtime.orm import orm_in_flight
from config.realtime.transport import ChannelLayerTransport, OutageLog

logger = logging.getLogger(__name__)

OUTBOX_BATCH_MAX = 500  # messages per recovery-log pipeline
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
ORM_SETTLE_SECONDS = 1.0  # a stop waits this long at most for the periodic work's database calls


class ChannelLayerManager(ChannelLayerTransport, AsyncPubSubManager):
    name = "channels"

    def __init__(self, group: str | None = None, **kwargs: Any) -> None:
        super().__init__(channel=group or settings.SOCKETIO["CHANNEL_GROUP"], **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outage = OutageLog()
        # Broker lanes by shard, the room groups local sockets want, the listener's channel (transport).
        self._lanes: dict[int, Lane] = {}
        self._wanted: set[str] = set()
        self._listen_channel: str | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        # Set when the process begins to stop: new connects are refused, /readyz answers 503.
        self.stopping = False
        self._stop_started = 0.0  # monotonic, when the stop began: it finishes within SHUTDOWN_TIMEOUT of it
        self._early_stop: asyncio.Task[None] | None = None  # started by the stop signal (``_on_stop_signal``)
        self._signalled = False
        self._essential = 0  # self.tasks[:_essential] deliver (outbox, lanes) and run until the very end
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
        # ORM calls from handlers run here (``orm.db``): a bounded pool,
        # so at most DB_THREADS database connections per process.
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=settings.SOCKETIO["DB_THREADS"], thread_name_prefix="orm")
        )
        self.outbox = asyncio.Queue()
        self.start_task(self._drain_outbox())
        self._start_lanes()
        self._essential = len(self.tasks)
        self._install_stop_signal()
        for hook in hooks.startup_hooks():
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
            metrics.PUBLISH_QUEUE.set(self.publish_backlog)
            await asyncio.sleep(1)

    # ------------------------------------------------------------ graceful stop
    # A stop has two halves. The stop signal (SIGTERM, SIGINT) starts the first here, before
    # the ASGI server hears of it: connects refused, every session saved for recovery, the
    # apps' hooks (buffered writes, presence) and the outbox, then the long-polling sockets
    # closed at once (their pending GETs answered, nobody waited for). Only then is the
    # server's own handler called: uvicorn closes the websockets (1012: clients reconnect at
    # once, elsewhere or here after the restart) and finds no request left to wait for. The
    # second half is the ASGI lifespan's shutdown: whatever is left is closed, the hooks run
    # again for what came meanwhile, the queues are handed over. Both within SHUTDOWN_TIMEOUT.

    def _install_stop_signal(self) -> None:
        """Put ``_on_stop_signal`` in front of the handlers installed now (uvicorn's, when it serves).

        Called when the server starts, never at import; only the main thread may.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            signal.signal(signum, functools.partial(self._on_stop_signal, previous=previous))

    def _on_stop_signal(self, signum: int, frame: FrameType | None, previous: Any) -> None:
        if self._signalled or self.loop is None or self.loop.is_closed():
            _pass_on(signum, frame, previous)  # a second signal: the server's own handling, at once
            return
        self._signalled = True

        async def stop_then_pass_on() -> None:
            try:
                await self.stop_serving()
            finally:
                _pass_on(signum, frame, previous)

        def start() -> None:
            self._early_stop = self.loop.create_task(stop_then_pass_on())

        self.loop.call_soon_threadsafe(start)

    def _remaining(self) -> float:
        return self._stop_started + settings.SHUTDOWN_TIMEOUT - time.monotonic()

    async def stop_serving(self) -> None:
        """The first half of a stop (see above); runs once, within about half of SHUTDOWN_TIMEOUT."""
        if self._stop_started:
            return
        self.stopping = True
        self._stop_started = time.monotonic()
        periodic = self.tasks[self._essential :]
        for task in periodic:
            task.cancel()  # periodic work: a heartbeat must not announce users this process is letting go
        try:
            async with asyncio.timeout(settings.SHUTDOWN_TIMEOUT / 2):
                await asyncio.gather(*periodic, return_exceptions=True)
                await self._orm_settles(ORM_SETTLE_SECONDS)
                if self.server.recovery is not None:
                    await self.server.keeper.keep_all()
                await self._run_hooks()
                await self._drain()
                await self._close(polling_only=True)
        except TimeoutError:
            logger.warning(
                "stopping: the first half of the stop was cut short after %g s", settings.SHUTDOWN_TIMEOUT / 2
            )

    async def shutdown(self) -> None:
        """Stop gracefully (ASGI lifespan shutdown), within ``SHUTDOWN_TIMEOUT`` of the stop's start.

        After a stop signal the sockets have been saved and most are gone by now; without
        one (a server that sends none) the first half runs here.
        """
        if self.loop is None:
            self.stopping = True
            return  # never served a socket: nothing to hand over
        if self._early_stop is not None:
            await asyncio.gather(self._early_stop, return_exceptions=True)
        await self.stop_serving()
        try:
            async with asyncio.timeout(max(1.0, self._remaining())):
                await self._close(polling_only=False)
                await self._run_hooks()  # what arrived while the sockets closed
                await self._drain()
        except TimeoutError:
            logger.error("graceful shutdown did not finish within %s s", settings.SHUTDOWN_TIMEOUT)
        for task in self.tasks:
            task.cancel()
        metrics.process_stopping()

    @staticmethod
    async def _orm_settles(bound: float) -> None:
        """Wait (at most ``bound`` s) for the database calls in flight: a cancelled task's call goes
        on in its thread, and a heartbeat's "online" written after the hooks' "offline" would stay."""
        deadline = time.monotonic() + bound
        while orm_in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _run_hooks(self) -> None:
        for hook in hooks.shutdown_hooks():
            try:
                await hook(self)
            except Exception:
                logger.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))

    async def _drain(self) -> None:
        """Everything queued goes out: the outbox's messages, then what the lanes still hold."""
        while not self.outbox.empty():
            batch = []
            while not self.outbox.empty() and len(batch) < OUTBOX_BATCH_MAX:
                batch.append(self.outbox.get_nowait())
            await self.dispatch_many(batch)
        while self.publish_backlog:
            await asyncio.sleep(0.01)  # the lanes send the rest

    async def _close(self, polling_only: bool) -> None:
        """Close sockets at the transport level, all at once, waiting for no client.

        Engine.IO's ``close()`` would wait until the client read the CLOSE packet, which one
        that does not read (or is not polling now) never does. A pending long-poll gets the
        CLOSE packet at once; a websocket's is left to the ASGI server (1012) unless
        ``polling_only`` is off. A server-side Socket.IO disconnect would tell the clients not
        to reconnect.
        """
        eio = self.server.eio
        closing = [
            (eio_sid, socket)
            for eio_sid, socket in list(eio.sockets.items())
            if not (polling_only and (socket.upgraded or socket.upgrading))
        ]
        results = await asyncio.gather(
            *(socket.close(wait=False, abort=socket.upgraded) for _, socket in closing), return_exceptions=True
        )
        for eio_sid, _ in closing:  # after close(): its disconnect handlers still read the session
            eio.sockets.pop(eio_sid, None)
        for result in results:
            if isinstance(result, Exception):
                logger.warning("stopping: a socket did not close cleanly (%s)", result)

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """A recovering connection gets its old sid back (``config.realtime.recovering``); any other a new one."""
        recovering = self.server.recoveries.connecting(eio_sid, namespace)
        reused = recovering.reused_sid if recovering is not None else None
        if reused is None:
            return await super().pre_connect(eio_sid, namespace)
        self.basic_enter_room(reused, namespace, None, eio_sid=eio_sid)
        self.basic_enter_room(reused, namespace, reused, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(reused)
        return reused

    # ------------------------------------------------------------ delivery
    async def _log(self, messages: list[dict[str, Any]]) -> None:
        """Give server events their offsets: appended to the recovery log, one round trip for the
        batch, before anyone receives them.

        Not for events asking for an ack, volatile ones (superseded by the next) or replies
        a process computes for itself (``local``).
        """
        recovery = self.server.recovery
        if recovery is None:
            return
        logged = [
            message
            for message in messages
            if message["method"] == "emit"
            and message.get("callback") is None
            and "offset" not in message
            and not catalogue.is_volatile(message["namespace"], message["event"])
        ]
        if logged:
            offsets = await recovery.append([(message["namespace"], message) for message in logged])
            for message, offset in zip(logged, offsets, strict=True):
                if offset is not None:
                    message["offset"] = offset

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """Deliver with the event's offset as the last argument (``recovery``)."""
        if settings.EMIT_VALIDATION:
            for problem in catalogue.violations(message):
                logger.error("an emitted payload breaks the event catalogue: %s", problem)
        if message.get("unlogged") and self.server.recovery is not None:
            # Another process (a WSGI view, the admin, a shell) could not log it: this process's
            # next log write marks the gap, so nobody who missed it is told they recovered.
            self.server.recovery.unlogged = True
        if message.get("offset"):
            message = {**message, "data": [*message["data"], message["offset"]]}
        await super()._handle_emit(message)

    async def dispatch(self, message: dict[str, Any], local: bool = False) -> None:
        """Deliver to this process's sockets, then (unless ``local``) publish for the others."""
        await self.dispatch_many([message], local=local)

    async def dispatch_many(self, messages: list[dict[str, Any]], local: bool = False) -> None:
        """``dispatch`` for several messages, in order, their log writes made as one."""
        if not local:
            try:
                await self._log(messages)
            except Exception:
                logger.exception("the recovery log write failed")  # delivered without offsets
        for message in messages:
            message.setdefault("host_id", self.host_id)
            method = message["method"]
            try:
                if method == "emit":
                    metrics.SERVER_EVENTS.labels(message["event"]).inc()
                    await self._handle_emit(message)
                elif method == "close_room":
                    await self._handle_close_room(message)
                elif (handler := hooks.control_handler(method)) is not None:
                    await handler(self, message)
            except Exception:
                logger.exception("local delivery of %s failed", message.get("event") or method)
            if not local:
                await self._publish(message)

    async def _drain_outbox(self) -> None:
        """Whatever committed code queued meanwhile goes as one batch (one log write)."""
        while True:
            batch = [await self.outbox.get()]
            while not self.outbox.empty() and len(batch) < OUTBOX_BATCH_MAX:
                batch.append(self.outbox.get_nowait())
            await self.dispatch_many(batch)


def _pass_on(signum: int, frame: FrameType | None, previous: Any) -> None:
    """Hand a stop signal to the handler that was there before ours."""
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
