"""A python-socketio client manager whose pub/sub transport is the Channels layer.

``AsyncPubSubManager`` asks for two methods, ``_publish`` and ``_listen``;
``config.realtime.transport`` supplies the first, and the listener task itself (``_thread``),
over the Channels layer, so one Redis (channels-redis) carries rooms and broadcasts across server processes and any
Django process can reach connected sockets.

This class is the process's delivery: its start (delivery's own tasks, then the startup
hooks ``config/asgi.py`` registers; the graceful stop is ``config.realtime.stopping``),
an *outbox* (messages committed by sync code in other threads are delivered in order by
one task on the server's loop), the recovery log's offsets, *control* messages routed
to the handlers the composition root registered (``config.realtime.hooks``), the gauges, and
the periodic work the root starts (log trimming).
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from socketio.async_pubsub_manager import AsyncPubSubManager

from config import metrics
from config.realtime import catalogue, hooks
from config.realtime.clock import every
from config.realtime.holding import HoldsSockets
from config.realtime.inbox import Inbox
from config.realtime.lanes import Lane
from config.realtime.orm import orm_in_flight
from config.realtime.outbound import EmitsOnce
from config.realtime.stopping import GracefulStop
from config.realtime.transport import ChannelLayerTransport

logger = logging.getLogger(__name__)

OUTBOX_BATCH_MAX = 500  # messages per recovery-log pipeline
TRIM_SECONDS = 10.0  # the recovery log's trim: what the window let go, every this often


class ChannelLayerManager(GracefulStop, ChannelLayerTransport, HoldsSockets, EmitsOnce, AsyncPubSubManager):
    name = "channels"

    def __init__(self, group: str | None = None, **kwargs: Any) -> None:
        super().__init__(channel=group or settings.SOCKETIO["CHANNEL_GROUP"], **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Messages other threads committed, on their way to the outbox (``hand_over``).
        self._handed: list[dict[str, Any]] = []
        self._handed_lock = threading.Lock()
        # Broker lanes by shard, the room groups local sockets want, what their subscribers hear (transport).
        self._lanes: dict[int, Lane] = {}
        self._wanted: set[str] = set()
        self._inbox = Inbox()  # what the lanes' subscribers read, bounded (config/realtime/inbox.py)
        self.tasks: list[asyncio.Task[Any]] = []
        self.held = {}  # sockets whose user's rights are being read: their emits wait (``holding``)
        self.validate_emits: bool = settings.EMIT_VALIDATION  # read once: every emit asks
        # Set when the process begins to stop: new connects are refused, /readyz answers 503.
        self.stopping = False
        self._stop_started = 0.0  # monotonic, when the stop began: it finishes within SHUTDOWN_TIMEOUT of it
        self._early_stop: asyncio.Task[None] | None = None  # started by the stop signal (``_on_stop_signal``)
        self._cutoff: asyncio.TimerHandle | None = None  # the database's last moment in a stop (``stopping``)
        self._signalled = False
        self._essential = 0  # self.tasks[:_essential] deliver (outbox, lanes), sample gauges: to the very end

    # ------------------------------------------------------------ life cycle
    @property
    def layer(self) -> Any:
        return get_channel_layer()

    @property
    def is_local_only(self) -> bool:
        """The in-memory layer reaches no other process: publishing would be wasted work."""
        return isinstance(self.layer, InMemoryChannelLayer)

    def initialize(self) -> None:
        """Start delivery: the library's listener, the outbox, one lane per broker shard, and the
        gauges' sampler (they run until the very end of a stop); then the startup hooks
        ``config/asgi.py`` registers, which start every other background task (periodic work,
        cancelled first at a stop)."""
        super().initialize()
        self.loop = asyncio.get_running_loop()
        # ORM calls from handlers run here (``orm.db``): a bounded pool,
        # so at most DB_THREADS database connections per process.
        self.loop.set_default_executor(
            ThreadPoolExecutor(max_workers=settings.SOCKETIO["DB_THREADS"], thread_name_prefix="orm")
        )
        self.outbox = asyncio.Queue()
        self._inbox = Inbox()
        with self._handed_lock:
            self._handed = []
        self.start_task(self._drain_outbox())
        self._start_lanes()
        # The gauges too run to the end: a stop is when the operator looks (what a hung database holds).
        self.start_task(self.sample_gauges())
        self._essential = len(self.tasks)
        self._install_stop_signal()
        for hook in hooks.startup_hooks():
            hook(self)

    def start_task(self, coro: Awaitable[Any]) -> None:
        assert self.loop is not None
        self.tasks.append(self.loop.create_task(coro))

    async def trim_recovery_log(self) -> None:
        """Every few seconds, drop logged events older than the recovery window."""
        recovery = self.server.recovery
        if recovery is not None:
            names = self.server.namespace_handlers
            await every(TRIM_SECONDS, lambda: recovery.trim(list(names)), "trimming the recovery log")

    async def sample_gauges(self) -> None:
        """Once a second: the gauges (sockets, queues) from state this process keeps anyway; started
        with delivery and run to the very end of a stop, when its writes may hang on the database."""
        while True:
            # Every namespace served, not those in ``rooms``: python-socketio deletes a namespace's
            # entry with its last socket, and its gauge kept that socket (or a refused storm's) for good.
            for namespace in self.server.namespace_handlers:
                metrics.SOCKETS.labels(namespace).set(len(self.rooms.get(namespace, {}).get(None, ())))
            metrics.ORM_QUEUE.set(orm_in_flight())
            metrics.PUBLISH_QUEUE.set(self.publish_backlog)
            metrics.BROKER_INBOX.set(self._inbox.bytes)
            await asyncio.sleep(1)

    async def session_of(self, sid: str, namespace: str) -> dict[str, Any] | None:
        """A local socket's session; ``None`` once it is leaving: its Engine.IO session went while
        python-socketio's disconnect still runs, its rooms not left yet. Whatever reads every
        socket of a room (the relay reconcile, the access rechecks, a stop's keeping) skips it."""
        try:
            return await self.server.get_session(sid, namespace=namespace)
        except KeyError:
            return None

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """A recovering connection gets its old sid back (``config.realtime.recovering``); any other a new one."""
        connection = self.server.recovering.connecting(eio_sid, namespace)
        reused = connection.reused_sid if connection is not None else None
        if reused is None:
            return await super().pre_connect(eio_sid, namespace)
        self.basic_enter_room(reused, namespace, None, eio_sid=eio_sid)
        self.basic_enter_room(reused, namespace, reused, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(reused)
        return reused

    # ------------------------------------------------------------ delivery
    def hand_over(self, message: dict[str, Any]) -> None:
        """Put ``message`` in the outbox from another thread (``emit.deliver``): the messages handed
        over before the loop takes them go in one call, in order (on a busy loop, a chat message's
        four emits make one call, not four; an idle loop may take each as it comes)."""
        assert self.loop is not None
        with self._handed_lock:
            self._handed.append(message)
            if len(self._handed) > 1:
                return  # the call that takes the first takes this one too
        try:
            self.loop.call_soon_threadsafe(self._take_handed)
        except RuntimeError:  # the loop closed meanwhile: none of these will be taken
            with self._handed_lock:
                self._handed = []
            raise

    def _take_handed(self) -> None:
        with self._handed_lock:
            handed, self._handed = self._handed, []
        for message in handed:
            self.outbox.put_nowait(message)

    def _to_log(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The server events of ``messages`` the recovery log gives offsets to: not events asking
        for an ack, volatile ones (superseded by the next) or replies a process computes for
        itself (``local``, never asked)."""
        if self.server.recovery is None:
            return []
        return [
            message
            for message in messages
            if message["method"] == "emit"
            and message.get("callback") is None
            and "offset" not in message
            and not catalogue.is_volatile(message["namespace"], message["event"])
        ]

    async def _log(self, logged: list[dict[str, Any]]) -> None:
        """Give server events their offsets: appended to the recovery log, one round trip for the
        batch, before anyone receives them."""
        # An urgent event (an SOS) is not held back by a broker that does not answer.
        urgent = any(catalogue.is_urgent(message["namespace"], message["event"]) for message in logged)
        offsets = await self.server.recovery.append(
            [(message["namespace"], message) for message in logged], urgent=urgent
        )
        for message, offset in zip(logged, offsets, strict=True):
            if offset is not None:
                message["offset"] = offset

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """Deliver with the event's offset as the last argument (``recovery``), through ``EmitsOnce``
        unless it asks for acks or carries binary data (python-socketio's way); a socket held while its
        user's rights are read gets its copy after them (``holding``)."""
        if self.validate_emits:
            for problem in catalogue.violations(message):
                logger.error("an emitted payload breaks the event catalogue: %s", problem)
        if message.get("unlogged") and self.server.recovery is not None:
            # Another process (a WSGI view, the admin, a shell) could not log it: this process's
            # next log write marks the gap, so nobody who missed it is told they recovered.
            self.server.recovery.unlogged = True
        if message.get("offset"):
            message = {**message, "data": [*message["data"], message["offset"]]}
        if self.held:  # a user's rights are being read: their sockets' copies wait (``holding``)
            message = self.set_aside(message)
        # ``_deliver_now``'s body, inline: one coroutine call more was 60 ns of this method's 380.
        if message.get("callback") is None and not message.get("binary"):
            await self.emit_once(message)  # encoded and framed once, no task per recipient
        else:
            await super()._handle_emit(message)

    async def _deliver_now(self, message: dict[str, Any]) -> None:
        """Deliver an emit whose offset is in place and whose held copies were set aside."""
        if message.get("callback") is None and not message.get("binary"):
            await self.emit_once(message)  # encoded and framed once, no task per recipient
        else:
            await super()._handle_emit(message)

    async def dispatch(self, message: dict[str, Any], local: bool = False) -> None:
        """Deliver to this process's sockets, then (unless ``local``) publish for the others."""
        await self.dispatch_many([message], local=local)

    async def dispatch_many(self, messages: list[dict[str, Any]], local: bool = False) -> None:
        """``dispatch`` for several messages, in order, their log writes made as one."""
        logged = [] if local else self._to_log(messages)
        if logged:  # a relayed location has nothing to log: no coroutine for it
            try:
                await self._log(logged)
            except Exception:
                logger.exception("the recovery log write failed")  # delivered without offsets
        for message in messages:
            message.setdefault("host_id", self.host_id)
            method = message["method"]
            try:
                if method == "emit":
                    metrics.child(metrics.SERVER_EVENTS, message["event"]).inc()  # server-chosen names: few
                    await self._handle_emit(message)
                elif method == "close_room":
                    await self._handle_close_room(message)
                else:
                    await hooks.run_control(self, method, message)  # a task unless ordered: the outbox goes on
            except Exception:
                logger.exception("local delivery of %s failed", message.get("event") or method)
            if not local:
                await self._publish(message)

    async def _drain(self) -> None:
        """Everything queued goes out: the outbox's messages, then what the lanes still hold."""
        while not self.outbox.empty():
            batch = []
            while not self.outbox.empty() and len(batch) < OUTBOX_BATCH_MAX:
                batch.append(self.outbox.get_nowait())
            await self.dispatch_many(batch)
        while self.publish_backlog:
            await asyncio.sleep(0.01)  # the lanes send the rest

    async def _drain_outbox(self) -> None:
        """Whatever committed code queued meanwhile goes as one batch (one log write)."""
        while True:
            batch = [await self.outbox.get()]
            while not self.outbox.empty() and len(batch) < OUTBOX_BATCH_MAX:
                batch.append(self.outbox.get_nowait())
            await self.dispatch_many(batch)
