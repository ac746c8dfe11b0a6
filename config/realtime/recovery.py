"""Connection state recovery, wire-compatible with socket.io 4.6+ and socket.io-client 4.x.

python-socketio has no such feature (its maintainer declined it), so the product keeps
the two stores Node's adapters keep, shared by every server process (``recovery_store``
holds them; this module bounds every call to them in time):

- **the log**: every server event that is neither volatile nor asking for an ack is
  appended once, where it is emitted, before anyone receives it. Its id is the event's
  *offset*: the string every recipient gets as the event's last argument, and that the
  official client sends back on reconnect (``auth.offset``). With Redis it is a stream
  per namespace (``XADD``, trimmed by length and by age), so offsets are ordered across
  processes; with the in-memory layer, a deque per namespace in this process.
- **the sessions**: when a socket drops without meaning to (transport closed or failed,
  ping timeout, the server stopping), its sid, rooms, user and last seen offset are kept
  under its user and private id (``pid``) for ``RECOVERY_WINDOW_SECONDS``. A connect only
  looks at one (``peek``) until the namespace has authenticated and authorised it; taking
  it then removes it, so a session is recovered at most once, and a refused attempt (an
  expired token, a database blip) leaves it for the next one. A pid is worth nothing with
  another user's token: the key holds the user.
- **the replay** reads at most ``RECOVERY_REPLAY_MAX`` entries, in batches, never from
  before the session's own offset; a gap longer than that gets a fresh session.

``config.realtime.recovering`` does the protocol with these: ``{sid, pid}`` in the CONNECT
answer, the session restored and missed events replayed before it, live events held
meanwhile; ``config.realtime.keeping`` saves what a dropped socket leaves.
"""

import asyncio
import logging
import time
from typing import Any

from django.conf import settings
from redis.exceptions import TimeoutError as RedisTimeoutError

from config import metrics
from config.realtime.recovery_store import (
    BATCH_TIMEOUT,
    STORE_TIMEOUT,
    Entry,
    MemoryStore,
    RedisStore,
    SavedSession,
    offset_key,
)

logger = logging.getLogger(__name__)

REPLAY_BATCH = 200  # entries per read of a replay: a long one yields the loop between reads
# A log write that failed, or took longer than STORE_TIMEOUT, opens the breaker: for this long
# events go out at once without an offset, and delivery waits on nothing (a paused or
# partitioned Redis, which never refuses, would otherwise cost every event STORE_TIMEOUT).
BREAKER_SECONDS = 5.0
# A connect's or disconnect's call (batched: ``config.realtime.pipeliner.Pipeliner``) that failed opens a
# shorter breaker: meanwhile connects get fresh sessions and drops are not kept, at once, and
# one warning says so instead of one per socket of a storm.
SESSION_BREAKER_SECONDS = 1.0
# A batch holding an urgent event (``catalogue.is_urgent``: an SOS) waits this long at most for its
# log write, then goes out without offsets while the write goes on (``Recovery._urgent_append``):
# a paused broker delays it by a blink, not by STORE_TIMEOUT. A healthy Redis answers in well
# under a millisecond.
URGENT_STORE_TIMEOUT = 0.1


_LATE = object()  # an urgent batch's write still on its way (``Recovery._urgent_append``)


class Recovery:
    """The stores behind a bound on time: recovery degrades to a fresh session, never to a stall."""

    def __init__(self, store: MemoryStore | RedisStore, replay_max: int) -> None:
        self.store = store
        self.replay_max = replay_max
        self.open_until = 0.0  # monotonic: no log write is tried before this
        self.unlogged = False  # events went out without an offset since the last write that worked
        self.sessions_open_until = 0.0  # monotonic: no session call is tried before this
        self._late: set[asyncio.Future[Any]] = set()  # urgent writes still on their way

    async def _call(self, what: str, coro: Any, default: Any = None) -> Any:
        try:
            async with asyncio.timeout(STORE_TIMEOUT):  # no Task per call, as wait_for starts one
                return await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("recovery store: %s failed (%s)", what, exc)
            return default

    async def _batched(self, what: str, coro: Any, default: Any = None) -> Any:
        """A call of a connect or a disconnect: batched with the others of the moment, bounded
        by ``BATCH_TIMEOUT``, skipped while its breaker is open."""
        if time.monotonic() < self.sessions_open_until:
            coro.close()
            return default
        try:
            async with asyncio.timeout(BATCH_TIMEOUT):  # no Task per call, as wait_for starts one
                return await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() >= self.sessions_open_until:  # one warning per opening, not one per socket
                logger.warning(
                    "recovery store: %s failed (%s); sessions are neither kept nor recovered for %g s",
                    what,
                    exc or type(exc).__name__,
                    SESSION_BREAKER_SECONDS,
                )
            self.sessions_open_until = time.monotonic() + SESSION_BREAKER_SECONDS
            return default

    async def append(self, messages: list[tuple[str, dict[str, Any]]], urgent: bool = False) -> list[str | None]:
        """Each (namespace, message)'s offset, written as one batch (one round trip), or ``None``
        for all: they go out without one (the breaker is open, or the write failed and opens it).
        The first write that works after that marks a *gap*: a session whose position is older
        may have missed unlogged events, so it is not recovered. ``urgent``: bounded by
        ``URGENT_STORE_TIMEOUT``."""
        if time.monotonic() < self.open_until:
            return self._unlogged(len(messages))
        entries = [(namespace, Entry.of(message)) for namespace, message in messages]
        if urgent:
            offsets = await self._urgent_append(entries)
            if offsets is _LATE:
                return [None] * len(messages)
        else:
            offsets = await self._call("append", self.store.append(entries))
        if offsets is None:
            self._open_breaker()
            return self._unlogged(len(messages))
        if self.unlogged and await self._call("gap", self.store.mark_gap(offsets[0]), default=False):
            self.unlogged = False
        return offsets

    def _open_breaker(self) -> None:
        self.open_until = time.monotonic() + BREAKER_SECONDS
        logger.warning("recovery log unavailable: events go out without an offset for %g s", BREAKER_SECONDS)

    async def _urgent_append(self, entries: list[tuple[str, Entry]]) -> Any:
        """An urgent batch's write, waited for ``URGENT_STORE_TIMEOUT`` at most; past it ``_LATE``:
        the batch goes out without offsets while its write goes on (bounded by ``STORE_TIMEOUT``).

        A slow write is not a failure: once it lands the events are in the log, and a session
        that missed them gets them replayed (a client that had one live may see it twice, never
        not at all), so neither the breaker nor a gap is needed. Only a write that fails opens the
        breaker and marks the gap, as any failed write does.
        """
        write = asyncio.ensure_future(asyncio.wait_for(self.store.append(entries), STORE_TIMEOUT))
        try:
            return await asyncio.wait_for(asyncio.shield(write), URGENT_STORE_TIMEOUT)
        except TimeoutError:
            self._late.add(write)
            write.add_done_callback(self._late_written)
            return _LATE
        except Exception as exc:
            logger.warning("recovery store: append failed (%s)", exc)
            return None

    def _late_written(self, write: "asyncio.Future[Any]") -> None:
        self._late.discard(write)
        if write.cancelled() or write.exception() is not None:
            if not write.cancelled():
                logger.warning("recovery store: an urgent append failed late (%s)", write.exception())
            self._open_breaker()
            self.unlogged = True  # what it carried went out unlogged: the next write marks the gap

    def _unlogged(self, count: int) -> list[None]:
        self.unlogged = True
        metrics.RECOVERY_UNLOGGED.inc(count)
        return [None] * count

    async def tail(self, namespace: str) -> str | None:
        return await self._batched("tail", self.store.tail(namespace))

    async def missed(self, namespace: str, offset: str) -> list[tuple[str, Entry]] | None:
        """The entries after ``offset``, read in batches; ``None`` (a fresh session) when the log
        lost some of them or there are more than ``replay_max``: past that a fresh session is
        cheaper for everyone than a replay, and a client cannot make the server read more.
        While an urgent write is on its way (``_late``) none: its events went out live, a read
        now would not hold them, and the session would be recovered without them."""
        if self._late:
            return None
        gap = await self._batched("gap", self.store.gap())
        if gap is None or offset_key(offset) < offset_key(gap):
            return None  # events may have gone out unlogged since this position (or we cannot tell)
        found: list[tuple[str, Entry]] = []
        while True:
            wanted = min(REPLAY_BATCH, self.replay_max + 1 - len(found))
            batch = await self._batched("read", self.store.after(namespace, offset, wanted))
            if batch is None:
                return None
            found += batch
            if len(found) > self.replay_max:
                return None
            if len(batch) < wanted:
                return found
            offset = batch[-1][0]

    async def save(self, uid: int, pid: str, session: SavedSession) -> bool:
        """Keep the session for the window; whether it was kept."""
        return await self._batched("save", self._saved(self.store.save(f"{uid}:{pid}", session)), default=False)

    @staticmethod
    async def _saved(coro: Any) -> bool:
        await coro
        return True

    async def peek(self, uid: int, pid: Any) -> SavedSession | None:
        """The user's session under ``pid``, left in place (the connect is not authorised yet)."""
        if not isinstance(pid, str) or not 0 < len(pid) <= 64:
            return None
        return await self._batched("peek", self.store.peek(f"{uid}:{pid}"))

    async def take(self, uid: int, pid: str) -> SavedSession | None:
        return await self._batched("take", self.store.take(f"{uid}:{pid}"))

    async def trim(self, namespaces: list[str]) -> None:
        """Drop what is past the window; a failure (Redis refused, or no answer within ``STORE_TIMEOUT``)
        is raised: its clock says an outage once, not once per trim (``clock.every``)."""
        if isinstance(self.store, RedisStore):
            try:
                async with asyncio.timeout(STORE_TIMEOUT):
                    await self.store.trim(namespaces)
            except TimeoutError as exc:  # named as Redis's own: a bound of ours is no outage of anything
                raise RedisTimeoutError(f"no answer within {STORE_TIMEOUT} s") from exc

    async def close(self) -> None:
        await self.store.close()


def build() -> Recovery | None:
    """The deployment's recovery (``RECOVERY_ENABLED``), on Redis when ``REDIS_URL`` is set."""
    conf = settings.SOCKETIO
    if not conf["RECOVERY_ENABLED"]:
        return None
    window, length = conf["RECOVERY_WINDOW_SECONDS"], conf["RECOVERY_LOG_LENGTH"]
    if settings.REDIS_URL:
        prefix = f"{conf['CHANNEL_GROUP']}:recovery"
        return Recovery(RedisStore(settings.REDIS_URL, prefix, length, window), conf["RECOVERY_REPLAY_MAX"])
    return Recovery(MemoryStore(length, window), conf["RECOVERY_REPLAY_MAX"])
