"""The recovery log's breaker (contract 9.4): a log that does not answer is not waited on, and
a position from before events went out unlogged is never reported as recovered."""

import asyncio
import os
import time

import pytest

from config.realtime import recovery
from config.realtime.recovery_store import Entry, MemoryStore, RedisStore
from tests.live import wait_until


class Unanswering(MemoryStore):
    """The log as a paused Redis is to it: writes hang, while ``answering`` is off."""

    answering = True
    writes = 0

    async def append(self, entries):
        self.writes += 1
        if not self.answering:
            await asyncio.sleep(3600)
        return await super().append(entries)


def message(text: str) -> dict:
    return {"method": "emit", "event": "message:received", "namespace": "/customer", "data": [text], "room": "r"}


def test_a_log_that_does_not_answer_is_skipped_until_the_breaker_closes(monkeypatch):
    async def scenario() -> None:
        store = Unanswering(length=100, window=60)
        log = recovery.Recovery(store, replay_max=100)
        [before] = await log.append([("/customer", message("before"))])
        assert before is not None

        store.answering = False
        started = time.monotonic()
        assert await log.append([("/customer", message("first lost"))]) == [None]  # waited STORE_TIMEOUT once
        assert [await log.append([("/customer", message(f"lost {i}"))]) for i in range(50)] == [[None]] * 50
        assert time.monotonic() - started < recovery.STORE_TIMEOUT + 0.3  # the other 50 waited on nothing
        assert store.writes == 2  # the breaker tried no more

        store.answering = True
        monkeypatch.setattr(recovery, "BREAKER_SECONDS", 0.0)
        log.open_until = 0.0  # the breaker's time is up
        await asyncio.sleep(0.002)
        [after] = await log.append([("/customer", message("after"))])
        assert after is not None and not log.unlogged
        # A position from before the unlogged events is not recovered; one from after is.
        assert await log.missed("/customer", before) is None
        [later] = await log.append([("/customer", message("later"))])
        assert [offset for offset, _ in await log.missed("/customer", after)] == [later]

    asyncio.run(scenario())


def test_an_event_another_process_could_not_log_marks_the_gap_here(monkeypatch):
    """A WSGI view or the admin emits while the log does not answer: its event goes out
    without an offset, flagged, and the server process that delivers it marks the gap with
    its next log write (the other process's store object is gone by then)."""
    from config.realtime.server import sio

    log = recovery.Recovery(MemoryStore(length=100, window=60), replay_max=100)
    monkeypatch.setattr(sio, "recovery", log)

    async def scenario() -> None:
        [before] = await log.append([("/customer", message("before"))])
        unlogged = {**message("from the admin"), "unlogged": True, "offset": None, "room": "nobody-here"}
        await sio.manager._handle_emit(unlogged)
        assert log.unlogged
        [after] = await log.append([("/customer", message("after"))])
        assert await log.missed("/customer", before) is None  # it may have missed the admin's event
        assert await log.missed("/customer", after) == []

    asyncio.run(scenario())


def test_a_batch_of_events_is_logged_in_one_write_and_keeps_its_order(monkeypatch):
    """What committed code queued meanwhile leaves the outbox as one batch: one log write (one
    pipeline on Redis) gives every event its offset, in order; acks and volatile events get none."""
    from config.realtime.server import sio

    store = Unanswering(length=100, window=60)
    monkeypatch.setattr(sio, "recovery", recovery.Recovery(store, replay_max=100))
    batch = [{**message(f"m{i}"), "room": "nobody-here", "skip_sid": None, "callback": None} for i in range(20)]
    volatile = {**batch[0], "event": "partner:location_update", "namespace": "/customer", "data": [{}]}
    del batch[0]

    asyncio.run(sio.manager.dispatch_many([*batch, volatile]))
    assert store.writes == 1
    offsets = [m["offset"] for m in batch]
    assert offsets == sorted(offsets, key=lambda o: tuple(map(int, o.split("-")))) and len(set(offsets)) == 19
    assert "offset" not in volatile


def test_a_closed_store_leaves_no_connection_open():
    """A process without a Socket.IO server (WSGI, the admin) builds a store per emit and closes it
    on a loop that ends with the call: its connections must close with it, not wait for the GC."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("the store is Redis's (set REDIS_URL); .ci/run runs it")

    async def scenario() -> RedisStore:
        store = RedisStore(os.environ["REDIS_URL"].split(",")[0], "closing-test", length=10, window=60)
        await store.append([("/customer", Entry.of(message("x")))])
        await store.close()
        return store

    pool = asyncio.run(scenario()).redis.connection_pool
    assert [c for c in pool._available_connections + list(pool._in_use_connections) if c.is_connected] == []


def test_a_reconnect_storm_reaches_redis_in_a_few_pipelines():
    """A deploy's storm (contract 10.2): a thousand saves at the stop, then a thousand tails, peeks,
    takes and reads on the way back, all at once. Each goes to Redis in a shared pipeline (at most
    ``BATCH_MAX`` calls each), not in a round trip of its own on a pool of eight connections where
    most would give up waiting; every call still gets its own answer."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("the store is Redis's (set REDIS_URL); .ci/run runs it")
    import redis.asyncio as redis

    from config.realtime.recovery_store import BATCH_MAX, SavedSession

    sockets = 1000
    sent: list[str] = []  # one entry per round trip: a command sent alone, or a pipeline
    single, piped = redis.Redis.execute_command, redis.client.Pipeline.execute

    async def alone(self, *args, **options):
        sent.append(str(args[0]))
        return await single(self, *args, **options)

    async def pipeline(self, *args, **options):
        sent.append(f"pipeline of {len(self.command_stack)}")
        return await piped(self, *args, **options)

    async def scenario() -> None:
        store = RedisStore(os.environ["REDIS_URL"].split(",")[0], f"storm-test-{time.time_ns()}", length=100, window=60)
        log = recovery.Recovery(store, replay_max=100)
        [offset] = await log.append([("/customer", message("before the stop"))])
        sessions = [SavedSession(f"sid{i}", "/customer", i, [f"booking:{i}"], offset) for i in range(sockets)]
        sent.clear()
        saved = await asyncio.gather(*(log.save(s.uid, f"pid{s.uid}", s) for s in sessions))
        assert saved == [True] * sockets
        assert len(sent) <= 2 * sockets / BATCH_MAX + 2, sent  # pipelines, not a SET per socket
        sent.clear()
        tails, peeks = await asyncio.gather(
            asyncio.gather(*(log.tail("/customer") for _ in range(sockets))),
            asyncio.gather(*(log.peek(s.uid, f"pid{s.uid}") for s in sessions)),
        )
        assert tails == [offset] * sockets and peeks == sessions
        taken, missed = await asyncio.gather(
            asyncio.gather(*(log.take(s.uid, f"pid{s.uid}") for s in sessions)),
            asyncio.gather(*(log.missed("/customer", offset) for _ in range(sockets))),
        )
        assert taken == sessions and missed == [[]] * sockets
        assert len(sent) <= 20, sent  # 5,000 calls on the way back, a few dozen pipelines at most
        await store.redis.delete(store._stream("/customer"))
        await store.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redis.Redis, "execute_command", alone)
        patch.setattr(redis.client.Pipeline, "execute", pipeline)
        asyncio.run(scenario())


def test_the_connects_of_a_moment_share_one_tail_read_per_namespace():
    """A reconnect storm asks the log's end once per namespace and batch, not once per connect;
    every caller gets an id no older than the last event logged before it asked."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("the store is Redis's (set REDIS_URL); .ci/run runs it")
    reads: list[str] = []

    async def scenario() -> None:
        store = RedisStore(os.environ["REDIS_URL"].split(",")[0], f"tail-test-{time.time_ns()}", length=100, window=60)
        original = store._info

        async def counted(stream: str):
            reads.append(stream)
            return await original(stream)

        store._info = counted
        log = recovery.Recovery(store, replay_max=100)
        assert await log.tail("/customer") == "0-0"  # nothing logged yet
        [offset] = await log.append([("/customer", message("one"))])
        reads.clear()
        tails = await asyncio.gather(*(log.tail("/customer") for _ in range(500)), log.tail("/partner"))
        assert tails == [offset] * 500 + ["0-0"]
        assert len(reads) == 2, reads  # one read per namespace for the 501 connects
        [later] = await log.append([("/customer", message("two"))])
        assert await log.tail("/customer") == later  # a read after the last one ended is a new one
        await store.redis.delete(store._stream("/customer"))
        await store.close()

    asyncio.run(scenario())


class Slow(MemoryStore):
    """The log as a Redis paused for a moment is to it: writes land ``delay`` seconds late, or fail."""

    delay = 0.0
    fails = False

    async def append(self, entries):
        await asyncio.sleep(self.delay)
        if self.fails:
            raise ConnectionError("the log went away")
        return await super().append(entries)


def test_an_urgent_event_goes_out_at_once_and_is_still_logged_when_the_write_lands(monkeypatch):
    """An SOS waits URGENT_STORE_TIMEOUT at most; its write goes on, and once it lands the event is
    in the log (a session that missed it gets it replayed): a slow broker opens no breaker and
    marks no gap, so the events after it keep their offsets."""

    async def scenario() -> None:
        store = Slow(length=100, window=60)
        log = recovery.Recovery(store, replay_max=100)
        [before] = await log.append([("/admin", message("before"))])

        store.delay = 0.3
        started = time.monotonic()
        assert await log.append([("/admin", message("SOS"))], urgent=True) == [None]
        assert time.monotonic() - started < recovery.URGENT_STORE_TIMEOUT + 0.1
        assert log._late  # still on its way
        await wait_until(lambda: not log._late, what="the late write to land")
        store.delay = 0.0
        assert time.monotonic() >= log.open_until and not log.unlogged  # no breaker, no gap
        [after] = await log.append([("/admin", message("after"))])
        assert after is not None
        replayed = [entry.data for _, entry in await log.missed("/admin", before)]
        assert replayed == [["SOS"], ["after"]]

    asyncio.run(scenario())


def test_an_urgent_write_that_fails_late_opens_the_breaker_and_marks_the_gap(monkeypatch):
    async def scenario() -> None:
        store = Slow(length=100, window=60)
        log = recovery.Recovery(store, replay_max=100)
        [before] = await log.append([("/admin", message("before"))])

        store.delay, store.fails = 0.3, True
        assert await log.append([("/admin", message("SOS"))], urgent=True) == [None]
        assert log._late  # still on its way
        await wait_until(lambda: not log._late, what="the late write to fail")
        assert time.monotonic() < log.open_until and log.unlogged

        store.delay, store.fails = 0.0, False
        log.open_until = 0.0  # the breaker's time is up
        [after] = await log.append([("/admin", message("after"))])
        assert after is not None and not log.unlogged
        assert await log.missed("/admin", before) is None  # the SOS may have been missed: no recovery

    asyncio.run(scenario())


def test_no_session_is_recovered_while_an_urgent_write_is_on_its_way(monkeypatch):
    """The SOS went out live before it was in the log: a replay read meanwhile would recover a
    dropped session without it (never live, never replayed). Until the write lands, recovery
    gives fresh sessions (the client reloads its state); once it lands, replays carry it."""

    async def scenario() -> None:
        store = Slow(length=100, window=60)
        log = recovery.Recovery(store, replay_max=100)
        [before] = await log.append([("/admin", message("before"))])

        store.delay = 0.3
        assert await log.append([("/admin", message("SOS"))], urgent=True) == [None]
        assert await log.missed("/admin", before) is None  # not yet in the log: no replay without it
        await asyncio.sleep(0.4)  # the write lands
        replayed = [entry.data for _, entry in await log.missed("/admin", before)]
        assert replayed == [["SOS"]]

    asyncio.run(scenario())
