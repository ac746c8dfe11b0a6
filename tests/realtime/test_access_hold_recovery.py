"""A socket cut while held for its user's access recheck, recovered (same sid, ``pid`` and offset)
before the read ends, the user keeping their rights: every notification arrives once, in order
(the replay carries what was logged meanwhile; the hold's copies must not come again)."""

import asyncio
import json
import threading

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

from bookings import events
from config import rooms
from config.realtime import identity as identity_module
from config.realtime.emit import emit_message
from config.realtime.server import sio
from messaging.notify import notification_create
from tests.factories import BookingFactory, StaffFactory
from tests.live import RawSocket, TcpProxy, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, rechecks_done

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def first_read_waits():
    """The identity loader: its first read once ``armed`` waits for ``go``; the others do not."""
    original = identity_module._identity[0]
    armed, read, go = threading.Event(), threading.Event(), threading.Event()

    def loader(user_ids):
        if armed.is_set() and not read.is_set():
            read.set()
            go.wait(10)
        return original(user_ids)

    identity_module.set_identity_loader(loader)
    try:
        yield armed, read, go
    finally:
        go.set()
        identity_module.set_identity_loader(original)


def titles(raw: RawSocket) -> list[str]:
    prefix = f"42{rooms.CUSTOMER},"
    return [
        json.loads(f[len(prefix) :])[1]["title"] for f in raw.frames if f.startswith(prefix) and "notification:new" in f
    ]


def test_a_held_socket_recovered_before_its_read_gets_each_event_once(live_server_url, customer, first_read_waits):
    armed, read, go = first_read_waits
    proxy = TcpProxy(live_server_url).start()
    token = token_for(customer)
    notify = sync_to_async(notification_create)

    async def say(title: str) -> None:
        await notify(user_id=customer.pk, type="promo", title=title, body="", data={})

    async def scenario() -> None:
        raw = await RawSocket(proxy.url, rooms.CUSTOMER).connect(token)
        sid, pid = raw.answer["sid"], raw.answer["pid"]
        await say("before")
        frame = await raw.next(lambda f: "notification:new" in f, 5)
        offset = json.loads(frame[len(f"42{rooms.CUSTOMER},") :])[-1]
        armed.set()
        dispatch(control(customer))
        assert await asyncio.to_thread(read.wait, 5)
        await wait_until(lambda: sid in sio.manager.held, 5, "the socket held")
        await say("held 1")
        await say("held 2")
        proxy.cut()
        await wait_until(lambda: not sio.manager.is_connected(sid, rooms.CUSTOMER), what="the server saw the cut")
        await raw.close()
        await say("gone")
        proxy.reopen()
        raw = await RawSocket(proxy.url, rooms.CUSTOMER).connect(token, {"pid": pid, "offset": offset})
        assert raw.answer == {"sid": sid, "pid": pid}  # recovered
        await say("after")
        await asyncio.sleep(0.3)
        go.set()
        await rechecks_done()
        await asyncio.sleep(0.5)
        assert titles(raw) == ["held 1", "held 2", "gone", "after"], raw.frames
        await raw.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_a_demoted_socket_recovered_before_its_read_gets_nothing_of_the_room_it_lost(
    live_server_url, customer, service, first_read_waits
):
    """The same with rights lost: a staff watcher of another customer's booking, demoted; what was
    sent to the booking's room while held, while cut and after the recovery reaches it neither from
    the hold nor from the replay."""
    armed, read, go = first_read_waits
    staff = StaffFactory()
    booking = BookingFactory(customer=customer, service=service)
    proxy = TcpProxy(live_server_url).start()
    token = token_for(staff)

    def to_booking(when: str) -> dict:  # ``when``: for the reader; any of them after ``before`` is a leak
        return emit_message(
            "booking:status_updated",
            events.status_updated(booking),
            namespace=rooms.CUSTOMER,
            room=rooms.booking(booking.pk),
        )

    async def scenario() -> None:
        raw = await RawSocket(proxy.url, rooms.CUSTOMER).connect(token)
        sid, pid = raw.answer["sid"], raw.answer["pid"]
        assert (await raw.call("booking:track", str(booking.pk)))["ok"] is True
        dispatch(to_booking("before"))
        frame = await raw.next(lambda f: "booking:status_updated" in f, 5)
        offset = json.loads(frame[len(f"42{rooms.CUSTOMER},") :])[-1]
        await sync_to_async(get_user_model().objects.filter(pk=staff.pk).update)(is_staff=False)
        armed.set()
        dispatch(control(staff), to_booking("held"))
        assert await asyncio.to_thread(read.wait, 5)
        proxy.cut()
        await wait_until(lambda: not sio.manager.is_connected(sid, rooms.CUSTOMER), what="the server saw the cut")
        await raw.close()
        dispatch(to_booking("gone"))
        proxy.reopen()
        raw = await RawSocket(proxy.url, rooms.CUSTOMER).connect(token, {"pid": pid, "offset": offset})
        assert raw.answer == {"sid": sid, "pid": pid}  # recovered: its held entry is this sid's again
        dispatch(to_booking("after"))
        await asyncio.sleep(0.3)
        go.set()
        await rechecks_done()
        await asyncio.sleep(0.5)
        leaked = [f for f in raw.frames if "booking:status_updated" in f]
        assert not leaked, (raw.answer, leaked)
        assert rooms.booking(booking.pk) not in sio.manager.get_rooms(raw.answer["sid"], rooms.CUSTOMER)
        await raw.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    try:
        run(scenario())
    finally:
        proxy.stop()
