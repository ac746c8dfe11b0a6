"""A hostile client: forged packets, stale permissions, revoked roles, lenient inputs.

Raw frames go over a websocket spoken by hand (``tests.live.RawSocket``), because the
official clients refuse to send reserved names or lone surrogates.
"""

import json
import logging

import pytest
import socketio
from channels.db import database_sync_to_async as sync_to_async

from bookings import services as booking_services
from bookings.models import BookingStatus as S
from bookings.relay import reconcile_relays
from config import rooms
from config.realtime.identity import load_identity, set_identity_loader
from config.realtime.limits import limiter
from config.realtime.presence import presence
from config.realtime.rechecks import recheck_all
from config.realtime.server import sio
from partners.access import socket_identities
from partners.models import Partner
from tests.factories import BookingFactory
from tests.live import UNKNOWN_BOOKING, Client, RawSocket, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

RESERVED = ["connect", "disconnect", "connect_error", "error", "disconnecting", "newListener", "removeListener"]


def refusal(ack: dict) -> str:
    assert ack["ok"] is False and set(ack["error"]) >= {"code", "message"}, ack
    assert "Traceback" not in ack["error"]["message"]
    return ack["error"]["code"]


@pytest.mark.parametrize("namespace", ["/customer", "/partner", "/admin"])
def test_reserved_event_names_are_refused_and_change_nothing(live_server_url, customer, partner, staff, namespace):
    user = {"/customer": customer, "/partner": partner.user, "/admin": staff}[namespace]

    async def scenario():
        # A short token: the expiry timer must survive a forged "disconnect".
        raw = await RawSocket(live_server_url, namespace).connect(token_for(user, lifetime=3))
        for ack_id, name in enumerate(RESERVED, start=1):
            await raw.send(f"2{namespace},{ack_id}" + json.dumps([name, {"x": 1}]))
            assert refusal(await raw.ack(ack_id)) == "VALIDATION_ERROR"
            # One answer: the ack when asked for (no error event with it), else one error event.
            assert not [f for f in raw.frames if f.startswith(f'42{namespace},["error"')], raw.frames
            await raw.send(f"2{namespace}," + json.dumps([name, {"x": 1}]))
            error = json.loads(
                (await raw.next(lambda f: f.startswith(f'42{namespace},["error"')))[len(namespace) + 3 :]
            )
            assert error[1]["code"] == "VALIDATION_ERROR" and error[1]["event"] == name
        assert raw.open and presence.local[namespace][user.pk] == 1  # counted once, still online
        # The expiry timer still runs: TOKEN_EXPIRED, then the server closes the socket.
        await raw.next(lambda f: '"TOKEN_EXPIRED"' in f, timeout=6)
        await wait_until(lambda: user.pk not in presence.local[namespace], what="presence withdrawn")
        await raw.close()

    run(scenario())


def test_malformed_packets_are_answered(live_server_url, customer):
    bad = {
        1: "{}",  # not a list
        2: "[]",  # no name
        3: "[42]",  # a name that is not a string
        4: '["booking:track", "\\ud800"]',  # a lone surrogate (valid JSON, not Unicode)
        5: '["message:send", {"recipientId": "1", "message": "hi \\udc00"}]',
        6: '["booking:track", NaN]',
        7: '["booking:track", ',  # not JSON at all
        8: '["' + "x" * 500 + '"]',  # a name nobody handles
        9: '["booking:track", 123456789012345678901234567890]',  # past 64 bits: orjson refuses, JSON allows
    }

    async def scenario():
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        for ack_id, data in bad.items():
            await raw.send(f"2/customer,{ack_id}{data}")
        codes = {ack_id: refusal(await raw.ack(ack_id)) for ack_id in bad}
        assert set(codes.values()) <= {"VALIDATION_ERROR", "NOT_FOUND"}, codes
        assert codes[4] == codes[5] == codes[7] == "VALIDATION_ERROR"
        # still connected and serving
        await raw.send('2/customer,99["booking:track", "00000000-0000-0000-0000-000000000000"]')
        assert refusal(await raw.ack(99)) == "NOT_FOUND"
        await raw.close()

    run(scenario())


def test_demoted_staff_is_disconnected_everywhere(live_server_url, staff):
    async def scenario():
        admin = await Client(live_server_url, "/admin").connect(token_for(staff))
        staff.is_staff = False
        await sync_to_async(staff.save)()
        error = await admin.wait_for("error")
        assert error[0]["code"] == "FORBIDDEN"
        await wait_until(lambda: not admin.sio.connected, what="demoted staff disconnected")

    run(scenario())


def test_auth_refresh_rereads_the_user(live_server_url, staff):
    async def scenario():
        admin = await Client(live_server_url, "/admin").connect(token_for(staff))
        # Demoted without a signal (a bulk update): only the refresh's own check can notice.
        await sync_to_async(type(staff).objects.filter(pk=staff.pk).update)(is_staff=False)
        ack = await admin.call("auth:refresh", {"token": token_for(staff)})
        assert refusal(ack) == "FORBIDDEN"
        await wait_until(lambda: not admin.sio.connected, what="refused refresh disconnects")

    run(scenario())


def test_removed_partner_profile_and_suspension_disconnect(live_server_url, partner, staff):
    from partners.services import partner_suspend

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        await sync_to_async(partner_suspend)(partner_id=partner.pk, actor=staff)
        await wait_until(lambda: not p.sio.connected, what="suspended partner disconnected")
        await sync_to_async(partner_suspend)(partner_id=partner.pk, actor=staff, suspended=False)
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        customer_side = await Client(live_server_url, "/customer").connect(token_for(partner.user))
        await sync_to_async(Partner.objects.filter(pk=partner.pk).delete)()
        await wait_until(lambda: not p.sio.connected, what="partner without a profile disconnected")
        assert customer_side.sio.connected  # still a customer
        await customer_side.close()

    run(scenario())


def test_suspension_racing_the_connect_is_caught_after_joining(live_server_url, partner, staff):
    """The partner is suspended after the connect read the profile but before the socket joined its room."""
    from partners.services import partner_suspend

    def read_then_suspend(user_ids: list[int]):
        identities = socket_identities(user_ids)
        if user_ids == [partner.pk] and not identities[partner.pk]["is_suspended"]:
            partner_suspend(partner_id=partner.pk, actor=staff)  # commits; its control races the join
        return identities

    async def scenario():
        set_identity_loader(read_then_suspend)
        try:
            p = Client(live_server_url, "/partner")
            try:
                await p.connect(token_for(partner.user))
            except socketio.exceptions.ConnectionError:
                # Refused outright (the re-read after joining saw the suspension): also right.
                assert p.connect_error["data"]["code"] == "FORBIDDEN", p.connect_error
            else:
                await wait_until(lambda: not p.sio.connected, what="racing suspension caught")
        finally:
            set_identity_loader(socket_identities)

    run(scenario())
    assert load_identity(partner.pk)["is_suspended"]


def test_suspended_partner_services_refuse(partner, customer, service, staff):
    from config.errors import Forbidden
    from partners.services import partner_set_availability, partner_suspend

    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED, service=service)
    partner_suspend(partner_id=partner.pk, actor=staff)
    with pytest.raises(Forbidden):
        booking_services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    with pytest.raises(Forbidden):
        partner_set_availability(partner_id=partner.pk, available=True)
    booking.refresh_from_db()
    assert booking.status == S.PENDING and booking.partner_id is None  # the offer was withdrawn (contract 8.2)


def test_lenient_inputs_are_refused(live_server_url, customer, other_customer, partner, service):
    theirs = BookingFactory(customer=other_customer, service=service)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        for bad in (1, 0, "true", None, [True]):
            assert refusal(await p.call("availability:update", {"available": bad})) == "VALIDATION_ERROR"
        assert (await p.call("availability:update", {"available": False}))["available"] is False
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        assert refusal(await c.call("booking:untrack", UNKNOWN_BOOKING)) == "NOT_FOUND"
        assert refusal(await c.call("booking:untrack", str(theirs.pk))) == "FORBIDDEN"
        await p.close()
        await c.close()

    run(scenario())


def test_finished_booking_room_is_closed_even_for_a_stale_relay(live_server_url, customer, partner, service):
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ASSIGNED)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        await c.call("booking:track", str(booking.pk))
        await p.call("booking:accept", str(booking.pk))
        assert (await p.call("location:update", {"latitude": 28.6, "longitude": 77.2}))["relayed"] == 1
        await c.wait_for("partner:location_update")
        await p.call("booking:status_update", {"bookingId": str(booking.pk), "status": "IN_PROGRESS"})
        await p.call("booking:status_update", {"bookingId": str(booking.pk), "status": "COMPLETED"})
        await c.wait_for("booking:status_updated", where=lambda e: e["status"] == "COMPLETED")
        room = rooms.booking(booking.pk)
        await wait_until(lambda: not list(sio.manager.get_participants(rooms.CUSTOMER, room)), what="room closed")
        # Even a relay list gone stale (forced here) reaches nobody now.
        (sid,) = [s for s, _ in sio.manager.get_participants(rooms.PARTNER, rooms.user(partner.pk))]
        (await sio.get_session(sid, namespace=rooms.PARTNER))["bookings"] = [(str(booking.pk), 28.6, 77.2)]
        before = len(c.events["partner:location_update"])
        await p.call("location:update", {"latitude": 28.7, "longitude": 77.3})  # relayed to a room nobody is in
        # and tracking it again does not rejoin a finished booking's room; its answer is also the
        # barrier: a relay queued for this socket before it would have arrived first
        ack = await c.call("booking:track", str(booking.pk))
        assert len(c.events["partner:location_update"]) == before
        assert ack["booking"]["status"] == "COMPLETED"
        assert not list(sio.manager.get_participants(rooms.CUSTOMER, room))
        await p.close()
        await c.close()

    run(scenario())


def test_relay_list_is_read_after_joining(live_server_url, customer, partner, service):
    """The relay list comes from the database after the socket is in its user room, under the partner's lock."""
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        (sid,) = [s for s, _ in sio.manager.get_participants(rooms.PARTNER, rooms.user(partner.pk))]
        session = await sio.get_session(sid, namespace=rooms.PARTNER)
        relay = [(str(booking.pk), booking.latitude, booking.longitude)]
        await wait_until(lambda: session.get("bookings") == relay, what="relay list read")
        # A cancel from another door (REST, admin) reaches the session through the control.
        await sync_to_async(booking_services.booking_cancel)(booking_id=booking.pk, actor=customer, reason="x")
        await wait_until(lambda: session.get("bookings") == [], what="relay list emptied")
        await p.close()

    run(scenario())


def test_a_socket_halfway_out_stops_no_safety_net(live_server_url, customer, partner, service):
    """A socket whose Engine.IO session went while python-socketio's disconnect still runs is in
    its rooms without a session: the relay reconcile and the access recheck skip it and go on
    for every other socket (it once stopped both, for the whole process, every period)."""
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    relay = [(str(booking.pk), booking.latitude, booking.longitude)]

    async def scenario():
        staying = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        leaving = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        sids = [s for s, _ in sio.manager.get_participants(rooms.PARTNER, rooms.user(partner.pk))]
        sessions = {sid: await sio.get_session(sid, namespace=rooms.PARTNER) for sid in sids}
        await wait_until(lambda: all(s.get("bookings") == relay for s in sessions.values()), what="relay lists read")
        eio_sids = {sio.manager.eio_sid_from_sid(sid, rooms.PARTNER): sid for sid in sids}
        gone_eio, gone_sid = next((e, s) for e, s in eio_sids.items() if e != sorted(eio_sids)[0])
        kept_sid = next(s for s in sids if s != gone_sid)
        sessions[kept_sid]["bookings"] = []  # stale: the reconcile must put it right
        socket = sio.eio.sockets.pop(gone_eio)  # the state a disconnect passes through
        try:
            await reconcile_relays(sio.manager)
            await recheck_all(sio.manager)
            identity = await sync_to_async(load_identity)(partner.user.pk)
            await sio.namespace_handlers[rooms.PARTNER].recheck(partner.user.pk, {**identity, "first_name": "Patricia"})
        finally:
            sio.eio.sockets[gone_eio] = socket
        assert sessions[kept_sid]["bookings"] == relay
        assert sessions[gone_sid]["bookings"] == relay  # untouched, not an error
        assert sessions[kept_sid]["first_name"] == "Patricia"  # the access change reached the one that stays
        await leaving.close()
        await staying.close()

    run(scenario())


def test_a_flood_of_unknown_or_refused_packets_is_rate_limited(live_server_url, customer, settings, caplog):
    """Refusals are not free: unknown names and malformed packets count against the user's default limit."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "default": (5, 3600.0)}
    caplog.set_level(logging.INFO, logger="config.realtime.outcomes")

    async def scenario():
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        codes = []
        for ack_id in range(1, 9):  # past the limit, three answers (tests/realtime/test_held.py: then fewer)
            packet = '["no:such:event", {}]' if ack_id % 2 else '["disconnect"]'
            await raw.send(f"2/customer,{ack_id}{packet}")
            codes.append(refusal(await raw.ack(ack_id)))
            # With Redis, a share of the limit is leased in the background; test_limits covers a late lease.
            await wait_until(lambda: not limiter._tasks, what="the rate limiter's lease")
        assert codes[:5] == ["VALIDATION_ERROR"] * 5 and set(codes[5:]) == {"RATE_LIMITED"}, codes
        assert raw.open
        await raw.close()

    run(scenario())
    logged = [r.code for r in caplog.records if r.name == "config.realtime.outcomes"]
    assert logged == ["VALIDATION_ERROR"] * 5  # the rate-limited ones are counted, not logged


def test_one_spelling_per_event_and_one_answer_with_or_without_an_ack(live_server_url, partner, customer, service):
    """Aliases that reached the same handler under another rate limit, and extra arguments, are refused alike."""
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ASSIGNED)

    async def scenario() -> None:
        raw = await RawSocket(live_server_url, "/partner").connect(token_for(partner.user))
        for alias in ("booking:status:update", "booking_status:update", "message:mark:read", "booking_accept"):
            ack = await raw.call(alias, {"bookingId": str(booking.pk), "status": "PARTNER_EN_ROUTE"})
            assert ack["ok"] is False and ack["error"]["code"] == "VALIDATION_ERROR", (alias, ack)
            assert "unknown event" in ack["error"]["message"]
        packet = json.dumps(["booking:accept", str(booking.pk), "extra"])
        await raw.send("2/partner,9" + packet)
        with_ack = await raw.ack(9)
        await raw.send("2/partner," + packet)
        without_ack = await raw.next(lambda f: f.startswith('42/partner,["error"'))
        assert with_ack["error"] == {"code": "VALIDATION_ERROR", "message": "an event carries one payload"}
        assert json.loads(without_ack[len("42/partner,") :])[1]["message"] == "an event carries one payload"
        await raw.close()

    run(scenario())
    booking.refresh_from_db()
    assert booking.status == S.PARTNER_ASSIGNED  # neither was taken for an accept
