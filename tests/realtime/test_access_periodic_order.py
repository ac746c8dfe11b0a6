"""The periodic recheck (``recheck_all``) against an ``access_changed`` that came while its read was
under way: the periodic read, made before the change, must not be applied after the change's own.
A staff user renamed (no control: a name is no right) then demoted while the period's read waited
on the database got staff rights back in their socket's session (the read differed by the name, so
the user was stale, and the whole read identity was applied), until the next period
(``ACCESS_RECHECK_SECONDS``, 60 s): another customer's booking tracked after the demotion."""

import asyncio

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

from config import rooms
from config.realtime.rechecks import recheck_all
from config.realtime.server import sio
from tests.factories import BookingFactory, UserFactory
from tests.live import Client, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, first_read_returns_last, rechecks_done  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_periodic_read_is_not_applied_after_an_access_change(
    live_server_url,
    customer,
    service,
    first_read_returns_last,  # noqa: F811
):
    armed, read, go = first_read_returns_last
    user = UserFactory(is_staff=True)
    booking = BookingFactory(customer=customer, service=service)
    users = get_user_model().objects

    async def scenario():
        client = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(user))
        sid = client.sio.get_sid(rooms.CUSTOMER)
        assert (await client.call("booking:track", str(booking.pk)))["ok"] is True  # staff: may watch it
        await sync_to_async(users.filter(pk=user.pk).update)(first_name="Renamed")  # no control: no right changed
        armed.set()
        period = asyncio.run_coroutine_threadsafe(recheck_all(sio.manager), sio.manager.loop)
        assert await asyncio.to_thread(read.wait, 5)  # the period's read (staff, renamed), not returned yet
        await sync_to_async(users.filter(pk=user.pk).update)(is_staff=False)
        dispatch(control(user))  # the demotion: read and applied first
        await wait_until(
            lambda: booking_room(booking) not in sio.manager.get_rooms(sid, rooms.CUSTOMER), 10, "the demotion's prune"
        )
        go.set()
        await asyncio.wait_for(asyncio.wrap_future(period), 10)
        await rechecks_done()
        session = await sio.manager.session_of(sid, rooms.CUSTOMER)
        answer = await client.call("booking:track", str(booking.pk))
        assert not session.get("is_staff") and answer["ok"] is False, (session, answer)
        await client.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())


def booking_room(booking) -> str:
    return rooms.booking(booking.pk)
