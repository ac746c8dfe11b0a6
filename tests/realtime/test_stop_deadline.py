"""The pieces of a stop's one deadline (``config.realtime.stopping``), each on its own: the server's
wait gets what is left, the database's waits end at its cutoff, and what a hung database left
unwritten is kept for the stop's last try and then reported. The whole, with a real server and a
paused PostgreSQL: ``tests/realtime/test_shutdown_hung_database.py``."""

import asyncio
import logging
import signal
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from django.db import OperationalError

from config.errors import Unavailable
from config.realtime import orm, presence, stopping
from config.realtime.orm import OrmLoad, db
from partners import tracking
from partners.tracking import LocationBuffer
from tests.live import wait_until


def test_the_server_waits_for_its_connections_only_what_the_stop_has_left():
    """uvicorn's ``timeout_graceful_shutdown`` (the Makefile's SHUTDOWN_TIMEOUT) would start anew when
    the first half hands it the signal: it gets what the stop has left instead."""
    server = uvicorn.Server(uvicorn.Config(app=lambda scope, receive, send: None, timeout_graceful_shutdown=10))
    stopping._pass_on(signal.SIGTERM, None, server.handle_exit, wait=2.5)
    assert server.should_exit and server.config.timeout_graceful_shutdown == 2.5


def test_a_previous_handler_of_another_shape_is_still_called_and_what_was_not_set_is_a_warning(caplog):
    """A uvicorn whose ``handle_exit`` changed shape (or another server's handler): the signal is still
    handed on, and the wait it could not shorten is one warning naming the setting, not nothing."""
    called: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        called.append(signum)

    with caplog.at_level(logging.WARNING, logger="config.realtime.stopping"):
        stopping._pass_on(signal.SIGTERM, None, handler, wait=2.5)
        stopping._pass_on(signal.SIGTERM, None, handler)  # a second signal: nothing to set, nothing said
    assert called == [signal.SIGTERM, signal.SIGTERM]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "could not set the server's timeout_graceful_shutdown to 2.5 s" in message
    assert f"signal {int(signal.SIGTERM)}" in message and "handler" in message


def test_uvicorns_handler_takes_the_wait_without_a_warning(caplog):
    server = uvicorn.Server(uvicorn.Config(app=lambda scope, receive, send: None, timeout_graceful_shutdown=10))
    with caplog.at_level(logging.WARNING, logger="config.realtime.stopping"):
        stopping._pass_on(signal.SIGTERM, None, server.handle_exit, wait=2.5)
    assert server.config.timeout_graceful_shutdown == 2.5 and caplog.records == []


def test_the_cutoff_answers_the_database_waits_in_flight_and_to_come_unavailable():
    """Past the cutoff nothing of the loop waits on the database: a caller waiting gets ``Unavailable``
    (its call goes on in its thread), so does a later one at once; a caller's own cancellation stays
    one, and another loop (the next test's) is not abandoned."""
    held = threading.Event()

    async def scenario() -> int:
        try:
            waiting = asyncio.ensure_future(db(held.wait)())
            own = asyncio.ensure_future(db(held.wait)())
            await wait_until(lambda: OrmLoad.in_flight == 2, what="two calls in their threads")
            own.cancel()
            with pytest.raises(asyncio.CancelledError):
                await own
            orm.abandon_waits()
            with pytest.raises(Unavailable):
                await asyncio.wait_for(waiting, 2)
            with pytest.raises(Unavailable):
                await db(lambda: 1)()
            counted = OrmLoad.in_flight  # both calls still hold their threads: both still count
            held.set()
            await wait_until(lambda: OrmLoad.in_flight == 0, what="the threads done")
            return counted
        finally:
            held.set()  # the threads end before the loop's executor is shut down

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == 2
    assert asyncio.run(db(lambda: 2)()) == 2


def test_the_cutoff_leaves_the_waits_of_another_loop_alone():
    """A stop abandons its own loop's waits only: a caller on another loop running meanwhile (the
    in-process live server's, a second server) gets its answer, not a cancellation it never asked for
    (nor one made from the wrong thread)."""
    held = threading.Event()
    answered: dict[str, Any] = {}

    def other_loop() -> None:
        try:
            answered["value"] = asyncio.run(db(lambda: held.wait(5) and 7)())
        except BaseException as exc:  # what the other loop's caller got instead
            answered["value"] = exc

    thread = threading.Thread(target=other_loop)
    thread.start()

    async def stop() -> None:
        await wait_until(lambda: len(OrmLoad.waiting) == 1, what="the other loop's call in its thread")
        orm.abandon_waits()

    try:
        asyncio.run(asyncio.wait_for(stop(), 10))
    finally:
        held.set()
        thread.join(10)
    assert answered["value"] == 7, repr(answered["value"])


class Manager:
    """What ``presence.withdraw`` asks of the manager: the broker's dispatch."""

    def __init__(self) -> None:
        self.dispatched: list[dict[str, Any]] = []

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.dispatched.append(message)


def test_users_a_stop_could_not_record_offline_are_tried_again_then_reported(monkeypatch, settings):
    """The other processes hear of the withdrawal whatever the database does; users the keeper could
    not record offline are tried again by the stop's next run (the sockets gone meanwhile) and, if
    that fails too, are one sentence for the stop's warning."""
    settings.PRESENCE_TTL = 90
    answers = [OperationalError("the database did not answer"), None, None]
    written: list[tuple[list[int], bool]] = []

    def keeper(users: list[int], online: bool) -> None:
        written.append((sorted(users), online))
        if (failure := answers.pop(0)) is not None:
            raise failure

    monkeypatch.setattr(presence, "_keepers", {"/kept": keeper})
    monkeypatch.setattr(presence, "_unwithdrawn", defaultdict(set))
    monkeypatch.setitem(presence.presence.local, "/kept", Counter({7: 1, 8: 2}))
    manager = Manager()
    with pytest.raises(OperationalError):
        asyncio.run(presence.withdraw(manager))
    assert manager.dispatched == [{"method": "presence", "users": {}}]
    assert presence.left_online() == (
        "2 users not recorded offline (the database did not answer): their online records lapse on their own"
        " within PRESENCE_TTL (90 s)"
    )
    presence.presence.local["/kept"].clear()  # their sockets closed meanwhile
    asyncio.run(presence.withdraw(manager))
    assert written == [([7, 8], False), ([7, 8], False)]
    assert presence.left_online() is None


def test_a_write_that_fails_keeps_the_last_locations_for_the_next_and_the_stop_says_what_it_left(monkeypatch):
    """A failed flush kept its trace points, not the last locations (a stop's first try, cut, lost
    them for its second): both are kept now, a newer location taken meanwhile winning; what is
    still there at the stop's end is its warning."""
    buffer = LocationBuffer()
    buffer.record(1, {"latitude": 12.25, "longitude": 77.75}, trace=False)
    buffer.record(2, {"latitude": 28.5, "longitude": 77.5}, trace=False)
    newer = (28.75, 77.25, datetime.now(UTC))

    def fails(batch: Any, trace: Any) -> None:
        buffer.pending[2] = newer  # taken while the write waited
        raise OperationalError("the database did not answer")

    monkeypatch.setattr(tracking, "write_buffered", fails)
    with pytest.raises(OperationalError):
        asyncio.run(buffer.flush())
    assert buffer.pending[1][:2] == (12.25, 77.75) and buffer.pending[2] == newer
    assert buffer.unwritten() == (
        "2 partners' last locations and 0 trace points not written (the database did not answer): lost;"
        " a partner's next fix, to whichever process, sets their location again, and the trace keeps a gap"
    )
