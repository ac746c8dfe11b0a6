"""Two ``access_changed`` of one user, the second while the first still refuses a socket that lost
its right: the first's end must not end the second's hold. It released every socket it had held,
the second's too, dropping what waited for them: an event sent after the second change, to a
socket that keeps its rights, was lost, and what came next went out before the second read."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.db import connection, transaction

from config import rooms
from config.realtime.server import sio
from partners.models import Partner
from tests.factories import BookingFactory
from tests.live import Client, run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch, identity_reads, rechecks_done  # noqa: F401
from tests.realtime.test_control_tasks import status_updated_for
from tests.realtime.test_rights import HERE

pytestmark = pytest.mark.django_db(transaction=True)


def lock_row(pk: int, locked: threading.Event, unlock: threading.Event) -> None:
    """Another session holds the partner's row (a long transaction): the location flush of their
    /partner socket's disconnect waits for it."""
    try:
        with transaction.atomic():
            Partner.objects.select_for_update().get(pk=pk)
            locked.set()
            unlock.wait(10)
    finally:
        connection.close()


def test_a_second_change_while_the_first_refuses_keeps_what_waits_for_its_sockets(
    live_server_url,
    partner,
    service,
    identity_reads,  # noqa: F811 - the fixture, imported
):
    _, hang, held = identity_reads
    booking = BookingFactory(customer=partner.user, service=service)
    locked, unlock = threading.Event(), threading.Event()

    async def scenario():
        moving = await Client(live_server_url, rooms.PARTNER).connect(token_for(partner.user))
        watching = await Client(live_server_url, rooms.CUSTOMER).connect(token_for(partner.user))
        cs = watching.sio.get_sid(rooms.CUSTOMER)
        assert (await moving.call("location:update", HERE))["ok"] is True  # buffered: flushed at its disconnect
        await sync_to_async(Partner.objects.filter(pk=partner.pk).update)(is_suspended=True)  # no signal
        locker = threading.Thread(target=lock_row, args=(partner.pk, locked, unlock))
        locker.start()
        try:
            assert await asyncio.to_thread(locked.wait, 5)
            dispatch(control(partner.user))  # the first: /partner lost (refused, its flush waits), /customer kept
            (err,) = await moving.wait_for("error", timeout=5)
            assert err["code"] == "FORBIDDEN", err
            hang.set()  # the second's read waits
            dispatch(control(partner.user), status_updated_for(partner.user, booking))
            await wait_until(lambda: cs in sio.manager.held and sio.manager.held[cs].messages, 5, "E held")
        finally:
            unlock.set()  # the first recheck ends
            await asyncio.to_thread(locker.join, 10)
        await asyncio.sleep(0.5)
        # The second's read has not come back: its hold must still be in place.
        assert cs in sio.manager.held, "the first recheck's end released the second's hold"
        held.set()
        await rechecks_done()
        (got,) = await watching.wait_for("booking:status_updated", timeout=5)
        assert got["bookingId"] == str(booking.pk) and watching.sio.connected
        for client in (moving, watching):
            await client.close()
        await wait_until(lambda: not sio.environ, what="the sockets' disconnects")

    run(scenario())
