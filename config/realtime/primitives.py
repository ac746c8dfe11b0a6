"""asyncio's ``Queue`` and ``Event``, for objects every socket holds, at a fraction of the memory.

Every connection holds two queues (uvicorn's receive queue, engineio's send queue)
and an event (uvicorn's "writable"). ``asyncio.Queue`` allocates three deques and an
``Event`` up front, and ``asyncio.Event`` a deque: about 600 bytes each, 7.5 KiB a
socket in all, for queues that are empty nearly all the time (docs/performance.md,
"Idle memory per socket"). Hand-written because no library offers a lighter
asyncio queue; both keep the subset of asyncio's interface their users call, with
the same semantics, and are tested against it (tests/realtime/test_primitives.py).
"""

import asyncio
from collections import deque
from typing import Any


class Mailbox:
    """An unbounded ``asyncio.Queue``: the items' deque exists only while items wait, the
    joiners' list only while someone joins.

    A put item goes straight to a waiting getter. ``get()`` returns a future rather
    than a coroutine, so ``asyncio.wait_for(mailbox.get(), timeout)`` (engineio's
    writer) needs no task; a getter cancelled by such a timeout is skipped. One
    difference from ``asyncio.Queue``: an item handed to a getter whose task is
    cancelled in the same loop iteration is dropped, not left for the next getter.
    Both users cancel a get only when they are closing the connection.
    """

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[Any]] = []
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished = 0

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def awaited(self) -> bool:
        """Whether a getter waits: no item waits either, and none is on its way to a getter."""
        for getter in self._getters:  # noqa: SIM110 (a loop, not any(): no generator on every frame's path)
            if not getter.done():
                return True
        return False

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(item)
                return
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def get(self) -> "asyncio.Future[Any]":
        future = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self.get_nowait())
        else:
            self._getters = [getter for getter in self._getters if not getter.done()]
            self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if not self._unfinished:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners or ():
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner


class Flag:
    """An ``asyncio.Event`` whose waiters' list exists only while someone waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._waiters and waiter in self._waiters:
                self._waiters.remove(waiter)
