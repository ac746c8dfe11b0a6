"""Per-user rate limits on client events, across a user's sockets and, with Redis, across processes.

Fixed windows aligned on the clock (``time() // window``), so every process counts
the same window. Counting is local; with Redis a process takes *leases* of a
quarter of the limit at a time (``INCRBY`` on the window's key) and spends them
locally, so the location hot path makes about four Redis calls per user and window
instead of one per event (a lease is at most ``LEASE_MAX``). A window's first lease is
admitted on trust and asked for (with what it admitted) once half of it is spent, as every
later one is: a user who connects a few times a minute costs a connect no Redis call (issue
34), and what a process admits of a window that Redis never hears of is under half a lease.
While a lease is on its way, up to a quarter of the limit is admitted on credit, so a user
can exceed a limit by at most that much per extra process. When Redis is unreachable the
limits hold per process (fail open across processes, never closed for the user) for ``DOWN_FOR``
seconds; a lease not answered within ``REDIS_TIMEOUT`` counts as unreachable. Leases go on a raw
connection of their own (``config.realtime.lease_line``), not through redis-py.

Hand-written rather than a rate-limit library: the libraries make one store round
trip per hit, which the tracking hot path cannot afford.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

from config.errors import RateLimited
from config.hot_settings import hot
from config.realtime.auth import Refused
from config.realtime.lease_line import Answer, LeaseLine

logger = logging.getLogger(__name__)
# A lease's round trip (the connection's opening included) answers within this or fails. The
# limiter has its own connection (never the recovery store's or the channel layer's): a reconnect
# storm that keeps those busy leaves the leases theirs.
REDIS_TIMEOUT = 0.5
DOWN_FOR = 5.0  # seconds counted per process after a lease failed, before Redis is asked again
LEASE_FRACTION = 4
# A lease is taken from the shared count whether or not it is spent, once per process and
# window: past this size, a few processes would take a large limit (connects per address)
# between them before any was used, and every other process would refuse at once.
LEASE_MAX = 32


@dataclass(slots=True)
class _Window:
    index: int
    allowance: int  # events this process may still admit in the window
    # At or below this allowance the next lease is asked for: half a lease, worked out once a
    # window rather than on every hit.
    low: int
    asking: bool = False  # a lease request is in flight
    owed: bool = False  # the lease admitted on trust at the window's start is not asked for yet


class RateLimiter:
    def __init__(self) -> None:
        self.windows: dict[tuple[int | str, str], _Window] = {}
        self._lease_line: LeaseLine | None = None
        self._redis_down_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def limit_of(key: str) -> tuple[int, float]:
        limits = hot.RATE_LIMITS  # read on every event: not through Django's LazyObject
        return limits.get(key) or limits["default"]

    def hit(self, user_id: int | str, key: str) -> None:
        """Count one event; ``RATE_LIMITED`` (with ``retryAfter``) past the user's limit.

        Synchronous on purpose: a handler that awaited here could be overtaken by the
        socket's next event, and location updates must stay in order. Leases are asked
        for in the background, one ahead, while the current one is spent.
        """
        limit, window = self.limit_of(key)
        now = time.time()
        index = int(now // window)
        state = self.windows.get((user_id, key))
        if state is None or state.index != index:
            shared = self._shared()
            lease = self._lease_size(limit)
            state = _Window(index, lease if shared else limit, lease // 2, owed=shared)
            self.windows[(user_id, key)] = state
        if state.allowance <= 0 and not (state.asking and -state.allowance < self._credit(limit)):
            raise RateLimited(f"at most {limit} {key} events per {window:g} s", retry_after=(index + 1) * window - now)
        # While a lease is on its way, up to a quarter of the limit is admitted on credit (the leases
        # pay it back): a user, or an address's burst of connects, is never refused below the limit
        # just because Redis answered late.
        state.allowance -= 1
        if state.allowance <= state.low and self._shared():
            self._ask(user_id, key, state, limit, window)

    def sweep(self) -> None:
        """Forget finished windows (called periodically: nothing outlives its window by long)."""
        now = time.time()
        for (user_id, key), state in list(self.windows.items()):
            if state.index < int(now // self.limit_of(key)[1]):
                del self.windows[(user_id, key)]

    @staticmethod
    def _credit(limit: int) -> int:
        return max(1, math.ceil(limit / LEASE_FRACTION))

    @classmethod
    def _lease_size(cls, limit: int) -> int:
        return min(LEASE_MAX, cls._credit(limit))

    def _shared(self) -> bool:
        return bool(hot.REDIS_URL) and time.monotonic() >= self._redis_down_until

    def _ask(self, user_id: int | str, key: str, state: _Window, limit: int, window: float) -> None:
        """Take a lease from the window's shared count, in the background (the lease line's next batch)."""
        if state.asking:
            return
        state.asking = True
        confirm, state.owed = state.owed, False  # the lease admitted on trust at the window's start
        redis_key = f"{settings.SOCKETIO['CHANNEL_GROUP']}:rl:{key}:{user_id}:{state.index}"
        size = self._lease_size(limit)
        self._line().take(
            redis_key,
            size,
            math.ceil(window) + 5,
            lambda total: self._taken(total, user_id, key, state, limit, window, confirm),
        )

    def _taken(
        self, total: Answer, user_id: int | str, key: str, state: _Window, limit: int, window: float, confirm: bool
    ) -> None:
        size = self._lease_size(limit)
        state.asking = False
        if isinstance(total, BaseException):
            if time.monotonic() >= self._redis_down_until:  # once per outage, not once per lease
                logger.warning("rate limits counted per process for now: Redis unreachable (%s)", total)
            self._redis_down_until = time.monotonic() + DOWN_FOR
            state.allowance += limit - size  # this window: about the local limit (fail open per process)
            return
        granted = max(0, min(size, limit - (total - size)))
        if confirm:
            granted -= size  # that lease was already admitted
        state.allowance += granted
        if total < limit and state.allowance <= size // 2 and state.index == int(time.time() // window):
            # Events admitted on credit while this answer was on its way are still owed:
            # ask again, or the user stays refused below the limit until the window ends.
            self._ask(user_id, key, state, limit, window)

    def _line(self) -> LeaseLine:
        """This loop's lease line (a server has one loop; a test may run several, one after another)."""
        line = self._lease_line
        if line is None or line.loop is not asyncio.get_running_loop() or line.url != settings.REDIS_URL:
            if line is not None:
                line.close()
            name = f"{settings.SOCKETIO['CHANNEL_GROUP']}:rate-limits"
            line = self._lease_line = LeaseLine(settings.REDIS_URL, REDIS_TIMEOUT, self._tasks, name)
        return line


limiter = RateLimiter()


async def sweep_forever() -> None:
    """Drop expired windows and leases every 10 s (started by the composition root)."""
    while True:
        await asyncio.sleep(10)
        limiter.sweep()


def count_connect(who: int | str, key: str) -> None:
    """Connects are counted per user and per address: a reconnect loop costs the server a JWT
    check, a query and a recovery read each time, and the client almost nothing."""
    try:
        limiter.hit(who, key)
    except RateLimited as exc:
        raise Refused(RateLimited.code, exc.message, retryAfter=exc.retry_after) from exc
