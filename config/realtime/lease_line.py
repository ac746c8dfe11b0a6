"""The rate limiter's leases on one raw Redis connection (``config.realtime.redis_wire``).

A lease is an ``INCRBY`` and an ``EXPIRE`` on a window's key. Through a redis-py pipeline
each one cost a task, a pooled connection's checkout and Python-side command packing and reply
parsing: 10-17 µs of CPU per relayed update at 1,000/s with Redis (issue 34, seventh pass). Here
the leases asked for while a round trip is out go together as the next write, on one connection
per event loop, and their replies are read in order by one task.

Bounds as before: a batch (opening the connection included) answers within ``timeout`` or fails,
and then the connection is dropped (a late reply would be read as the next batch's), every lease
waiting fails with it, and the next one opens a new connection. A paused Redis costs a lease at most
``timeout``; what the limiter does then (count per process for a while) is its own.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import hiredis

from config.realtime.redis_wire import Wire, command

# The reply to a lease's INCRBY (the window's new total), or why there is none.
Answer = int | BaseException
Done = Callable[[Answer], None]


class LeaseLine:
    """One connection of one loop; ``take`` queues a lease and returns at once."""

    def __init__(self, url: str, timeout: float, tasks: set[asyncio.Task[None]], name: str) -> None:
        self.url = url
        self.loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._tasks = tasks  # the limiter's: tests and shutdown wait on what is in flight
        self._name = name  # CLIENT SETNAME: an operator sees which connection is the limiter's
        self._wire: Wire | None = None
        self._queued: list[tuple[bytes, Done]] = []
        self._sending = False

    def take(self, key: str, size: int, ttl: int, done: Done) -> None:
        """Add ``size`` to ``key`` (expiring in ``ttl`` s); ``done`` gets the new total or the error."""
        self._queued.append((command("INCRBY", key, str(size)) + command("EXPIRE", key, str(ttl)), done))
        if not self._sending:
            self._sending = True
            task = self.loop.create_task(self._send())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    replies = await self._round_trip(batch)
                except Exception as exc:  # refused, reset, timed out, an error reply
                    self.close()
                    batch, self._queued = batch + self._queued, []
                    for _, done in batch:
                        done(exc)
                    return
                for (_, done), total in zip(batch, replies[::2], strict=True):
                    done(total)
        finally:
            self._sending = False

    async def _round_trip(self, batch: list[tuple[bytes, Done]]) -> list[Any]:
        async with asyncio.timeout(self._timeout):
            if self._wire is None or self._wire.closed:
                self._wire = await Wire.open({"address": self.url}, select_database=True)
                self._wire.write(command("CLIENT", "SETNAME", self._name))
                await self._wire.expect(1)
            self._wire.write(b"".join(commands for commands, _ in batch))
            replies = await self._wire.expect(2 * len(batch))
        errors = [reply for reply in replies if isinstance(reply, hiredis.ReplyError)]
        if errors:
            raise errors[0]
        return replies

    def close(self) -> None:
        """Drop the connection (from any thread: it belongs to ``loop``)."""
        wire, self._wire = self._wire, None
        if wire is None:
            return
        if self.loop.is_closed():
            wire.close()  # nothing to run it on; the transport is gone with its loop
        else:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(wire.close)
