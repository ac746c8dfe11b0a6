"""What a held socket asks for while its user's rights are read (``access_changed``): the demotion
is committed and announced, the read waits on the database, and the socket's own requests are
answered with the rights it had. A demoted staff user tracked another customer's booking, its
snapshot in the ack (and joined its room, left only at the read's end) after the demotion. Now a
held socket's requests wait for the hold's end (``holding.until_released``)."""

import asyncio

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

from config import rooms
from config.realtime.server import sio
from tests.factories import BookingFactory, StaffFactory
from tests.live import Client, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, identity_reads, rechecks_done  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_held_socket_is_not_served_with_the_rights_it_lost(live_server_url, customer, service, identity_reads):  # noqa: F811
    _, hang, held = identity_reads
    demoted = StaffFactory()
    booking = BookingFactory(customer=customer, service=service)

    async def scenario():
        client = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(demoted))
        sid = client.sio.get_sid(rooms.CUSTOMER)
        await sync_to_async(get_user_model().objects.filter(pk=demoted.pk).update)(is_staff=False)  # no signal
        hang.set()
        dispatch(control(demoted))  # the demotion, committed and announced; its read waits
        await wait_until(lambda: sid in sio.manager.held, 5, "the socket held")
        try:
            answer = await asyncio.wait_for(client.call("booking:track", str(booking.pk)), 3)
        except TimeoutError:
            answer = None  # waited for the read: not served with the old rights
        finally:
            held.set()
        await rechecks_done()
        assert answer is None or answer["ok"] is False, answer
        await client.close()
        await wait_until(lambda: not sio.environ, what="the socket's disconnect")

    run(scenario())
