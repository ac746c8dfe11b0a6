"""Presence's heartbeat through a database outage: one warning when its writes start failing and
one line when they go through again, not an ERROR with a traceback every round (every second) for as
long as the outage lasts; a failure that is no outage is still an ERROR each time.

The outage is real: the keeper writes to a throwaway PostgreSQL (``own_postgres``) that the test
stops and starts again, through Django's own connection handling (``orm.db``)."""

import asyncio
import contextvars
import logging
import threading
from collections import Counter
from typing import Any

import dj_database_url
import pytest
from django.db import connections

from config.realtime import presence
from tests.live import running, wait_until
from tests.realtime.test_faults import own_postgres  # noqa: F401 - fixture

ALIAS = "presence_outage"
KEPT = "/kept"
# The keepers are the module's: a live server of another test, still running in its own thread,
# beats with them too. Only this test's heartbeat (whose context ``orm.db`` hands its calls) is
# kept by them, and only this thread's lines are read.
OURS = contextvars.ContextVar("presence_outage_test", default=False)


class OursOnly(dict):
    """The keepers as only this test's heartbeat sees them: the live server's, in its own thread, would
    take the users out of ``presence.new`` and fail their write there ("Database access not allowed")."""

    def items(self):  # type: ignore[override]
        return super().items() if OURS.get() else {}.items()


class Manager:
    """What ``heartbeat`` needs of the manager: the presence list published."""

    def __init__(self) -> None:
        self.dispatched: list[dict[str, Any]] = []

    async def dispatch(self, message: dict[str, Any]) -> None:
        self.dispatched.append(message)


def presence_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    here = threading.get_ident()
    return [r for r in caplog.records if r.name == "config.realtime.presence" and r.thread == here]


def test_an_outage_is_one_warning_and_one_line_when_it_is_back(
    own_postgres,  # noqa: F811
    django_db_blocker,
    monkeypatch,
    settings,
    caplog,
):
    settings.PRESENCE_HEARTBEAT = 0.1  # a round every 0.1 s: an outage of seconds is dozens of failed rounds
    database = connections.configure_settings({"default": dj_database_url.parse(own_postgres["url"])})["default"]
    monkeypatch.setitem(connections.settings, ALIAS, database)
    attempts: list[bool] = []
    written: list[tuple[list[int], bool]] = []

    def keeper(users: list[int], online: bool) -> None:
        if not OURS.get():
            return
        attempts.append(online)
        with connections[ALIAS].cursor() as cursor:  # closed after each call (orm.db): a fresh connect
            cursor.execute("SELECT 1")
        written.append((sorted(users), online))

    monkeypatch.setattr(presence, "_keepers", OursOnly({KEPT: keeper}))
    monkeypatch.setitem(presence.presence.local, KEPT, Counter({7: 1}))

    async def scenario() -> int:
        OURS.set(True)
        async with running(presence.heartbeat(Manager())):
            await wait_until(lambda: written, what="the first write")
            await asyncio.to_thread(own_postgres["stop"])
            tried = len(attempts)
            await wait_until(lambda: len(attempts) >= tried + 10, what="ten rounds against the stopped database")
            failed_rounds = len(attempts) - tried
            before = len(written)
            await asyncio.to_thread(own_postgres["start"])
            await wait_until(lambda: len(written) > before, what="a write once it is back")
            await wait_until(lambda: len(written) > before + 2, what="rounds after it is back")
            return failed_rounds

    # Not the test database (no django_db mark): a database of its own, which the test stops.
    with django_db_blocker.unblock(), caplog.at_level(logging.INFO, logger="config.realtime.presence"):
        failed_rounds = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert failed_rounds >= 10
    warning, back = presence_lines(caplog)
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert warning.getMessage().startswith("presence heartbeat: database unavailable (OperationalError: ")
    assert warning.getMessage().endswith("retried every round, said again when back")
    assert back.levelno == logging.INFO and back.exc_info is None
    assert back.getMessage().startswith("presence heartbeat: database back after ")
    assert written[-1] == ([7], True)


def test_a_failure_that_is_no_outage_is_an_error_every_round(monkeypatch, settings, caplog):
    settings.PRESENCE_HEARTBEAT = 0.05
    calls: list[list[int]] = []

    def keeper(users: list[int], online: bool) -> None:
        if not OURS.get():
            return
        calls.append(users)
        raise RuntimeError("a bug in the keeper")

    monkeypatch.setattr(presence, "_keepers", OursOnly({KEPT: keeper}))
    monkeypatch.setitem(presence.presence.local, KEPT, Counter({7: 1}))

    async def scenario() -> None:
        OURS.set(True)
        async with running(presence.heartbeat(Manager())):
            await wait_until(lambda: len(calls) >= 3, what="three failed rounds")

    with caplog.at_level(logging.INFO, logger="config.realtime.presence"):
        asyncio.run(asyncio.wait_for(scenario(), 30))
    lines = presence_lines(caplog)
    assert len(lines) >= 3
    assert all(r.levelno == logging.ERROR and r.exc_info for r in lines)
    assert {r.getMessage() for r in lines} == {"presence heartbeat failed"}


def test_a_user_whose_online_write_failed_is_written_when_the_database_is_back(
    own_postgres,  # noqa: F811
    django_db_blocker,
    monkeypatch,
    settings,
):
    """A partner who connected during the outage: their online write failed in a round between two
    heartbeats, and was dropped with it (taken out of ``new`` before the write), so they stayed
    offline in the database, offered no job, until the next heartbeat (``PRESENCE_HEARTBEAT``, 15 s by
    default) although the database came back within a second. The next round writes everyone."""
    settings.PRESENCE_HEARTBEAT = 60  # the rounds after the first are not heartbeats
    database = connections.configure_settings({"default": dj_database_url.parse(own_postgres["url"])})["default"]
    monkeypatch.setitem(connections.settings, ALIAS, database)
    attempts: list[tuple[list[int], bool]] = []
    written: list[tuple[list[int], bool]] = []

    def keeper(users: list[int], online: bool) -> None:
        if not OURS.get():
            return
        attempts.append((sorted(users), online))
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        written.append((sorted(users), online))

    monkeypatch.setattr(presence, "_keepers", OursOnly({KEPT: keeper}))
    monkeypatch.setitem(presence.presence.local, KEPT, Counter({7: 1}))
    monkeypatch.setitem(presence.presence.new, KEPT, set())

    async def scenario() -> None:
        OURS.set(True)
        beating = asyncio.create_task(presence.heartbeat(Manager()))
        try:
            await wait_until(lambda: written == [([7], True)], what="the first heartbeat's write")
            await asyncio.to_thread(own_postgres["stop"])
            presence.presence.add(KEPT, 8)  # connects during the outage
            await wait_until(lambda: ([8], True) in attempts, what="their online write tried, and failed")
            await asyncio.to_thread(own_postgres["start"])
            await wait_until(
                lambda: any(online and 8 in users for users, online in written), 5, "user 8 written online"
            )
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)

    with django_db_blocker.unblock():
        asyncio.run(asyncio.wait_for(scenario(), 60))
