"""What issue 34 took off a connect keeps its meaning: batched reads answer each caller as a read
of its own, and one timer for every expiry fires each at its time."""

import asyncio
import contextvars
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework_simplejwt.tokens import AccessToken

from config.errors import Unavailable
from config.realtime import auth
from config.realtime.orm import Batched, OrmLoad, db
from config.realtime.token_lifetime import Expiries
from tests.live import wait_until


def test_an_expired_token_keeps_its_own_code(db):
    old = AccessToken.for_user(User(pk=7, username="u"))
    old.set_exp(lifetime=timedelta(seconds=-5))
    with pytest.raises(auth.Refused) as refused:
        auth.decode_token(str(old))
    assert refused.value.error_args["data"]["code"] == "TOKEN_EXPIRED"


def test_an_orm_call_runs_off_the_loop_in_the_callers_context_and_gives_its_connection_back(transactional_db):
    from django.db import connection

    seen = []

    def read(n):
        seen.append((threading.get_ident(), auth_flag.get(), User.objects.count()))
        if n < 0:
            raise ValueError("refused")
        return n * 2

    def after():  # on an ORM thread, once the calls are over
        return connection.connection is None

    auth_flag = contextvars.ContextVar("flag", default="unset")

    async def scenario():
        auth_flag.set("set")
        loop_thread = threading.get_ident()
        doubled = await db(read)(21)
        with pytest.raises(ValueError):
            await db(read)(-1)
        assert OrmLoad.in_flight == 0
        assert all(thread != loop_thread for thread, _, _ in seen)
        return doubled, await asyncio.get_running_loop().run_in_executor(None, after)

    doubled, returned = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert doubled == 42 and [flag for _, flag, _ in seen] == ["set", "set"]
    assert returned  # the pooled connection went back after each call


def test_batched_reads_of_one_moment_share_one_load(transactional_db):
    calls = []

    def load(keys):
        calls.append(sorted(keys))
        if "bad" in keys:
            raise RuntimeError("database away")
        return {key: key * 2 for key in keys if key != 3}

    async def scenario():
        batched = Batched(load, max_in_flight=1)
        together = await asyncio.gather(*(batched.get(key) for key in (1, 2, 2, 3)))
        alone = await batched.get(5)
        with pytest.raises(RuntimeError):
            await batched.get("bad")
        return together, alone

    together, alone = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert together == [2, 4, 4, None]  # a key the load leaves out reads as None
    assert alone == 10
    assert calls == [[1, 2, 3], [5], ["bad"]]


def test_batched_reads_made_while_one_is_on_its_way_go_in_the_next(transactional_db):
    calls = []

    def load(keys):
        calls.append(sorted(keys))
        time.sleep(0.05)
        return {key: key for key in keys}

    async def scenario():
        batched = Batched(load, max_in_flight=1)
        first = asyncio.ensure_future(batched.get(1))
        await wait_until(lambda: calls, what="the first batch on its way")  # its load sleeps 50 ms
        rest = await asyncio.gather(*(batched.get(key) for key in (2, 3, 4)))
        return await first, rest

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == (1, [2, 3, 4])
    assert calls == [[1], [2, 3, 4]]


@pytest.mark.parametrize("counted", [False, True])
def test_counted_batched_reads_count_each_reader_waiting_as_an_orm_call(transactional_db, counted):
    """``counted``: each reader waiting is an ORM call for admission control (``DB_QUEUE_MAX``), as
    it was before its event's reads were batched; a reader that gives up is no longer counted."""
    release = threading.Event()

    def load(keys):
        release.wait(5)
        return {key: key for key in keys}

    async def scenario():
        batched = Batched(load, counted=counted)
        readers = [asyncio.ensure_future(batched.get(key)) for key in (1, 2, 3)]
        await wait_until(lambda: OrmLoad.in_flight >= 1, what="the batch on its way")
        waiting = OrmLoad.in_flight
        readers[0].cancel()
        await asyncio.sleep(0)
        given_up = OrmLoad.in_flight
        release.set()
        await asyncio.gather(*readers[1:])
        return waiting, given_up

    waiting, given_up = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert (waiting, given_up) == ((1 + 3, 1 + 2) if counted else (1, 1))  # the batch's own call, and its readers
    assert OrmLoad.in_flight == 0


class _Namespace:
    def __init__(self):
        self.expired = []

    async def _expire(self, sid, expires_at):
        self.expired.append((sid, round(expires_at - self.start, 2), time.time() - expires_at))


def test_one_timer_fires_every_expiry_at_its_time_and_skips_the_refreshed_and_the_gone():
    async def scenario():
        expiries, namespace = Expiries(), _Namespace()
        namespace.start = start = time.time()
        expiries.add(namespace, "late", start + 0.3)
        expiries.add(namespace, "early", start + 0.1)
        expiries.add(namespace, "refreshed", start + 0.15)
        expiries.add(namespace, "refreshed", start + 0.25)  # auth:refresh: the old expiry is skipped
        expiries.add(namespace, "gone", start + 0.2)
        expiries.discard(namespace, "gone")  # disconnected
        await wait_until(lambda: any(sid == "late" for sid, *_ in namespace.expired), what="the last expiry")
        fired_at = namespace.expired  # "gone" (due before "late") would have fired by now
        expiries.discard(namespace, "never-added")
        return fired_at, expiries

    fired, expiries = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert [(sid, at) for sid, at, _ in fired] == [("early", 0.1), ("refreshed", 0.25), ("late", 0.3)]
    assert all(late >= 0 for _, _, late in fired)  # none before its time
    assert not expiries.live and not expiries.heap and expiries.timer is None


def test_expiries_of_sockets_gone_do_not_pile_up():
    async def scenario():
        expiries, namespace = Expiries(), _Namespace()
        expiries.add(namespace, "stays", time.time() + 600)
        for n in range(1000):  # churn: connects and disconnects long before their tokens expire
            expiries.add(namespace, f"s{n}", time.time() + 600)
            expiries.discard(namespace, f"s{n}")
        return expiries

    expiries = asyncio.run(scenario())
    assert len(expiries.live) == 1 and len(expiries.heap) <= 2 * 1 + 64 + 1


def test_batched_reads_given_up_leave_nothing_waiting_while_the_database_hangs(transactional_db):
    """A connect that times out (CONNECT_TIMEOUT) while the database hangs leaves no future behind:
    a reconnect storm against a stuck read held one per attempt, without a bound, until it ended."""
    release, calls = threading.Event(), []

    def load(keys):
        calls.append(sorted(keys))
        release.wait(5)
        return {key: key for key in keys}

    async def scenario():
        batched = Batched(load, max_in_flight=1)
        stuck = asyncio.ensure_future(batched.get(0))
        await asyncio.sleep(0.02)  # on its way, and hanging
        for attempt in range(200):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.001):
                    await batched.get(attempt % 7)
        waiting = sum(len(futures) for futures in batched.pending.values())
        release.set()
        assert await stuck == 0
        after = await batched.get(42)
        return waiting, after

    waiting, after = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert waiting == 0
    assert after == 42
    assert calls == [[0], [42]]  # the reads given up were never sent


def test_a_batch_the_database_does_not_answer_frees_its_slot_in_time(transactional_db):
    """Two reads hung on a half-open connection must not stop every later read of the process:
    past ``timeout`` a batch fails its readers and the next batch goes."""
    release = threading.Event()

    def load(keys):
        if 0 in keys:
            release.wait(5)  # the hung read
        return {key: key for key in keys}

    async def scenario():
        batched = Batched(load, max_in_flight=1, timeout=0.2)
        with pytest.raises(Unavailable):  # the contract's error, wherever it is read
            await batched.get(0)
        answer = await batched.get(42)  # not behind the hung one
        release.set()
        return answer

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 3)) == 42
    finally:
        release.set()
