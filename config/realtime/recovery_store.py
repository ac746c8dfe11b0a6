"""What connection state recovery keeps: the log's entries and the saved sessions, in this
process's memory or in Redis (a stream per namespace, so offsets are ordered across
processes). ``config.realtime.recovery`` puts a bound on time around them."""

import asyncio
import collections
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from config.realtime.pipeliner import Pipeliner, one, reply

OFFSET = re.compile(r"^\d{1,15}-\d{1,10}$")
REDIS_CONNECTIONS = 8
# Recovery must never stall delivery: a log write that does not answer in time is skipped.
STORE_TIMEOUT = 0.5
# The calls of connects and disconnects (tails, peeks, saves, reads) go to Redis in shared
# pipelines (``config.realtime.pipeliner``): a batch waits on the pool and Redis at most this long.
BATCH_TIMEOUT = 2.0
BATCH_MAX = 500  # calls per pipeline
BATCHES_IN_FLIGHT = 4  # pipelines at once; calls made meanwhile wait for the next one


def offset_key(offset: str) -> tuple[int, int]:
    ms, seq = offset.split("-")
    return int(ms), int(seq)


def later(offset: str, other: str) -> str:
    """The later of two offsets (each a valid ``OFFSET``)."""
    return offset if offset_key(offset) >= offset_key(other) else other


@dataclass
class SavedSession:
    """What a dropped socket leaves for its recovery."""

    sid: str
    namespace: str
    uid: int
    rooms: list[str]
    # Where replay starts when the client sends no offset (it saw no logged event): the log's
    # end when the socket connected, or the last event replayed when it was itself recovered.
    offset: str

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: str | bytes) -> "SavedSession":
        return cls(**orjson.loads(raw))


@dataclass
class Entry:
    """One logged event: who it was for (rooms, exclusions) and the packet's data."""

    event: str
    data: list[Any]
    rooms: list[str] | None  # None: the whole namespace
    skip: list[str]

    def reaches(self, sid: str, rooms: set[str]) -> bool:
        if sid in self.skip:
            return False
        return self.rooms is None or not rooms.isdisjoint(self.rooms)

    def dumps(self) -> bytes:
        return orjson.dumps([self.event, self.data, self.rooms, self.skip])

    @classmethod
    def loads(cls, raw: str | bytes) -> "Entry":
        return cls(*orjson.loads(raw))

    @classmethod
    def of(cls, message: dict[str, Any]) -> "Entry":
        room, skip = message.get("room"), message.get("skip_sid")
        rooms = None if room is None else [room] if isinstance(room, str) else list(room)
        skips = [] if skip is None else [skip] if isinstance(skip, str) else list(skip)
        return cls(message["event"], list(message["data"]), rooms, skips)


class MemoryStore:
    """Log and sessions in this process (the in-memory channel layer: one process)."""

    def __init__(self, length: int, window: float) -> None:
        self.length, self.window = length, window
        self.logs: dict[str, collections.deque[tuple[str, float, Entry]]] = {}
        self.sessions: dict[str, tuple[float, SavedSession]] = {}
        self.deleted: dict[str, str] = {}  # per namespace, the newest entry trimmed away (length or age)
        self.last = (0, 0)
        self.gap_at = "0-0"

    async def mark_gap(self, offset: str) -> bool:
        """Events went out unlogged before ``offset``: positions older than it are not recovered."""
        self.gap_at = later(self.gap_at, offset)
        return True

    async def gap(self) -> str:
        return self.gap_at

    async def append(self, entries: list[tuple[str, Entry]]) -> list[str]:
        """Each (namespace, entry) logged, in order; their offsets."""
        return [self._append(namespace, entry) for namespace, entry in entries]

    def _append(self, namespace: str, entry: Entry) -> str:
        now = time.time()
        ms = int(now * 1000)
        self.last = (ms, 0) if ms > self.last[0] else (self.last[0], self.last[1] + 1)
        offset = f"{self.last[0]}-{self.last[1]}"
        log = self.logs.setdefault(namespace, collections.deque())
        log.append((offset, now, entry))
        while log and (len(log) > self.length or log[0][1] < now - self.window):
            self.deleted[namespace] = log.popleft()[0]
        return offset

    async def tail(self, namespace: str) -> str:
        """The last offset given out, whether or not its entry is still kept."""
        return f"{self.last[0]}-{self.last[1]}"

    async def after(self, namespace: str, offset: str, count: int) -> list[tuple[str, Entry]] | None:
        key = offset_key(offset)
        if key < offset_key(self.deleted.get(namespace, "0-0")):
            return None  # trimmed: the client may have missed events we no longer have
        return [(o, e) for o, _, e in self.logs.get(namespace, ()) if offset_key(o) > key][:count]

    async def save(self, key: str, session: SavedSession) -> None:
        now = time.monotonic()
        for old, (until, _) in list(self.sessions.items()):
            if until < now:
                del self.sessions[old]
        self.sessions[key] = (now + self.window, session)

    async def peek(self, key: str) -> SavedSession | None:
        until, session = self.sessions.get(key, (0.0, None))
        return session if until >= time.monotonic() else None

    async def take(self, key: str) -> SavedSession | None:
        until, session = self.sessions.pop(key, (0.0, None))
        return session if until >= time.monotonic() else None

    async def close(self) -> None:
        pass


# SET the gap mark unless the one there is later (several processes may mark after one outage).
_LATER_GAP = """
local current = redis.call('GET', KEYS[1])
if current then
  local ms, seq = string.match(current, '(%d+)-(%d+)')
  ms, seq = tonumber(ms), tonumber(seq)
  local new_ms, new_seq = tonumber(ARGV[2]), tonumber(ARGV[3])
  if ms > new_ms or (ms == new_ms and seq >= new_seq) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
return 1
"""


class RedisStore:
    """Log as one Redis stream per namespace, sessions as keys that expire.

    Appends (the delivery path) and trims have their own round trips; everything a connect or
    a disconnect asks goes through the ``Pipeliner``.
    """

    def __init__(self, url: str, prefix: str, length: int, window: float) -> None:
        import redis.asyncio as redis

        # A few connections, queued for (a storm is batched first, see ``Pipeliner``), serve
        # better than one new connection per waiting coroutine.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS, timeout=BATCH_TIMEOUT)
        self.redis = redis.Redis(connection_pool=pool)
        self.batches = Pipeliner(self.redis, BATCH_TIMEOUT, BATCH_MAX, BATCHES_IN_FLIGHT)
        self.prefix, self.length, self.window = prefix, length, window
        self._tails: dict[str, asyncio.Task[str]] = {}  # namespace -> the tail read under way

    def _stream(self, namespace: str) -> str:
        return f"{self.prefix}:log:{namespace}"

    async def mark_gap(self, offset: str) -> bool:
        """Events went out unlogged before ``offset`` (on some process): positions older than it
        are not recovered, on any process. The latest mark is kept, for the window."""
        ms, seq = offset_key(offset)
        await self.redis.eval(_LATER_GAP, 1, f"{self.prefix}:gap", offset, ms, seq, max(1, round(self.window)))
        return True

    async def gap(self) -> str:
        """The offset before which a position may have missed unlogged events ("0-0": none)."""
        [raw] = await self.batches.call(one(lambda pipe: pipe.get(f"{self.prefix}:gap")))
        raw = reply(raw)
        return _text(raw) if raw else "0-0"

    async def append(self, entries: list[tuple[str, Entry]]) -> list[str]:
        """Each (namespace, entry) logged, in order, as one pipeline: one round trip for a batch."""
        pipe = self.redis.pipeline(transaction=False)
        for namespace, entry in entries:
            pipe.xadd(self._stream(namespace), {"e": entry.dumps()}, maxlen=self.length, approximate=True)
        return [offset.decode() for offset in await pipe.execute()]

    async def trim(self, namespaces: list[str]) -> None:
        """Drop what is older than the window (``XADD`` trims by length only)."""
        oldest = int((time.time() - self.window) * 1000)
        for namespace in namespaces:
            await self.redis.xtrim(self._stream(namespace), minid=f"{oldest}-0", approximate=True)

    async def tail(self, namespace: str) -> str:
        """The stream's last id, whether or not its entry is still kept (an emptied log keeps it).

        Every connect asks (``RecoveringConnection.peek``), so the connects of a moment share one
        read per namespace: a caller may get a read sent a round trip before it asked, an id no
        later than the log's end when its socket joins its rooms, which is all a tail must be
        (events logged after the read and before the join are replayed if missed, as before).
        """
        loop = asyncio.get_running_loop()
        shared = self._tails.get(namespace)
        if shared is None or shared.get_loop() is not loop:
            shared = self._tails[namespace] = loop.create_task(self._read_tail(namespace))
            shared.add_done_callback(self._tail_read)
        return await asyncio.shield(shared)  # one caller's timeout leaves the read to the others

    def _tail_read(self, done: "asyncio.Task[str]") -> None:
        for namespace, task in list(self._tails.items()):
            if task is done:
                del self._tails[namespace]
        if not done.cancelled():
            done.exception()  # retrieved: its callers (if any still wait) each get it

    async def _read_tail(self, namespace: str) -> str:
        info = await self._info(self._stream(namespace))
        return "0-0" if info is None else _text(info["last-generated-id"])

    async def _info(self, stream: str) -> dict[str, Any] | None:
        """``XINFO STREAM``, batched; ``None`` when there is no stream (nothing was ever logged)."""
        import redis

        [info] = await self.batches.call(one(lambda pipe: pipe.xinfo_stream(stream)))
        if isinstance(info, redis.ResponseError):
            return None
        return reply(info)

    async def after(self, namespace: str, offset: str, count: int) -> list[tuple[str, Entry]] | None:
        """Up to ``count`` entries after ``offset``; ``None`` when entries after it may have been trimmed away.

        The offset is good if it is still in the stream, if the stream never lost an entry, or
        if it is no older than the first entry kept (trimming only takes the oldest). An offset
        older than that with entries trimmed may have missed some: ``None``.
        """
        stream = self._stream(namespace)

        def both(pipe: Any) -> int:
            pipe.xrange(stream, offset, offset)
            pipe.xrange(stream, f"({offset}", "+", count=count)
            return 2

        found, rows = map(reply, await self.batches.call(both))
        if not found:  # not in the log: was anything lost after it?
            info = await self._info(stream)
            if info is None:
                return []
            key, last = offset_key(offset), offset_key(_text(info["last-generated-id"]))
            lost = info["entries-added"] > info["length"]
            kept_from = info.get("first-entry")
            if lost and key < last and (kept_from is None or key < offset_key(_text(kept_from[0]))):
                return None
        return [(o.decode(), Entry.loads(fields[b"e"])) for o, fields in rows]

    async def save(self, key: str, session: SavedSession) -> None:
        name, raw, ttl = f"{self.prefix}:session:{key}", session.dumps(), max(1, round(self.window))
        [done] = await self.batches.call(one(lambda pipe: pipe.set(name, raw, ex=ttl)))
        reply(done)

    async def peek(self, key: str) -> SavedSession | None:
        [raw] = await self.batches.call(one(lambda pipe: pipe.get(f"{self.prefix}:session:{key}")))
        raw = reply(raw)
        return SavedSession.loads(raw) if raw else None

    async def take(self, key: str) -> SavedSession | None:
        [raw] = await self.batches.call(one(lambda pipe: pipe.getdel(f"{self.prefix}:session:{key}")))
        raw = reply(raw)
        return SavedSession.loads(raw) if raw else None

    async def close(self) -> None:
        # The client was handed its pool, so it does not own it: without this the pool's
        # connections outlive the store (and, in a WSGI process, the loop of the call).
        await self.redis.aclose(close_connection_pool=True)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
