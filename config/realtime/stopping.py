"""The graceful stop of a server process, mixed into ``ChannelLayerManager``.

A stop has two halves. The stop signal (SIGTERM, SIGINT) starts the first here, before
the ASGI server hears of it: connects refused, every session saved for recovery, the
apps' hooks (buffered writes, presence) and the outbox, then the long-polling sockets
closed at once (their pending GETs answered, nobody waited for). Only then is the
server's own handler called: uvicorn closes the websockets (1012: clients reconnect at
once, elsewhere or here after the restart) and finds no request left to wait for. The
second half is the ASGI lifespan's shutdown: whatever is left is closed, the hooks run
again for what came meanwhile, the queues are handed over.

One deadline, SHUTDOWN_TIMEOUT after the signal, bounds the whole stop, a hung database
included: each step gets what is left of it (the server's own wait for its connections too:
uvicorn's ``timeout_graceful_shutdown`` is set to what is left when the signal is passed on,
``LIFESPAN_RESERVE`` kept for the second half). A second before the deadline the database's
waits are abandoned (``DATABASE_CUTOFF``), unless none is waiting: then a request holds the
server's wait (uvicorn cancels it at the end of its share), not the database, which the second
half keeps for its writes. What could not be written by then is one warning each
(``hooks.on_stopped``), naming what was lost or left for the next process.

Uses the manager's ``tasks`` (the first ``_essential`` deliver and run to the end),
``_drain`` (the outbox and the lanes) and ``server``.
"""

import asyncio
import functools
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from django.conf import settings

from config import metrics
from config.realtime import hooks
from config.realtime.orm import abandon_waits, log_failure, orm_in_flight, waits_on

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
ORM_SETTLE_SECONDS = 1.0  # a stop waits this long at most for the periodic work's database calls
# Of the stop's budget, what the server's wait for its connections leaves to the lifespan shutdown
# (close what is left, the hooks again, the queues handed over): about 0.1 s when all answer.
LIFESPAN_RESERVE = 0.5
# The database's last moment, this long before the deadline (``orm.abandon_waits``): what still
# waits on it (a disconnect's write, a hook's) is answered ``Unavailable``, so the server finds its
# connections done before its own wait ends, and the lifespan shutdown waits on it no more.
DATABASE_CUTOFF = 1.0


class GracefulStop:
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
                _pass_on(signum, frame, previous, wait=max(0.0, self._remaining() - LIFESPAN_RESERVE))

        def start() -> None:
            self._early_stop = self.loop.create_task(stop_then_pass_on())

        self.loop.call_soon_threadsafe(start)

    def _remaining(self) -> float:
        return self._stop_started + settings.SHUTDOWN_TIMEOUT - time.monotonic()

    async def stop_serving(self) -> None:
        """The first half of a stop (the module's docstring); runs once, within about half of SHUTDOWN_TIMEOUT."""
        if self._stop_started:
            return
        self.stopping = True
        self._stop_started = time.monotonic()
        self._cutoff = self.loop.call_later(settings.SHUTDOWN_TIMEOUT - DATABASE_CUTOFF, self._database_cutoff)
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

    def _database_cutoff(self) -> None:
        """The database's last moment (``DATABASE_CUTOFF``): what waits on it is answered ``Unavailable``,
        and so is every later call. Unless nothing waits on it: then the database is not what holds the
        stop, a request is (uvicorn waits for a slow one to the end of its share), and the second half
        keeps it for its writes (what came after the first half's), within what is left."""
        if waits_on(self.loop):
            abandon_waits()
            return
        logger.warning(
            "stopping: requests were still running at the database's cutoff, %g s before the deadline"
            " (the server waits for them until %g s before it, then cancels them); the database answers,"
            " and is kept for the stop's last writes",
            DATABASE_CUTOFF,
            LIFESPAN_RESERVE,
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
            async with asyncio.timeout(self._remaining()):
                await self._close(polling_only=False)
                await self._run_hooks()  # what arrived while the sockets closed
                await self._drain()
        except TimeoutError:
            # A hung dependency (the database): expected to cut the stop; what it cost is said below.
            logger.warning("stopping: graceful shutdown did not finish within %g s", settings.SHUTDOWN_TIMEOUT)
        for task in self.tasks:
            task.cancel()
        await hooks.stop_controls(self._remaining())
        self._cutoff.cancel()  # a stop done before it: nothing of this loop is abandoned afterwards
        for report in hooks.stopped_reports():
            if (left := report()) is not None:
                logger.warning("stopping: %s", left)
        metrics.process_stopping()

    @staticmethod
    async def _orm_settles(bound: float) -> None:
        """Wait (at most ``bound`` s) for the database calls in flight: a cancelled task's call goes
        on in its thread, and a heartbeat's "online" written after the hooks' "offline" would stay."""
        deadline = time.monotonic() + bound
        while orm_in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _run_hooks(self) -> None:
        """The apps' shutdown hooks, all at once: one waiting on a hung database holds no other (the
        users withdrawn, or noted as left online, while the locations' write waits)."""
        await asyncio.gather(*(self._run_hook(hook) for hook in hooks.shutdown_hooks()))

    async def _run_hook(self, hook: hooks.ShutdownHook) -> None:
        try:
            await hook(self)
        except Exception as exc:
            name = getattr(hook, "__name__", hook)
            # The database's failure: one line here; what the hook left is reported at the stop's end.
            log_failure(logger, f"shutdown hook {name}", exc)

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


def _pass_on(signum: int, frame: FrameType | None, previous: Any, wait: float | None = None) -> None:
    """Hand a stop signal to the handler that was there before ours.

    ``wait``: the seconds the stop has left for the server's graceful wait. uvicorn's handler is
    its ``Server.handle_exit``: its ``timeout_graceful_shutdown`` (the Makefile's SHUTDOWN_TIMEOUT)
    would start anew now, after the first half, and a connection held by a hung database would
    keep the process that much past the stop's deadline.
    """
    config = getattr(getattr(previous, "__self__", None), "config", None)
    if wait is not None and hasattr(config, "timeout_graceful_shutdown"):
        config.timeout_graceful_shutdown = wait
    elif wait is not None and callable(previous):
        # Not uvicorn's shape (pinned in tests/config/test_overrides.py LEANED_ON): the server's own wait
        # is not shortened, and may hold the process past the stop's deadline. Said, not silently skipped.
        logger.warning(
            "stopping: could not set the server's timeout_graceful_shutdown to %.1f s (the previous handler "
            "of signal %s, %r, has no __self__.config.timeout_graceful_shutdown): its wait for connections "
            "may run past SHUTDOWN_TIMEOUT",
            wait,
            signum,
            previous,
        )
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
