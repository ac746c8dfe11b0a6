"""A control message's handler runs as a task of its own (an ordered one excepted): one whose
database read hangs holds neither the broker listener (every room's delivery from the other
processes) nor the outbox, its failure is logged once, and a stop cancels what is still running."""

import asyncio
import logging
import threading
import time

import pytest
from prometheus_client import REGISTRY

import config.asgi  # noqa: F401 - the composition root registers the control handlers
from bookings import events, relay
from config import rooms
from config.realtime import hooks
from config.realtime.emit import emit_message
from config.realtime.identity import user_room
from config.realtime.server import sio
from tests.factories import BookingFactory
from tests.live import Client, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hanging_relay_read(monkeypatch):
    """``relay._targets``'s read, once set hanging: ``entered`` when it began, returns when ``held`` is set."""
    entered, held = threading.Event(), threading.Event()

    def load(partner_ids):
        entered.set()
        held.wait(10)
        return {}

    yield lambda: monkeypatch.setattr(relay._targets, "load", load), entered, held
    held.set()


def status_updated_for(customer, booking) -> dict:
    """An event for the customer (their user room), to be delivered while the control's read hangs."""
    return emit_message(
        "booking:status_updated",
        events.status_updated(booking),
        namespace=rooms.CUSTOMER,
        room=user_room(customer.pk),
    )


def test_a_control_whose_read_hangs_does_not_hold_another_processs_emits(
    live_server_url, customer, partner, service, hanging_relay_read
):
    """Another process's ``partner_bookings`` control, whose relay read the database leaves hanging,
    then its event for a customer here: the event arrives at once, not after the read's 5 s."""
    if sio.manager.is_local_only:
        pytest.skip("another process's messages need Redis (set REDIS_URL); .ci/run runs them")
    hang, entered, held = hanging_relay_read
    booking = BookingFactory(customer=customer, service=service)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        hang()  # the partner's connect read their relay list already
        await sio.manager.publish_external({"method": "partner_bookings", "user_id": str(partner.pk)})
        await wait_until(entered.is_set, what="the control's relay read to begin")
        message = status_updated_for(customer, booking)
        sent = time.monotonic()
        await sio.manager.publish_external(message)
        (got,) = await c.wait_for("booking:status_updated", timeout=8)
        took = time.monotonic() - sent
        assert got["bookingId"] == str(booking.pk)
        assert not held.is_set() and took < 2, took  # the read still hangs; the listener went on
        held.set()
        await p.close()
        await c.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_a_control_whose_read_hangs_does_not_hold_the_outbox(
    live_server_url, customer, partner, service, hanging_relay_read
):
    """This process's own ``partner_bookings`` control (a commit's, through the outbox) and the event
    queued after it: the event is delivered at once, the control's read still hanging."""
    hang, entered, held = hanging_relay_read
    booking = BookingFactory(customer=customer, service=service)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        hang()
        control = {"method": "partner_bookings", "user_id": str(partner.pk)}
        message = status_updated_for(customer, booking)
        sent = time.monotonic()
        asyncio.run_coroutine_threadsafe(sio.manager.dispatch_many([control, message]), sio.manager.loop)
        (got,) = await c.wait_for("booking:status_updated", timeout=8)
        took = time.monotonic() - sent
        assert got["bookingId"] == str(booking.pk) and took < 2, took
        await wait_until(entered.is_set, what="the control's relay read to begin")  # batched: maybe after
        held.set()
        await p.close()
        await c.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_a_control_handler_that_fails_is_logged_once_and_a_stop_cancels_one_running(monkeypatch, caplog):
    """A failure that is no unavailability is one error with its traceback; the handlers still running
    at the end of a stop are cancelled and awaited (``stopping.shutdown``)."""
    monkeypatch.setattr(hooks, "_control_handlers", dict(hooks._control_handlers))
    waiting: list[asyncio.Event] = []

    @hooks.on_control("test_fails")
    async def fails(manager, message):
        raise RuntimeError("a bug in the handler")

    @hooks.on_control("test_waits")
    async def waits(manager, message):
        waiting[0].set()
        await asyncio.Event().wait()

    async def scenario():
        waiting.append(asyncio.Event())
        for method in ("test_fails", "test_waits", "not_registered"):
            await hooks.run_control(None, method, {"method": method})
        await asyncio.wait_for(waiting[0].wait(), 5)
        (running,) = [task for task in hooks._controls if task.get_name() == "control test_waits"]
        await asyncio.wait_for(hooks.stop_controls(5), 5)
        return running

    with caplog.at_level(logging.ERROR, logger="config.realtime.hooks"):
        running = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert running.cancelled() and not hooks._controls
    (record,) = [r for r in caplog.records if r.name == "config.realtime.hooks"]
    assert record.getMessage() == "control test_fails failed" and record.exc_info is not None


def test_a_stop_abandons_a_control_handler_that_goes_on_waiting_after_its_cancellation(monkeypatch, caplog):
    """A handler whose cancellation waits again (a ``finally`` writing to a hung database) holds the
    stop no longer than what it has left: one warning, the process goes on stopping."""
    monkeypatch.setattr(hooks, "_control_handlers", dict(hooks._control_handlers))
    started: list[asyncio.Event] = []

    @hooks.on_control("test_stubborn")
    async def stubborn(manager, message):
        started[0].set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(30)  # as a write to a database that never answers would

    async def scenario() -> float:
        started.append(asyncio.Event())
        await hooks.run_control(None, "test_stubborn", {"method": "test_stubborn"})
        await asyncio.wait_for(started[0].wait(), 5)
        began = time.monotonic()
        await asyncio.wait_for(hooks.stop_controls(0.2), 5)
        return time.monotonic() - began  # asyncio.run cancels the abandoned task again as it ends

    with caplog.at_level(logging.WARNING, logger="config.realtime.hooks"):
        took = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert 0.15 < took < 1.0, took
    (record,) = [r for r in caplog.records if r.name == "config.realtime.hooks"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "stopping: 1 control handlers did not end in time, abandoned"


def test_an_ordered_control_is_run_to_its_end_before_the_next_message(monkeypatch, caplog):
    """``access_changed`` is ordered: an emit of another process after a user's rights changed is
    delivered only once their sockets were rechecked (the others run as tasks, above). Its failure
    is logged as a task's is, not raised into the loop that carries the messages (the listener's
    "broker message failed", the outbox's "local delivery failed")."""
    monkeypatch.setattr(hooks, "_control_handlers", dict(hooks._control_handlers))
    steps: list[str] = []

    @hooks.on_control("test_ordered", ordered=True)
    async def ordered(manager, message):
        await asyncio.sleep(0.05)
        steps.append("handled")

    @hooks.on_control("test_ordered_fails", ordered=True)
    async def fails(manager, message):
        raise RuntimeError("a bug in the handler")

    async def scenario():
        await hooks.run_control(None, "test_ordered", {"method": "test_ordered"})
        steps.append("next message")
        await hooks.run_control(None, "test_ordered_fails", {"method": "test_ordered_fails"})
        assert not hooks._controls

    with caplog.at_level(logging.ERROR, logger="config.realtime.hooks"):
        asyncio.run(asyncio.wait_for(scenario(), 5))
    assert steps == ["handled", "next message"]
    (record,) = [r for r in caplog.records if r.name == "config.realtime.hooks"]
    assert record.getMessage() == "control test_ordered_fails failed" and record.exc_info is not None
    assert hooks._control_handlers["access_changed"][1] is True
    assert hooks._control_handlers["partner_bookings"][1] is False


def test_a_burst_of_a_partners_controls_while_their_read_hangs_is_two_reads_not_one_each(
    live_server_url, partner, hanging_relay_read, monkeypatch
):
    """Ten ``partner_bookings`` controls for one partner while the database leaves the first read
    hanging: one task reads, one waits for the partner's lock (its read comes after every one of the
    ten commits), the other eight end at once; once the database answers, two reads in all."""
    hang, entered, held = hanging_relay_read
    reads = []

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        hang()
        hanging = relay._targets.load
        monkeypatch.setattr(relay._targets, "load", lambda ids: reads.append(ids) or hanging(ids))
        control = {"method": "partner_bookings", "user_id": str(partner.pk)}
        asyncio.run_coroutine_threadsafe(sio.manager.dispatch_many([control] * 10), sio.manager.loop)
        await wait_until(entered.is_set, what="the first control's read")
        await asyncio.sleep(0.2)  # the ten controls handled
        running = [task for task in list(hooks._controls) if task.get_name() == "control partner_bookings"]
        assert len(running) == 2, len(running)
        held.set()
        await wait_until(lambda: not hooks._controls, what="the controls' end")
        assert len(reads) == 2, reads
        await p.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def test_control_tasks_are_bounded_per_method(monkeypatch, caplog):
    """Past ``CONTROL_TASKS_MAX`` running handlers of a method, the next are refused: counted each,
    logged once until the method's tasks have all ended; an ordered handler is never refused here."""
    monkeypatch.setattr(hooks, "_control_handlers", dict(hooks._control_handlers))
    monkeypatch.setattr(hooks, "CONTROL_TASKS_MAX", 2)
    release: list[asyncio.Event] = []
    ran: list[str] = []

    @hooks.on_control("test_bounded")
    async def bounded(manager, message):
        ran.append(message["n"])
        await release[0].wait()

    @hooks.on_control("test_bounded_ordered", ordered=True)
    async def ordered(manager, message):
        ran.append("ordered")

    def shed() -> float:
        return REGISTRY.get_sample_value("homeservices_controls_shed_total", {"method": "test_bounded"}) or 0.0

    before = shed()

    async def scenario():
        release.append(asyncio.Event())
        for n in range(5):
            await hooks.run_control(None, "test_bounded", {"method": "test_bounded", "n": n})
        await hooks.run_control(None, "test_bounded_ordered", {"method": "test_bounded_ordered"})
        await asyncio.sleep(0)
        assert ran == ["ordered", 0, 1] and hooks._running["test_bounded"] == 2
        release[0].set()
        await asyncio.wait_for(asyncio.gather(*hooks._controls), 5)
        assert "test_bounded" not in hooks._running
        await hooks.run_control(None, "test_bounded", {"method": "test_bounded", "n": 5})
        await asyncio.wait_for(asyncio.gather(*hooks._controls), 5)

    with caplog.at_level(logging.WARNING, logger="config.realtime.hooks"):
        asyncio.run(asyncio.wait_for(scenario(), 10))
    assert ran == ["ordered", 0, 1, 5]
    assert shed() - before == 3
    (record,) = [r for r in caplog.records if r.name == "config.realtime.hooks"]
    assert record.getMessage() == "control test_bounded: 2 handlers running (CONTROL_TASKS_MAX), the next are refused"
