"""A batched read not answered (cancelled by a stopping process, or past its timeout) is the contract's
``UNAVAILABLE`` wherever it is read, as ``booking:track``'s is (tests/bookings/test_track_reads.py): a
connect's identity, a partner's newest fix and relay list (the connect is refused ``UNAVAILABLE``,
nothing of it left behind), and the relay list a control message refreshes (one warning, no traceback);
a partner's committed move is acked whatever its relay refresh gets."""

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable
from typing import Any

import pytest
import socketio
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

import config.asgi  # noqa: F401 - the composition root registers the control handlers
from bookings import relay
from bookings import sockets as bookings_sockets
from config import rooms
from config.errors import Unavailable
from config.realtime import hooks
from config.realtime.auth import Refused
from config.realtime.identity import identities
from config.realtime.namespace import compose
from config.realtime.orm import Batched, OrmLoad
from config.realtime.parts import Part
from config.realtime.presence import presence
from config.realtime.server import sio
from config.realtime.token_lifetime import expiries
from partners import sockets
from partners.models import Partner
from partners.tracking import locations
from tests.factories import book
from tests.live import Client, eventually, run, token_for, wait_until


async def cancelled(batched: Batched, reading: Awaitable[Any], held: threading.Event) -> object:
    """What ``reading`` gets when the batch it waits on is cancelled (a stopping process cancels its
    tasks); its load, hung on ``held``, is let go then."""
    waiting = asyncio.ensure_future(reading)
    while not batched._tasks:
        await asyncio.sleep(0.01)
    for task in list(batched._tasks):
        task.cancel()
    try:
        (got,) = await asyncio.gather(waiting, return_exceptions=True)
    finally:
        held.set()
    return got


@pytest.fixture
def hung(monkeypatch):
    """Make a ``Batched``'s load hang (until the event it returns is set, or the test ends)."""
    held = threading.Event()

    def hang(batched: Batched) -> threading.Event:
        def load(keys):
            held.wait(5)
            return {}

        monkeypatch.setattr(batched, "load", load)
        return held

    yield hang
    held.set()


def test_a_connect_whose_identity_read_is_cancelled_is_refused_unavailable(transactional_db, customer, hung):
    held = hung(identities)
    namespace = compose(rooms.CUSTOMER, role="customer", parts=())
    connecting = namespace._connect("sid", {}, {"token": token_for(customer)})
    got = asyncio.run(asyncio.wait_for(cancelled(identities, connecting, held), 10))
    assert isinstance(got, Refused), repr(got)
    assert got.error_args["data"] == {"code": "UNAVAILABLE"}


def test_a_partners_newest_fix_and_relay_list_not_read_are_unavailable(transactional_db, partner, hung):
    """The two reads of a partner's connect: ``Unavailable``, which the namespace answers as the
    contract's error (a move's relay refresh is acked anyway: the last test)."""
    held = hung(sockets._last_location_at)
    hung(relay._targets)

    class Manager:
        def get_participants(self, namespace, room):
            return [("sid", "eio")]

    session = {"uid": partner.pk}

    async def scenario():
        fix = await cancelled(sockets._last_location_at, sockets._newest_fix(None, "sid", session), held)
        held.clear()
        targets = await cancelled(relay._targets, relay.refresh_relay(Manager(), partner.pk), held)
        return fix, targets

    fix, targets = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert isinstance(fix, Unavailable) and isinstance(targets, Unavailable), (fix, targets)
    assert OrmLoad.in_flight == 0


def test_a_relay_refresh_a_control_asks_for_logs_one_warning_when_unanswered(transactional_db, partner, hung, caplog):
    held = hung(relay._targets)

    class Manager:
        def get_participants(self, namespace, room):
            return [("sid", "eio")]

    handler, _ = hooks._control_handlers["partner_bookings"]  # as registered (``on_control``), run here
    message = {"method": "partner_bookings", "user_id": str(partner.pk)}
    with caplog.at_level(logging.WARNING, logger="config.realtime.hooks"):
        got = asyncio.run(asyncio.wait_for(cancelled(relay._targets, handler(Manager(), message), held), 10))
    assert got is None  # handled: the manager's "local delivery failed" traceback is not reached
    (record,) = [r for r in caplog.records if r.name == "config.realtime.hooks"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "partner_bookings" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_a_partner_connect_whose_newest_fix_is_not_read_is_refused_unavailable(
    live_server_url, partner, hung, monkeypatch
):
    """Past the batch's timeout: ``connect_error`` ``UNAVAILABLE``, the partner not left online
    here; once the database answers, the partner connects."""
    hung(sockets._last_location_at)
    monkeypatch.setattr(sockets._last_location_at, "timeout", 0.3)
    token = token_for(partner.user)

    async def scenario():
        refused = Client(live_server_url, "/partner")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(token)
        assert refused.connect_error is not None, "no answer: the client gave up"
        assert refused.connect_error["data"] == {"code": "UNAVAILABLE"}, refused.connect_error
        assert partner.pk not in presence.local[rooms.PARTNER]
        monkeypatch.undo()
        back = await Client(live_server_url, "/partner").connect(token)
        await back.close()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_partner_connect_whose_parts_reads_hang_is_answered_within_connect_timeout(
    live_server_url, partner, hung, monkeypatch
):
    """``CONNECT_TIMEOUT`` bounds the whole connect, not the user's read alone: the parts' reads (the
    newest fix, the relay list: 5 s each of their own) do not make it 10 s. What it added is undone."""
    held = hung(sockets._last_location_at)
    hung(relay._targets)
    timeout = 1.0
    monkeypatch.setitem(settings.SOCKETIO, "CONNECT_TIMEOUT", timeout)
    namespace = sio.namespace_handlers[rooms.PARTNER]

    async def scenario():
        refused = Client(live_server_url, "/partner")
        started = time.monotonic()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(token_for(partner.user), timeout=timeout + 6)
        took = time.monotonic() - started
        assert refused.connect_error is not None, f"no answer, the client gave up after {took:.1f} s"
        assert refused.connect_error["data"] == {"code": "UNAVAILABLE"}, refused.connect_error
        assert took < timeout + 2, took  # a loaded machine's slack, well short of a part's own 5 s
        assert partner.pk not in presence.local[rooms.PARTNER]
        assert not [key for key in expiries.live if key[0] is namespace]
        await refused.close()
        held.set()

    run(scenario())


@pytest.mark.parametrize("step", ["on_connected", "enter_room"])
@pytest.mark.django_db(transaction=True)
def test_a_connect_cancelled_in_flight_leaves_no_presence_nor_expiry(live_server_url, partner, monkeypatch, step):
    """A stopping process cancels the connects in flight: the cancel undoes what the connect added
    (the partner counted online, a token expiry timer) as a refusal does, and the socket's disconnect
    does not count the partner off a second time (their other socket here still counts). In the
    parts' hooks, or in the join of the user's room (with Redis a wait for the subscription), after
    the session was saved: its disconnect counted the user off without their socket ever counting."""
    namespace = sio.namespace_handlers[rooms.PARTNER]
    token = token_for(partner.user)
    hooked: list[asyncio.Task] = []

    async def hang(*args, **kwargs):
        hooked.append(asyncio.current_task())
        await asyncio.Event().wait()  # until cancelled

    async def scenario():
        other = await Client(live_server_url, "/partner").connect(token)
        monkeypatch.setattr(namespace, step, hang)
        cancelled = Client(live_server_url, "/partner")
        connecting = asyncio.ensure_future(cancelled.connect(token, timeout=3))
        await wait_until(lambda: hooked, what="the connect in its parts' hooks")
        assert presence.local[rooms.PARTNER][partner.pk] == 2
        sio.manager.loop.call_soon_threadsafe(hooked[0].cancel)  # the socket's task: engineio swallows it
        await wait_until(lambda: presence.local[rooms.PARTNER][partner.pk] == 1, what="the connect undone")
        assert len([key for key in expiries.live if key[0] is namespace]) == 1  # the other socket's
        await asyncio.gather(connecting, return_exceptions=True)
        await cancelled.close()
        await wait_until(lambda: len(sio.environ) == 1, what="the cancelled socket's disconnect")
        assert presence.local[rooms.PARTNER][partner.pk] == 1
        await other.close()
        await wait_until(lambda: not sio.environ, what="the other socket's disconnect")

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_committed_accept_is_acked_when_the_relay_list_is_not_read_after_it(
    live_server_url, customer, partner, service, monkeypatch, caplog
):
    """The accept committed: its ack says so, not ``UNAVAILABLE`` (a retry would be refused as an
    invalid transition); the ``partner_bookings`` control its commit sent, else the reconcile,
    reads the relay list again."""
    booking = book(customer, service)
    token = token_for(partner.user)

    def gone(partner_ids):
        raise OperationalError("the database went away after the commit")

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token)
        monkeypatch.setattr(relay._targets, "load", gone)
        try:
            return await p.call("booking:accept", str(booking.pk))
        finally:
            monkeypatch.undo()
            await p.close()

    with caplog.at_level(logging.WARNING, logger="bookings.sockets"):
        ack = run(scenario())
    assert ack["ok"] is True and ack["booking"]["status"] == "PARTNER_ACCEPTED", ack
    booking.refresh_from_db()
    assert booking.status == "PARTNER_ACCEPTED"
    (record,) = [r for r in caplog.records if r.name == "bookings.sockets"]
    assert "relay list" in record.getMessage() and record.exc_info is None


@pytest.mark.django_db(transaction=True)
def test_a_partner_recorded_online_while_the_refused_connect_waited_is_recorded_offline(
    live_server_url, partner, monkeypatch
):
    """The connect counted the partner before its reads; the presence heartbeat wrote them online
    (within a second) while the newest fix waited for the database. The refusal records them offline
    at the next write: were they left online, dispatch would offer them jobs until ``PRESENCE_TTL``."""
    Partner.objects.filter(pk=partner.pk).update(online_until=None)
    written = threading.Event()

    def load(partner_ids):
        written.wait(5)  # the heartbeat's online write went first
        raise OperationalError("the database went away")

    def online() -> bool:
        try:
            return Partner.objects.filter(pk=partner.pk, online_until__isnull=False).exists()
        finally:
            connection.close()  # asked from a thread too: no session left on the test database

    monkeypatch.setattr(sockets._last_location_at, "load", load)

    async def scenario():
        refused = Client(live_server_url, "/partner")
        connecting = asyncio.ensure_future(refused.connect(token_for(partner.user)))
        try:
            await asyncio.to_thread(eventually, online, what="the partner written online during the connect")
        finally:
            written.set()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connecting
        assert refused.connect_error["data"] == {"code": "UNAVAILABLE"}, refused.connect_error

    run(scenario())
    eventually(lambda: not online(), what="the refused partner recorded offline")


@pytest.mark.server_errors("connect of /partner failed")
@pytest.mark.django_db(transaction=True)
def test_a_connect_whose_part_fails_otherwise_is_refused_internal_error_and_leaves_nothing(
    live_server_url, partner, monkeypatch
):
    """A part's failure that is not ``UNAVAILABLE`` (a bug) is logged with its traceback and refused
    ``INTERNAL_ERROR``: raised out of the connect handler, python-socketio sent no answer (the client
    waited for its own timeout) and kept the pre-connected socket in its rooms after the session closed."""

    def load(partner_ids):
        raise RuntimeError("a bug in the read")

    monkeypatch.setattr(sockets._last_location_at, "load", load)

    async def scenario():
        refused = Client(live_server_url, "/partner")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(token_for(partner.user), timeout=5)
        assert refused.connect_error is not None, "no answer: the client gave up"
        assert refused.connect_error["data"] == {"code": "INTERNAL_ERROR"}, refused.connect_error
        await refused.close()
        await wait_until(lambda: not sio.environ, what="the session closed")
        assert not [room for room in sio.manager.rooms.get(rooms.PARTNER, {}) if room]
        assert not sio.manager.pending_connect.get(rooms.PARTNER)
        assert partner.pk not in presence.local[rooms.PARTNER]

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_connect_refused_after_a_parts_hook_ran_undoes_it(live_server_url, partner, hung, monkeypatch):
    """The newest fix was read (``locations.newest`` holds it for the relay), then the relay list was
    not (past its batch's timeout): the refusal runs the partner part's disconnect hook, which its
    socket's disconnect would have, so nothing of the partner stays here; with another socket of
    theirs here, what that socket needs stays. The root runs dispatch's part (the relay list) before
    the partners' (the newest fix) today; the undo is the namespace's, whatever the parts' order, so
    this test puts the newest fix first, as a composition may."""
    Partner.objects.filter(pk=partner.pk).update(last_location_at=timezone.now())
    namespace = sio.namespace_handlers[rooms.PARTNER]
    jobs, partners = bookings_sockets.partner_jobs, sockets.partner
    order = [partners if part is jobs else jobs if part is partners else part for part in namespace.parts]
    monkeypatch.setattr(namespace, "parts", tuple(order))
    token = token_for(partner.user)

    async def refused_connect() -> None:
        refused = Client(live_server_url, "/partner")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(token)
        assert refused.connect_error is not None, "no answer: the client gave up"
        assert refused.connect_error["data"] == {"code": "UNAVAILABLE"}, refused.connect_error
        await refused.close()

    async def scenario():
        other = await Client(live_server_url, "/partner").connect(token)
        assert partner.pk in locations.newest
        held = hung(relay._targets)
        monkeypatch.setattr(relay._targets, "timeout", 0.3)
        try:
            await refused_connect()
            assert partner.pk in locations.newest  # the other socket's
            await other.close()
            await wait_until(lambda: partner.pk not in presence.local[rooms.PARTNER], what="the other socket gone")
            assert partner.pk not in locations.newest
            await refused_connect()  # their only socket: the newest fix was read, then undone
            assert partner.pk not in locations.newest, locations.newest
            assert partner.pk not in presence.local[rooms.PARTNER]
        finally:
            held.set()

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_refused_connects_undo_is_bounded(live_server_url, partner, hung, monkeypatch, caplog):
    """A refused connect's undo runs before the client gets its refusal: a ``disconnected`` hook that
    waits (on a dependency that does not answer) holds it for ``UNDO_SECONDS`` at most, then the
    refusal goes, and the undo left is one warning."""
    monkeypatch.setattr("config.realtime.parts.UNDO_SECONDS", 0.5, raising=False)
    namespace = sio.namespace_handlers[rooms.PARTNER]
    waiting = Part()

    @waiting.on_connected
    async def connected(namespace, sid, session) -> None:
        return None

    @waiting.on_disconnected
    async def disconnected(namespace, sid, session) -> None:
        await asyncio.sleep(30)  # a hook waiting on what does not answer

    monkeypatch.setattr(namespace, "parts", (waiting, *namespace.parts))

    async def scenario():
        held = hung(relay._targets)
        monkeypatch.setattr(relay._targets, "timeout", 0.3)
        refused = Client(live_server_url, "/partner")
        started = time.monotonic()
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await refused.connect(token_for(partner.user))
        finally:
            held.set()
        assert refused.connect_error is not None, "no answer: the client gave up"
        assert refused.connect_error["data"] == {"code": "UNAVAILABLE"}, refused.connect_error
        assert time.monotonic() - started < 3
        await refused.close()

    with caplog.at_level(logging.WARNING, logger="config.realtime.parts"):
        run(scenario())
    (line,) = [r.getMessage() for r in caplog.records if r.name == "config.realtime.parts"]
    assert line.startswith("undoing the refused connect of /partner ") and line.endswith("not done within 0.5 s, left")
