"""A socket refused at its recheck (its right gone) gets nothing more while its disconnect runs: a
partner's disconnect writes their last locations, and that write may wait on the database (a row
another transaction holds). The hold was released before the refusal, the socket still in its
rooms: what was sent meanwhile went out on the wire after the DISCONNECT packet, which a client
that ignores it (a raw one) read, rights revoked."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async as sync_to_async

from bookings import events
from config import rooms
from config.realtime.emit import emit_message
from config.realtime.identity import user_room
from config.realtime.rechecks import recheck_all
from config.realtime.server import sio
from partners.models import Partner
from tests.factories import BookingFactory
from tests.live import RawSocket, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, rechecks_done
from tests.realtime.test_access_hold_overlap import lock_row
from tests.realtime.test_rights import HERE

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_socket_gets_nothing_while_its_disconnect_waits(live_server_url, partner, customer, service):
    booking = BookingFactory(customer=customer, service=service)
    locked, unlock = threading.Event(), threading.Event()
    after = emit_message(
        "booking:offer_expired", events.offer_expired(booking), namespace=rooms.PARTNER, room=user_room(partner.pk)
    )

    async def scenario():
        raw = await RawSocket(live_server_url, rooms.PARTNER).connect(token_for(partner.user))
        assert (await raw.call("location:update", HERE))["ok"] is True  # buffered: written at the disconnect
        await sync_to_async(Partner.objects.filter(pk=partner.pk).update)(is_suspended=True)  # no signal
        locker = threading.Thread(target=lock_row, args=(partner.pk, locked, unlock))
        locker.start()
        try:
            assert await asyncio.to_thread(locked.wait, 5)
            dispatch(control(partner.user))
            await raw.next(lambda f: f.startswith(f"42{rooms.PARTNER},") and "FORBIDDEN" in f, 5)
            await raw.next(lambda f: f.startswith(f"41{rooms.PARTNER}"), 5)  # the DISCONNECT; its hooks wait
            dispatch(after)  # sent after the change, to the suspended partner's room
            await asyncio.sleep(0.5)
            leaked = [f for f in raw.frames if "booking:offer_expired" in f]
            assert not leaked, leaked
        finally:
            unlock.set()
            await asyncio.to_thread(locker.join, 10)
        await rechecks_done()
        await raw.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def test_a_socket_refused_by_the_periodic_recheck_gets_nothing_while_its_disconnect_waits(
    live_server_url, partner, customer, service
):
    """The same through the periodic recheck (a suspension nobody announced: ``QuerySet.update``, a
    lost control): its refusal (``RoomRights._revoke``) did not mute the socket."""
    booking = BookingFactory(customer=customer, service=service)
    locked, unlock = threading.Event(), threading.Event()
    after = emit_message(
        "booking:offer_expired", events.offer_expired(booking), namespace=rooms.PARTNER, room=user_room(partner.pk)
    )

    async def scenario():
        raw = await RawSocket(live_server_url, rooms.PARTNER).connect(token_for(partner.user))
        assert (await raw.call("location:update", HERE))["ok"] is True  # buffered: written at the disconnect
        await sync_to_async(Partner.objects.filter(pk=partner.pk).update)(is_suspended=True)  # no signal, no control
        locker = threading.Thread(target=lock_row, args=(partner.pk, locked, unlock))
        locker.start()
        period = None
        try:
            assert await asyncio.to_thread(locked.wait, 5)
            period = asyncio.run_coroutine_threadsafe(recheck_all(sio.manager), sio.manager.loop)
            await raw.next(lambda f: f.startswith(f"42{rooms.PARTNER},") and "FORBIDDEN" in f, 5)
            await raw.next(lambda f: f.startswith(f"41{rooms.PARTNER}"), 5)  # the DISCONNECT; its hooks wait
            dispatch(after)  # sent after the recheck found the partner suspended, to their room
            await asyncio.sleep(0.5)
            leaked = [f for f in raw.frames if "booking:offer_expired" in f]
            assert not leaked, leaked
        finally:
            unlock.set()
            await asyncio.to_thread(locker.join, 10)
            if period is not None:
                await asyncio.wait_for(asyncio.wrap_future(period), 10)
        await rechecks_done()
        await raw.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())
