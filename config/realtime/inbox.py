"""What the lanes' subscribers read, waiting for the manager's listener: bounded in bytes.

A process whose event loop cannot keep up with its rooms' traffic must not hold the broker's
backlog itself: an unbounded queue here grew without limit, and the whole process went down
with it (every socket, not only the late rooms). Past ``INBOX_MAX_BYTES`` the subscribers stop
reading their connections instead (``Lane._read`` waits on what ``put`` returns), so the
backlog waits in the kernel's socket buffers and then in Redis, whose
``client-output-buffer-limit pubsub`` (32 MB, or 8 MB for 60 s, by default) cuts that
subscriber: what it had not read is lost, as in any cut, the lane subscribes again (its rooms
deaf for about half a second) and says so. Losing a late process's messages is what Redis's
limit is for; dropping here instead would lose them the same way and need a bound and a count
of our own for what Redis already bounds and counts. The listener resumes them at half the bound,
so a process that hovers at its bound does not stop and start on every read.
"""

import asyncio
from collections import deque
from collections.abc import Awaitable

# About 15 s of a busy process's traffic (a few thousand messages a second of a few hundred
# bytes): a GC pass or a slow second never reaches it; a listener behind for good does.
INBOX_MAX_BYTES = 16 << 20


class Inbox:
    """A queue of the subscribers' reads (each a list of raw messages), counting their bytes."""

    def __init__(self, max_bytes: int = INBOX_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0  # the raw messages waiting, not yet taken by the listener
        self._reads: deque[tuple[list[bytes], int]] = deque()
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def put(self, payloads: list[bytes]) -> Awaitable[bool] | None:
        """Queue one read's messages (never refused: they were read already). ``None`` while
        there is room; from passing the bound until the listener has read it down to half (any
        lane's read meanwhile too), what to wait on before reading more."""
        size = sum(map(len, payloads))
        self._reads.append((payloads, size))
        self.bytes += size
        self._readable.set()
        if self.bytes > self.max_bytes:
            self._room.clear()
        return None if self._room.is_set() else self._room.wait()

    async def get(self) -> list[bytes]:
        """The oldest read's messages, once there is one."""
        while not self._reads:
            self._readable.clear()
            await self._readable.wait()
        payloads, size = self._reads.popleft()
        self.bytes -= size
        if self.bytes <= self.max_bytes // 2:
            self._room.set()
        return payloads
