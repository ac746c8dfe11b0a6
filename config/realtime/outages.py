"""What a periodic loop writes into the log while the database or Redis is away.

A loop that runs every second (a clock, the presence heartbeat, the dashboard's figures) and logs
each failed round buries the log under the same line for as long as an outage lasts, and the one
line an operator needs, when it started and when it ended, is lost among them. An ``OutageLog``
per loop makes an outage two lines: a WARNING at the first failed round, an INFO line at the first
round that goes through again. A failure that is no outage (a bug) is an ERROR with its traceback
every time: it does not end by waiting.
"""

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.realtime.orm import unavailable


def outage_of(exc: BaseException) -> str | None:
    """What ``exc`` says is away: ``"database"`` (``orm.unavailable``: refused, lost, timed out,
    abandoned by a stop), ``"Redis"`` (refused, cut, or not answering within its timeout), else
    ``None``: a bug."""
    if unavailable(exc):
        return "database"
    # redis-py's own (it raises a refused or cut connection as its ConnectionError); a bound of ours
    # around a Redis call raises its TimeoutError too (``Recovery.trim``): an asyncio timeout is no
    # telling what did not answer.
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "Redis"
    return None


class OutageLog:
    """One loop's outages: ``failed(exc)`` after a round that raised, ``succeeded()`` after one
    that went through (the caller decides what counts: a heartbeat with nothing to write proves
    nothing). Not thread-safe: one loop, one task."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what  # the loop, as the log names it: "the booking clock"
        self.down_since: float | None = None  # monotonic: the first failed round of the outage
        self.away = ""  # what the outage's first failure said was away

    def failed(self, exc: BaseException) -> None:
        away = outage_of(exc)
        if away is None:
            self.logger.error("%s failed", self.what, exc_info=exc)
            return
        if self.down_since is not None:
            return  # said at its start: retried every round, told again when it is back
        self.down_since, self.away = time.monotonic(), away
        self.logger.warning(
            "%s: %s unavailable (%s: %s); retried every round, said again when back",
            self.what,
            away,
            type(exc).__name__,
            exc,
        )

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        self.logger.info("%s: %s back after %.1f s", self.what, self.away, time.monotonic() - self.down_since)
        self.down_since = None
