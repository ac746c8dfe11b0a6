"""Connection state recovery, wire-compatible with socket.io 4.6+ and socket.io-client 4.x.

python-socketio has no such feature (its maintainer declined it), so this module
supplies the two stores Node's adapters keep, shared by every server process:

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

``server.Server`` does the protocol with these: ``{sid, pid}`` in the CONNECT answer, the
session restored and missed events replayed before it, live events held meanwhile.
"""

import asyncio
import collections
import logging
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from django.conf import settings

logger = logging.getLogger(__name__)

OFFSET = re.compile(r"^\d{1,15}-\d{1,10}$")
# Recovery must never stall delivery: a store that does not answer in time is skipped.
STORE_TIMEOUT = 0.5
REDIS_CONNECTIONS = 8
REPLAY_BATCH = 200  # entries per read of a replay: a long one yields the loop between reads


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

    async def append(self, namespace: str, entry: Entry) -> str:
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


class RedisStore:
    """Log as one Redis stream per namespace, sessions as keys that expire."""

    def __init__(self, url: str, prefix: str, length: int, window: float) -> None:
        import redis.asyncio as redis

        # A reconnect storm asks many things at once: a few connections, queued for, serve it
        # better than one new connection per waiting coroutine.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS, timeout=STORE_TIMEOUT)
        self.redis = redis.Redis(connection_pool=pool)
        self.prefix, self.length, self.window = prefix, length, window

    def _stream(self, namespace: str) -> str:
        return f"{self.prefix}:log:{namespace}"

    async def append(self, namespace: str, entry: Entry) -> str:
        offset = await self.redis.xadd(
            self._stream(namespace), {"e": entry.dumps()}, maxlen=self.length, approximate=True
        )
        return offset.decode()

    async def trim(self, namespaces: list[str]) -> None:
        """Drop what is older than the window (``XADD`` trims by length only)."""
        oldest = int((time.time() - self.window) * 1000)
        for namespace in namespaces:
            await self.redis.xtrim(self._stream(namespace), minid=f"{oldest}-0", approximate=True)

    async def tail(self, namespace: str) -> str:
        """The stream's last id, whether or not its entry is still kept (an emptied log keeps it)."""
        import redis

        try:
            info = await self.redis.xinfo_stream(self._stream(namespace))
        except redis.ResponseError:  # no stream: nothing was ever logged here
            return "0-0"
        return _text(info["last-generated-id"])

    async def after(self, namespace: str, offset: str, count: int) -> list[tuple[str, Entry]] | None:
        """Up to ``count`` entries after ``offset``; ``None`` when entries after it may have been trimmed away.

        The offset is good if it is still in the stream, if the stream never lost an entry, or
        if it is no older than the first entry kept (trimming only takes the oldest). An offset
        older than that with entries trimmed may have missed some: ``None``.
        """
        import redis

        stream = self._stream(namespace)
        if not await self.redis.xrange(stream, offset, offset):  # not in the log: was anything lost after it?
            try:
                info = await self.redis.xinfo_stream(stream)
            except redis.ResponseError:  # no stream: nothing was ever logged here
                return []
            key, last = offset_key(offset), offset_key(_text(info["last-generated-id"]))
            lost = info["entries-added"] > info["length"]
            kept_from = info.get("first-entry")
            if lost and key < last and (kept_from is None or key < offset_key(_text(kept_from[0]))):
                return None
        rows = await self.redis.xrange(stream, f"({offset}", "+", count=count)
        return [(o.decode(), Entry.loads(fields[b"e"])) for o, fields in rows]

    async def save(self, key: str, session: SavedSession) -> None:
        await self.redis.set(f"{self.prefix}:session:{key}", session.dumps(), ex=max(1, round(self.window)))

    async def peek(self, key: str) -> SavedSession | None:
        raw = await self.redis.get(f"{self.prefix}:session:{key}")
        return SavedSession.loads(raw) if raw else None

    async def take(self, key: str) -> SavedSession | None:
        raw = await self.redis.getdel(f"{self.prefix}:session:{key}")
        return SavedSession.loads(raw) if raw else None

    async def close(self) -> None:
        await self.redis.aclose()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Recovery:
    """The stores behind a bound on time: recovery degrades to a fresh session, never to a stall."""

    def __init__(self, store: MemoryStore | RedisStore, replay_max: int) -> None:
        self.store = store
        self.replay_max = replay_max

    async def _call(self, what: str, coro: Any, default: Any = None) -> Any:
        try:
            return await asyncio.wait_for(coro, STORE_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("recovery store: %s failed (%s)", what, exc)
            return default

    async def append(self, namespace: str, message: dict[str, Any]) -> str | None:
        return await self._call("append", self.store.append(namespace, Entry.of(message)))

    async def tail(self, namespace: str) -> str | None:
        return await self._call("tail", self.store.tail(namespace))

    async def missed(self, namespace: str, offset: str) -> list[tuple[str, Entry]] | None:
        """The entries after ``offset``, read in batches; ``None`` (a fresh session) when the log
        lost some of them or there are more than ``replay_max``: past that a fresh session is
        cheaper for everyone than a replay, and a client cannot make the server read more."""
        found: list[tuple[str, Entry]] = []
        while True:
            wanted = min(REPLAY_BATCH, self.replay_max + 1 - len(found))
            batch = await self._call("read", self.store.after(namespace, offset, wanted))
            if batch is None:
                return None
            found += batch
            if len(found) > self.replay_max:
                return None
            if len(batch) < wanted:
                return found
            offset = batch[-1][0]

    async def save(self, uid: int, pid: str, session: SavedSession) -> None:
        await self._call("save", self.store.save(f"{uid}:{pid}", session))

    async def peek(self, uid: int, pid: Any) -> SavedSession | None:
        """The user's session under ``pid``, left in place (the connect is not authorised yet)."""
        if not isinstance(pid, str) or not 0 < len(pid) <= 64:
            return None
        return await self._call("peek", self.store.peek(f"{uid}:{pid}"))

    async def take(self, uid: int, pid: str) -> SavedSession | None:
        return await self._call("take", self.store.take(f"{uid}:{pid}"))

    async def trim(self, namespaces: list[str]) -> None:
        if isinstance(self.store, RedisStore):
            await self._call("trim", self.store.trim(namespaces))

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
