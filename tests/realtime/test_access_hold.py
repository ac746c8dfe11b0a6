"""An ``access_changed`` control holds only its user's sockets (contract 10: a hung dependency holds
nothing back): the read of the user runs in a task, through the batched reader, bounded; what is
sent to the user's sockets meanwhile waits and goes on to the rooms they keep; a user who cannot be
read is refused (fail-closed). The real-PostgreSQL variant is ``test_access_hold_hung_database.py``."""

import asyncio
import threading
import time

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

import config.asgi  # noqa: F401 - the composition root registers the control handlers
from bookings import events
from bookings.models import BookingStatus as S
from config import rooms
from config.realtime import hooks, rechecks
from config.realtime import identity as identity_module
from config.realtime.emit import emit_message
from config.realtime.rights import RoomRights
from config.realtime.server import sio
from tests.factories import BookingFactory, StaffFactory, UserFactory
from tests.live import Client, run, socket_barrier, token_for, wait_until
from tests.realtime.test_control_tasks import status_updated_for
from tests.realtime.test_rights import HERE, watchers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def identity_reads(monkeypatch):
    """The identity loader, counted (each call: the ids it read) and, once ``hang`` is set, held
    until ``held`` is set: a database that does not answer, for this read only."""
    original = identity_module._identity[0]
    calls: list[list[int]] = []
    hang, held = threading.Event(), threading.Event()

    def loader(user_ids):
        calls.append(sorted(user_ids))
        if hang.is_set():
            held.wait(10)
        return original(user_ids)

    identity_module.set_identity_loader(loader)
    try:
        yield calls, hang, held
    finally:
        held.set()
        identity_module.set_identity_loader(original)


def control(user) -> dict:
    return {"method": "access_changed", "user_id": str(user.pk)}


def dispatch(*messages: dict) -> None:
    """As a commit hands them to the outbox: one ``dispatch_many``, in order."""
    asyncio.run_coroutine_threadsafe(sio.manager.dispatch_many(list(messages)), sio.manager.loop)


async def rechecks_done() -> None:
    rechecking, held = getattr(rechecks, "_rechecking", {}), getattr(sio.manager, "held", {})
    await wait_until(lambda: not rechecking and not held and not hooks._controls, 15, "the rechecks' end")


def test_a_recheck_waiting_on_the_database_holds_only_its_users_sockets(
    live_server_url, customer, other_customer, partner, service, identity_reads
):
    """Two staff watchers of a booking, one just demoted; their rechecks' read hangs. An event for
    another customer queued after the controls arrives at once, and so does the partner's next
    location for the booking's customer; the watchers get it only after their read: the demoted one
    never (the room went with the right), the other one then, in order."""
    calls, hang, held = identity_reads
    demoted, kept = StaffFactory(), StaffFactory()
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)
    elsewhere = BookingFactory(customer=other_customer, service=service)

    async def scenario():
        watcher, owner, moving = await watchers(live_server_url, demoted, customer, partner, booking)
        staying = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(kept))
        assert (await staying.call("booking:track", str(booking.pk)))["ok"] is True
        bystander = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(other_customer))
        await sync_to_async(get_user_model().objects.filter(pk=demoted.pk).update)(is_staff=False)  # no signal
        hang.set()
        sent = time.monotonic()
        dispatch(control(demoted), control(kept), status_updated_for(other_customer, elsewhere))
        (got,) = await bystander.wait_for("booking:status_updated", timeout=8)
        assert got["bookingId"] == str(elsewhere.pk) and time.monotonic() - sent < 2
        assert (await moving.call("location:update", HERE))["relayed"] == 1
        (location,) = await owner.wait_for("partner:location_update", timeout=2)
        assert location["bookingId"] == str(booking.pk)
        await wait_until(lambda: sorted([demoted.pk, kept.pk]) in calls, 5, "one read for both watchers")
        await asyncio.sleep(0.3)  # what is held stays held: the read hangs
        for client in (watcher, staying):
            assert not client.events.get("partner:location_update")
        held.set()
        (late,) = await staying.wait_for("partner:location_update", timeout=8)
        assert late == location
        await rechecks_done()
        await socket_barrier(watcher)
        assert watcher.sio.connected and not watcher.events.get("partner:location_update")
        sid = watcher.sio.get_sid(rooms.CUSTOMER)
        assert rooms.booking(booking.pk) not in sio.manager.get_rooms(sid, rooms.CUSTOMER)
        for client in (watcher, owner, moving, staying, bystander):
            await client.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_a_bulk_suspension_is_one_read_not_one_per_user(live_server_url, identity_reads):
    """Twenty users' ``access_changed`` in one commit (an admin action on twenty accounts): their
    rechecks read them together, one query, and each socket stays (nothing changed for them)."""
    calls, _, _ = identity_reads
    users = [UserFactory() for _ in range(20)]

    async def scenario():
        clients = [await Client(live_server_url, rooms.CUSTOMER).connect(token_for(user)) for user in users]
        calls.clear()
        dispatch(*(control(user) for user in users))
        await wait_until(lambda: sum(map(len, calls)) >= len(users), 10, "every user read")
        await rechecks_done()
        assert calls == [sorted(user.pk for user in users)], calls
        assert all(client.sio.connected for client in clients)
        for client in clients:
            await client.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_a_user_who_cannot_be_read_is_refused_and_nobody_else_waits(
    live_server_url, customer, other_customer, service, identity_reads, monkeypatch
):
    """The read is not answered within the batched reader's timeout: the user's socket is refused
    ``UNAVAILABLE`` (a right that may have gone is not kept), and disconnected; another customer's
    events went on meanwhile."""
    _, hang, held = identity_reads
    monkeypatch.setattr(identity_module.identities, "timeout", 0.5)
    booking = BookingFactory(customer=other_customer, service=service)

    async def scenario():
        c = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(customer))
        other = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(other_customer))
        hang.set()
        dispatch(control(customer), status_updated_for(other_customer, booking))
        await other.wait_for("booking:status_updated", timeout=2)
        (err,) = await c.wait_for("error", timeout=8)
        assert err["code"] == "UNAVAILABLE" and err["event"] is None, err
        await wait_until(lambda: not c.sio.connected, 5, "the unreadable user's socket to be refused")
        assert other.sio.connected
        held.set()
        await rechecks_done()
        await other.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_an_access_change_past_the_bound_refuses_the_users_sockets(live_server_url, customer, monkeypatch):
    """``access_changed`` is ordered: never dropped. Past the bound its user is not read but refused
    ``UNAVAILABLE`` at once (fail-closed): the client reconnects and is read then."""
    monkeypatch.setattr(hooks, "CONTROL_TASKS_MAX", 0)

    async def scenario():
        c = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(customer))
        dispatch(control(customer))
        (err,) = await c.wait_for("error", timeout=5)
        assert err["code"] == "UNAVAILABLE" and "Too many access rechecks" in err["message"], err
        await wait_until(lambda: not c.sio.connected, 5, "the socket to be refused")
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def test_a_socket_for_which_too_much_waited_is_refused_at_release(
    live_server_url, customer, partner, service, identity_reads, monkeypatch
):
    """What waits for a held socket is bounded (``HOLD_MAX``): past it the copies are dropped, not
    kept, and at release the socket is refused ``UNAVAILABLE`` (its client connects anew)."""
    _, hang, held = identity_reads
    monkeypatch.setattr("config.realtime.holding.HOLD_MAX", 2)
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)

    async def scenario():
        c = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(customer))
        assert (await c.call("booking:track", str(booking.pk)))["ok"] is True
        p = await Client(live_server_url, rooms.PARTNER).connect(token_for(partner.user))
        hang.set()
        dispatch(control(customer))
        sid = c.sio.get_sid(rooms.CUSTOMER)
        await wait_until(lambda: sid in sio.manager.held, 5, "the customer's socket held")
        for step in range(3):
            assert (await p.call("location:update", {**HERE, "latitude": 28.62 + step / 1000}))["relayed"] == 1
        assert sio.manager.held[sid].overflowed and not sio.manager.held[sid].messages
        held.set()
        (err,) = await c.wait_for("error", timeout=8)
        assert err["code"] == "UNAVAILABLE" and "waited" in err["message"], err
        await wait_until(lambda: not c.sio.connected, 5, "the socket to be refused")
        assert not c.events.get("partner:location_update")
        await rechecks_done()
        await p.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())


def test_what_was_sent_to_a_room_closed_while_its_socket_was_held_still_arrives(
    live_server_url, customer, partner, service, identity_reads
):
    """A booking's end (``lifecycle``): its last status to the booking room, then the room closed,
    while the customer's socket is held by a recheck. The status was sent to a room the socket was
    in, and the recheck took no right away: it arrives at the release, as it would have unheld."""
    _, hang, held = identity_reads
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)
    room = rooms.booking(booking.pk)

    async def scenario():
        c = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(customer))
        assert (await c.call("booking:track", str(booking.pk)))["ok"] is True
        hang.set()
        dispatch(control(customer))
        sid = c.sio.get_sid(rooms.CUSTOMER)
        await wait_until(lambda: sid in sio.manager.held, 5, "the customer's socket held")
        last = emit_message(
            "booking:status_updated", events.status_updated(booking), namespace=rooms.CUSTOMER, room=room
        )
        dispatch(last, {"method": "close_room", "room": room, "namespace": rooms.CUSTOMER})
        await wait_until(lambda: room not in sio.manager.get_rooms(sid, rooms.CUSTOMER), 5, "the room closed")
        assert not c.events.get("booking:status_updated")
        held.set()
        (got,) = await c.wait_for("booking:status_updated", timeout=8)
        assert got["bookingId"] == str(booking.pk) and got["status"] == events.status_updated(booking)["status"]
        await rechecks_done()
        assert c.sio.connected
        await c.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def test_the_read_and_the_rooms_check_share_one_bound(
    live_server_url, customer, partner, service, identity_reads, monkeypatch
):
    """``RECHECK_HOLD_SECONDS`` bounds the hold as a whole: a read and a rooms' check each within
    it, but not together, refuse the socket ``UNAVAILABLE`` (each had a bound of its own: twice it)."""
    monkeypatch.setattr(rechecks, "RECHECK_HOLD_SECONDS", 1.0)
    permitted, read = RoomRights.permitted_rooms, identity_module._identity[0]  # the fixture's, restored by it

    def slow_rooms(self, *args, **kwargs):
        time.sleep(0.7)
        return permitted(self, *args, **kwargs)

    def slow_read(user_ids):
        time.sleep(0.7)
        return read(user_ids)

    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)

    async def scenario():
        c = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(customer))
        assert (await c.call("booking:track", str(booking.pk)))["ok"] is True
        monkeypatch.setattr(RoomRights, "permitted_rooms", slow_rooms)
        identity_module.set_identity_loader(slow_read)
        dispatch(control(customer))
        (err,) = await c.wait_for("error", timeout=8)
        assert err["code"] == "UNAVAILABLE" and err["event"] is None, err
        await wait_until(lambda: not c.sio.connected, 5, "the socket to be refused")
        await rechecks_done()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def test_refusals_past_the_bound_are_one_task_however_many(live_server_url, monkeypatch):
    """Past ``CONTROL_TASKS_MAX`` each ``access_changed`` refuses its user's sockets; a refusal may
    wait on the database (a partner's disconnect writes to it). Five users' controls while the
    refusals wait: one refusal at a time, not five tasks each waiting, and each socket refused."""
    monkeypatch.setattr(hooks, "CONTROL_TASKS_MAX", 0)
    users = [UserFactory() for _ in range(5)]
    gate, inside, peak = threading.Event(), [0], [0]
    refuse = RoomRights.refuse

    async def waiting_refuse(self, sid, error, **kwargs):
        inside[0] += 1
        peak[0] = max(peak[0], inside[0])
        while not gate.is_set():  # the database does not answer
            await asyncio.sleep(0.01)
        inside[0] -= 1
        await refuse(self, sid, error, **kwargs)

    async def scenario():
        clients = [await Client(live_server_url, rooms.CUSTOMER).connect(token_for(user)) for user in users]
        monkeypatch.setattr(RoomRights, "refuse", waiting_refuse)
        dispatch(*(control(user) for user in users))
        await wait_until(lambda: peak[0] >= 1, 5, "a refusal waiting")
        await asyncio.sleep(0.3)
        assert peak[0] == 1 and sum(hooks._running.values()) == 1, (peak, hooks._running)
        gate.set()
        for client in clients:
            (err,) = await client.wait_for("error", timeout=5)
            assert err["code"] == "UNAVAILABLE" and "Too many access rechecks" in err["message"], err
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")
        await wait_until(lambda: not hooks._controls, 5, "the refusals' task to end")

    run(scenario())


@pytest.fixture
def first_read_returns_last():
    """The identity loader: its first read once ``armed`` is made at once and returned only once
    ``go`` is set."""
    original = identity_module._identity[0]
    armed, read, go = threading.Event(), threading.Event(), threading.Event()

    def loader(user_ids):
        found = original(user_ids)
        if armed.is_set() and not read.is_set():
            read.set()
            go.wait(10)
        return found

    identity_module.set_identity_loader(loader)
    try:
        yield armed, read, go
    finally:
        go.set()
        identity_module.set_identity_loader(original)
