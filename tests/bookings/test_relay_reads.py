"""A partner's move reads their relay list once on the process that made it: the move's own refresh,
which its ack promises, and not again when the ``partner_bookings`` control its commit sent comes back
to this process; a control from another process reads, whatever number it carries."""

import asyncio

import pytest

from bookings import sockets as bookings_sockets
from config.realtime import hooks
from config.realtime.server import sio
from tests.factories import book
from tests.live import Client, eventually, queries_of_every_thread, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

RELAY_READ = 'SELECT partner_id, id, latitude, longitude FROM "bookings_booking"'  # selectors.relay_targets_of


@pytest.fixture
def controls_handled(monkeypatch) -> list[dict]:
    """The ``partner_bookings`` controls this process handled, each once its handler ended (a barrier)."""
    handler, ordered = hooks._control_handlers["partner_bookings"]
    handled: list[dict] = []

    async def recorded(manager, message):
        try:
            await handler(manager, message)
        finally:
            handled.append(message)

    monkeypatch.setitem(hooks._control_handlers, "partner_bookings", (recorded, ordered))
    return handled


@pytest.mark.parametrize("first", ["the move", "its control"])
def test_a_move_reads_the_relay_list_once_on_its_process(
    live_server_url, customer, partner, service, controls_handled, monkeypatch, first
):
    """Whichever of the move's refresh and its control's takes the partner's lock first reads; the
    other finds that read. ``its control``: the move's DB thread returns only once the control was
    handled (a busy loop or a slow pool return can order them so)."""
    booking = book(customer, service)
    if first == "its control":
        accept = bookings_sockets._accept

        def accept_then_wait(session, booking_id):
            accepted = accept(session, booking_id)
            eventually(lambda: controls_handled, what="the accept's control handled before the move's refresh")
            return accepted

        monkeypatch.setattr(bookings_sockets, "_accept", accept_then_wait)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        try:
            with queries_of_every_thread() as statements:
                ack = await p.call("booking:accept", str(booking.pk))
                await wait_until(lambda: controls_handled, what="the accept's control handled here")
                own = [sql for sql in statements if sql.startswith(RELAY_READ)]
            assert ack["ok"] is True and ack["booking"]["status"] == "PARTNER_ACCEPTED", ack
            assert controls_handled[0]["host_id"] == sio.manager.host_id  # this process's commit
            # The list the one read gave: the next fix reaches the booking.
            relayed = await p.call("location:update", {"latitude": 28.62, "longitude": 77.21})
            assert relayed == {"ok": True, "relayed": 1}, relayed

            # Another process's control reads here, even with a number this process passed long ago.
            with queries_of_every_thread() as statements:
                control = {"method": "partner_bookings", "user_id": str(partner.pk), "read_mark": 0}
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(sio.manager.publish_external(control), sio.manager.loop)
                )
                await wait_until(lambda: len(controls_handled) == 2, what="the other process's control")
                other = [sql for sql in statements if sql.startswith(RELAY_READ)]
            assert controls_handled[1]["host_id"] != sio.manager.host_id
        finally:
            await p.close()
        return own, other

    own, other = run(scenario())
    assert len(own) == 1, own  # without the mark: the move's read, then the control's
    assert len(other) == 1, other
