"""Deadlines that all lie the same time after they are set: one timer for all of them.

The server closes an Engine.IO session that has joined no namespace ``NO_NAMESPACE_TIMEOUT``
after it opened (or left its last namespace). One ``TimerHandle`` per session cost each
connect a heap push, a cancel and the handle (issue 34). Here the deadlines, all one
timeout apart from when they were set, come in order in an ``OrderedDict``, and one timer
waits for the earliest.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Callable


class Deadlines:
    """``key`` -> when (loop time) ``expire(key)`` is called, unless ``cancel(key)`` came first."""

    __slots__ = ("_at", "_expire", "_loop", "_timeout", "_timer")

    def __init__(self, timeout: Callable[[], float], expire: Callable[[str], None]) -> None:
        self._timeout = timeout  # read at each ``set`` (settings may change it)
        self._expire = expire
        self._at: OrderedDict[str, float] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop ``_timer`` is on

    def __contains__(self, key: str) -> bool:
        return key in self._at

    def __len__(self) -> int:
        return len(self._at)

    def set(self, key: str) -> None:
        """Expire ``key`` one timeout from now; a key already waiting keeps its deadline."""
        if key in self._at:
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's): the old one's timer went with it, its keys too
            self._loop, self._timer = loop, None
            self._at.clear()
        timeout = self._timeout()
        self._at[key] = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_later(timeout, self._sweep)

    def cancel(self, key: str) -> None:
        self._at.pop(key, None)

    def _sweep(self) -> None:
        """Expire every key whose deadline has come; wait for the next one."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now, at = loop.time(), self._at
        while at:
            key, deadline = next(iter(at.items()))
            if deadline > now:
                self._timer = loop.call_at(deadline, self._sweep)
                return
            del at[key]
            self._expire(key)
