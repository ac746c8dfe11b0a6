"""Two ``access_changed`` of one user whose reads come back out of order (the first read's
connection slower): the older read must not be applied after the newer one. A user promoted then
demoted at once kept staff rights in their socket's session (until the periodic recheck) when the
promotion's read, made before the demotion, came back last."""

import asyncio

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

from config import rooms
from config.realtime.server import sio
from tests.factories import BookingFactory, UserFactory
from tests.live import Client, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, first_read_returns_last, rechecks_done  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_older_read_is_not_applied_after_a_newer_one(live_server_url, customer, service, first_read_returns_last):  # noqa: F811
    armed, read, go = first_read_returns_last
    user = UserFactory()
    booking = BookingFactory(customer=customer, service=service)
    users = get_user_model().objects

    async def scenario():
        client = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(user))
        sid = client.sio.get_sid(rooms.CUSTOMER)
        await sync_to_async(users.filter(pk=user.pk).update)(is_staff=True)  # no signal: the control says it
        armed.set()
        dispatch(control(user))
        assert await asyncio.to_thread(read.wait, 5)  # the promotion read (staff), not returned yet
        await sync_to_async(users.filter(pk=user.pk).update)(is_staff=False)
        dispatch(control(user))  # the demotion: read and applied first
        await asyncio.sleep(0.5)
        go.set()
        await rechecks_done()
        session = await sio.manager.session_of(sid, rooms.CUSTOMER)
        answer = await client.call("booking:track", str(booking.pk))
        assert not session.get("is_staff") and answer["ok"] is False, (session, answer)
        await client.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())
