"""Calls to Redis made while a pipeline is on its way go together, in the next one.

The recovery store's connects and disconnects (``config.realtime.recovery_store``) go
through it: a reconnect storm costs Redis a few dozen round trips, not one per call.
"""

import asyncio
from collections.abc import Callable
from typing import Any


class Pipeliner:
    """Calls made while a pipeline is on its way go to Redis together, in the next one.

    A reconnect storm (a deploy: a thousand sockets back within seconds) asks for a tail, a
    peek, a take and a read per socket, and a stopping process saves every session at once:
    one round trip each would queue thousands of coroutines on a few pooled connections,
    and most would give up waiting. Here each call queues its commands and waits for its
    batch: at most ``max_in_flight`` pipelines of at most ``batch_max`` calls at a time,
    so a storm costs Redis a few dozen round trips, and a lone call still goes at once.
    """

    def __init__(self, redis: Any, timeout: float, batch_max: int, max_in_flight: int) -> None:
        self.redis = redis
        self.timeout, self.batch_max, self.max_in_flight = timeout, batch_max, max_in_flight
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending: list[tuple[Callable[[Any], int], asyncio.Future[list[Any]]]] = []
        self.in_flight = 0
        self.scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, queue: Callable[[Any], int]) -> list[Any]:
        """Queue commands with ``queue(pipe)`` (which returns how many it queued); their replies."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new loop (a test's, a WSGI emit's): nothing pending survives it
            self.loop, self.pending, self.in_flight, self.scheduled = loop, [], 0, False
        future: asyncio.Future[list[Any]] = loop.create_future()
        self.pending.append((queue, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)  # calls made in this iteration of the loop join the batch
        return await future

    def _flush(self) -> None:
        self.scheduled = False
        while self.pending and self.in_flight < self.max_in_flight:
            batch, self.pending = self.pending[: self.batch_max], self.pending[self.batch_max :]
            self.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Callable[[Any], int], asyncio.Future[list[Any]]]]) -> None:
        loop = self.loop
        try:
            pipe = self.redis.pipeline(transaction=False)
            counts = [queue(pipe) for queue, _ in batch]
            async with asyncio.timeout(self.timeout):
                replies = await pipe.execute(raise_on_error=False)
        except (Exception, asyncio.CancelledError) as exc:
            failure = exc if isinstance(exc, Exception) else ConnectionError("the batch was cancelled")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
        else:
            at = 0
            for (_, future), count in zip(batch, counts, strict=True):
                if not future.done():
                    future.set_result(replies[at : at + count])
                at += count
        finally:
            if loop is self.loop:
                self.in_flight -= 1
                if self.pending and not self.scheduled:
                    self.scheduled = True
                    loop.call_soon(self._flush)


def one(queue: Callable[[Any], Any]) -> Callable[[Any], int]:
    """A ``Pipeliner`` call of one command."""

    def queued(pipe: Any) -> int:
        queue(pipe)
        return 1

    return queued


def reply(value: Any) -> Any:
    """A pipeline's reply, or the error Redis answered for that command."""
    if isinstance(value, Exception):
        raise value
    return value
