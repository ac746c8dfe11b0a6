"""ORM calls from the event loop: off the loop, on a bounded executor, counted for admission control."""

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from django.conf import settings
from django.db import close_old_connections

from config.errors import Unavailable

# What counts as the database unavailable, and how it is logged: their own module, named here too
# (every caller imported them from here).
from config.realtime.unavailability import log_failure, unavailable, warn_if_unavailable

__all__ = [
    "Batched",
    "OrmLoad",
    "abandon_waits",
    "db",
    "log_failure",
    "orm_in_flight",
    "unavailable",
    "waits_on",
    "warn_if_unavailable",
]


class OrmLoad:
    """ORM calls queued or running in this process (``db``), for admission control and the
    ``homeservices_orm_queue_depth`` gauge; and, for a stopping process, the loop whose callers no
    longer wait for them (``abandon_waits``).

    A call counts from its submission until its thread is done with it, not until its caller stops
    waiting: a caller cancelled, or abandoned at a stop's cutoff, leaves its call running in a thread
    (a hung database holds it), and the threads it holds are what the count is for. A call whose
    caller gave up before a thread took it is never run, and counts no more from then on. Changed
    from the loop and from the threads: under ``_count_lock``."""

    in_flight = 0
    waiting: ClassVar[set[asyncio.Future[Any]]] = set()
    abandoned_on: asyncio.AbstractEventLoop | None = None

    @classmethod
    def busy(cls) -> bool:
        return cls.in_flight >= settings.SOCKETIO["DB_QUEUE_MAX"]


def abandon_waits() -> None:
    """A stop's last moment for the database (``stopping.DATABASE_CUTOFF``): every caller of ``db``
    waiting on this loop, and every later one, gets ``Unavailable`` at once. The calls themselves go
    on in their threads (a hung database holds them); nothing waits for them any more. Another
    loop's waits (a second server in the process, a test's live server) are not this stop's, and
    its futures may not be touched from this thread."""
    loop = OrmLoad.abandoned_on = asyncio.get_running_loop()
    for future in list(OrmLoad.waiting):
        if future.get_loop() is loop:
            future.cancel()


def waits_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a caller of ``db`` on ``loop`` is waiting for its call now."""
    return any(future.get_loop() is loop for future in list(OrmLoad.waiting))


def orm_in_flight() -> int:
    return OrmLoad.in_flight


_count_lock = threading.Lock()


def _count(change: int) -> None:
    with _count_lock:
        OrmLoad.in_flight += change


class _Call:
    """One ``db`` call's place in ``OrmLoad.in_flight`` (see there): queued, running, or given up by
    its caller before a thread took it."""

    __slots__ = ("phase",)
    QUEUED, RUNNING, GIVEN_UP = range(3)

    def __init__(self) -> None:
        self.phase = self.QUEUED
        _count(1)

    def start(self) -> bool:
        """In its thread: whether to run it (its caller still waits, or gave up while it ran)."""
        with _count_lock:
            if self.phase == self.GIVEN_UP:
                return False
            self.phase = self.RUNNING
            return True

    def give_up(self) -> None:
        """Its caller stopped waiting: a call no thread took yet never runs, and counts no more."""
        with _count_lock:
            if self.phase == self.QUEUED:
                self.phase = self.GIVEN_UP
                OrmLoad.in_flight -= 1

    def run(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self.start():
            return None  # nobody reads it: the caller was answered when it gave up
        try:
            return _with_connections(func, args, kwargs)
        finally:
            _count(-1)


def db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run ORM code off the event loop.

    What channels' ``database_sync_to_async(func, thread_sensitive=False)`` does for this
    use, without asgiref's machinery around it (issue 34: a shield, a future chained to
    another, a context copied back, a generic alias built per call; about a tenth of the
    loop's time in a chat message): the call runs in the loop's bounded default executor
    (see ``ChannelLayerManager.initialize``), in a copy of the caller's context, with the
    thread's stale connections closed before and its connection returned to the pool
    after. Nothing here calls ``async_to_sync`` back into the loop (which asgiref's
    thread-local would route). Calls are counted so that a burst is refused at the door
    (``BaseNamespace.trigger_event``) instead of queueing behind itself. A caller that is
    cancelled stops waiting; the call itself runs to its end if a thread has taken it, as under
    asgiref, and is not run if none has (``OrmLoad``). So does one a stopping process abandoned
    (``abandon_waits``), which gets ``Unavailable``.
    """

    async def counted(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if OrmLoad.abandoned_on is loop:
            raise Unavailable()
        call = _Call()
        run = contextvars.copy_context().run
        try:
            future = loop.run_in_executor(None, run, call.run, func, args, kwargs)
        except BaseException:  # refused (its executor shut down): no thread will run it, nor uncount it
            call.give_up()
            raise
        OrmLoad.waiting.add(future)
        try:
            return await future
        except asyncio.CancelledError:
            call.give_up()
            # Cancelled by ``abandon_waits``, not the caller's task being cancelled: no answer.
            if OrmLoad.abandoned_on is loop and not asyncio.current_task().cancelling():
                raise Unavailable() from None
            raise
        finally:
            OrmLoad.waiting.discard(future)

    return counted


def _with_connections(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


class Batched:
    """Reads by key made at the same moment go to the database together: one call of
    ``load(keys) -> {key: value}`` in a DB thread for all of them (a key it leaves out reads as
    ``None``).

    A reconnect storm asks for hundreds of users within a few milliseconds; each read on its
    own costs a thread hand-off, a pooled connection's checks and a round trip, more CPU than
    the query. A read waits for no timer: its batch goes at the end of the loop's current
    round, or, while ``max_in_flight`` batches are on their way, with the next one (a lone
    read goes at once). Every read is made after it was asked for, so a caller that noted
    the time before asking (``BaseNamespace._connect``) still sees every change made before it.

    A batch the database has not answered within ``timeout`` fails its readers and frees its slot
    (its thread goes on, as a lone read's would): two reads hung on a half-open connection must
    not stop every later read of the process. Its readers, and those of a batch cancelled (a
    stopping process), get ``Unavailable``: each caller answers the contract's ``UNAVAILABLE``
    without a handler of its own; a failure of ``load`` itself reaches them as raised.

    ``counted``: each reader waiting counts in ``OrmLoad`` as a ``db`` call would, so that the
    events reading through it are shed past ``DB_QUEUE_MAX`` as before they were batched.
    """

    def __init__(
        self,
        load: Callable[[list[Any]], dict[Any, Any]],
        *,
        max_in_flight: int = 2,
        batch_max: int = 500,
        timeout: float = 5.0,
        counted: bool = False,
    ):
        self.load, self.max_in_flight, self.batch_max, self.timeout = load, max_in_flight, batch_max, timeout
        self.counted = counted
        self.loop: Any = None
        self.pending: dict[Any, list[Any]] = {}  # key -> the futures waiting for it
        self.in_flight = 0
        self.scheduled = False
        self._tasks: set[Any] = set()

    async def get(self, key: Any) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new loop (a test's): nothing pending survives the old one
            self.loop, self.pending, self.in_flight, self.scheduled = loop, {}, 0, False
        future = loop.create_future()
        self.pending.setdefault(key, []).append(future)
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        if self.counted:
            _count(1)
        try:
            return await future
        except asyncio.CancelledError:  # given up (a connect's timeout): not left waiting, not read
            waiting = self.pending.get(key)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self.pending[key]
            raise
        finally:
            if self.counted:
                _count(-1)

    def _flush(self) -> None:
        self.scheduled = False
        while self.pending and self.in_flight < self.max_in_flight:
            keys = list(self.pending)[: self.batch_max]
            batch = {key: self.pending.pop(key) for key in keys}
            self.in_flight += 1
            task = self.loop.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: dict[Any, list[Any]]) -> None:
        loop = self.loop
        read = asyncio.ensure_future(db(self.load)(list(batch)))
        read.add_done_callback(_retrieved)  # a read given up may still fail: nobody is left to ask
        try:
            found = await asyncio.wait_for(asyncio.shield(read), self.timeout)
        except (Exception, asyncio.CancelledError) as exc:
            # Not answered (past ``timeout``, or cancelled): UNAVAILABLE; the load's own failure as raised.
            unanswered = isinstance(exc, (TimeoutError, asyncio.CancelledError))
            failure = Unavailable() if unanswered else exc
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
        else:
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key))
        finally:
            if loop is self.loop:
                self.in_flight -= 1
                if self.pending and not self.scheduled:
                    self.scheduled = True
                    loop.call_soon(self._flush)


def _retrieved(read: "asyncio.Future[Any]") -> None:
    if not read.cancelled():
        read.exception()
