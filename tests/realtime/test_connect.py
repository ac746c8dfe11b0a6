"""Connect refusals, token expiry and refresh, kicks, room cleanup, both transports."""

import asyncio
import time

import pytest
import socketio
from channels.db import database_sync_to_async as sync_to_async
from django.db import OperationalError

from config import rooms
from config.realtime import presence as module
from config.realtime.server import sio
from partners.accounts import user_deactivate
from partners.services import partner_suspend
from tests.factories import PartnerFactory, UserFactory
from tests.live import UNKNOWN_BOOKING, Client, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


async def refused(url: str, namespace: str, token: str | None = None, headers: dict | None = None) -> dict:
    client = Client(url, namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(token, headers=headers)
    await client.close()
    return client.connect_error


def test_connect_refusals_carry_the_contract_codes(live_server_url, customer, staff):
    suspended = PartnerFactory(is_suspended=True)
    inactive = UserFactory(is_active=False)

    async def scenario():
        err = await refused(live_server_url, "/customer")
        assert err["data"] == {"code": "AUTH_REQUIRED"}
        err = await refused(live_server_url, "/customer", "garbage")
        assert err["data"] == {"code": "TOKEN_INVALID"}
        err = await refused(live_server_url, "/customer", token_for(customer, lifetime=-10))
        assert err["data"] == {"code": "TOKEN_EXPIRED"} and "expired" in err["message"]
        err = await refused(live_server_url, "/partner", token_for(customer))
        assert err["data"] == {"code": "FORBIDDEN"}
        err = await refused(live_server_url, "/admin", token_for(customer))
        assert err["data"] == {"code": "FORBIDDEN"}
        err = await refused(live_server_url, "/partner", token_for(suspended.user))
        assert err["data"] == {"code": "FORBIDDEN"} and "suspended" in err["message"]
        err = await refused(live_server_url, "/customer", token_for(inactive))
        assert err["data"] == {"code": "FORBIDDEN"}
        # a partner may book as a customer; staff may use /admin; a header works like auth.token
        ok = await Client(live_server_url, "/admin").connect(headers={"Authorization": f"Bearer {token_for(staff)}"})
        assert ok.sio.connected
        await ok.close()

    run(scenario())


@pytest.mark.parametrize("transports", [["polling"], ["polling", "websocket"], ["websocket"]])
def test_both_transports(live_server_url, customer, transports):
    async def scenario():
        c = await Client(live_server_url, "/customer", transports=transports).connect(token_for(customer))
        ack = await c.call("booking:track", "00000000-0000-0000-0000-000000000000")
        assert ack["error"]["code"] == "NOT_FOUND"
        await c.close()

    run(scenario())


def test_token_expiry_disconnects_unless_refreshed(live_server_url, customer):
    # Both sockets' first tokens end in the same second: the one not refreshed would go with the other.
    expires_at = int(time.time()) + 2

    async def scenario():
        short = await Client(live_server_url, "/customer").connect(token_for(customer, expires_at=expires_at))
        refreshed = await Client(live_server_url, "/customer").connect(token_for(customer, expires_at=expires_at))
        ack = await refreshed.call("auth:refresh", {"token": token_for(customer, lifetime=60)})
        assert ack["ok"] is True and ack["expiresAt"].endswith("Z")
        bad = await refreshed.call("auth:refresh", {"token": "nope"})
        assert bad["ok"] is False and bad["error"]["code"] == "VALIDATION_ERROR"
        other = await refreshed.call("auth:refresh", {"token": token_for(await sync_to_async(UserFactory)())})
        assert other["error"]["code"] == "FORBIDDEN"
        [err] = await short.wait_for("error", timeout=5, where=lambda e: e["code"] == "TOKEN_EXPIRED")
        assert err["code"] == "TOKEN_EXPIRED"
        await wait_until(lambda: not short.sio.connected, what="expired socket to be disconnected")
        # A round trip after the shared deadline: an expiry of its own would have come before the answer.
        ack = await refreshed.call("booking:track", UNKNOWN_BOOKING)
        assert ack["error"]["code"] == "NOT_FOUND" and refreshed.sio.connected
        assert "error" not in refreshed.events or all(e["code"] != "TOKEN_EXPIRED" for e in refreshed.events["error"])
        await refreshed.close()

    run(scenario())


def test_suspension_and_deactivation_kick_connected_sockets(live_server_url, partner, staff, customer):
    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        await sync_to_async(partner_suspend)(partner_id=partner.pk, actor=staff)
        [err] = await p.wait_for("error")
        assert err["code"] == "FORBIDDEN" and "suspended" in err["message"]
        await wait_until(lambda: not p.sio.connected, what="suspended partner to be kicked")
        await sync_to_async(user_deactivate)(user_id=customer.pk, actor=staff)
        await wait_until(lambda: not c.sio.connected, what="deactivated customer to be kicked")

    run(scenario())


def test_rooms_and_session_state_are_cleaned_on_disconnect(live_server_url, customer, partner, service):
    from tests.factories import BookingFactory

    booking = BookingFactory(customer=customer, partner=partner, status="PARTNER_ACCEPTED", service=service)
    room = rooms.booking(booking.pk)

    def members(namespace, name):
        return [sid for sid, _ in sio.manager.get_participants(namespace, name)]

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        await c.call("booking:track", str(booking.pk))
        assert len(members("/customer", room)) == 1
        await c.call("booking:untrack", str(booking.pk))
        assert members("/customer", room) == []
        await c.call("booking:track", str(booking.pk))
        await c.emit("typing:start", str(partner.pk))
        await c.close()
        await wait_until(lambda: not members("/customer", room), what="room cleanup")
        assert members("/customer", rooms.user(customer.pk)) == []

        await wait_until(lambda: customer.pk not in module.presence.local["/customer"], what="presence cleanup")
        assert room not in sio.manager.rooms.get("/customer", {})

    run(scenario())


def test_presence_counts_sockets_and_remote_hosts(settings):
    presence = module.Presence()
    assert presence.add("/customer", 7) is True and presence.add("/partner", 7) is True
    assert presence.add("/customer", 7) is False
    assert presence.is_online(7) and not presence.is_online(8)
    presence.receive("other-host", {"/partner": [8]})
    assert presence.is_online(8) and presence.online("/partner") == {7, 8}
    assert presence.remove("/customer", 7) is False and presence.remove("/customer", 7) is True
    presence.remote["other-host"] = (0.0, presence.remote["other-host"][1])  # expired: the host died
    assert not presence.is_online(8) and presence.online("/partner") == {7}


def test_a_user_whose_last_socket_went_before_the_write_is_not_recorded_online(monkeypatch):
    """A connect refused after it counted (a part's read not answered, ``BaseNamespace._connect``)
    leaves its user out of the next online write: were it kept, a partner who never connected
    would be offered jobs until ``PRESENCE_TTL``."""
    monkeypatch.setitem(module._keepers, "/kept", lambda user_ids, online: None)
    presence = module.Presence()
    for user_id in (7, 8, 8):
        presence.add("/kept", user_id)
    presence.remove("/kept", 7)
    presence.remove("/kept", 8)
    assert presence.new["/kept"] == {8}


def test_a_user_whose_last_socket_went_is_written_offline_unless_back(monkeypatch):
    """``Presence.remove`` (a disconnect, a refused connect): the user's last socket here queues them
    offline, their online write sent or not (the database may hold them online from a socket gone and
    back within the second); one with another socket stays online; one back is taken out of the queue."""
    monkeypatch.setitem(module._keepers, "/kept", lambda user_ids, online: None)
    presence = module.Presence()
    for user_id in (7, 8, 9, 9):
        presence.add("/kept", user_id)
    presence.new["/kept"].clear()  # the heartbeat wrote them online
    presence.add("/kept", 10)  # not written yet
    for user_id in (7, 8, 9, 10):
        presence.remove("/kept", user_id)
    assert presence.offline["/kept"] == {7, 8, 10} and not presence.new["/kept"]
    presence.add("/kept", 8)  # back before the offline write
    assert presence.offline["/kept"] == {7, 10} and presence.new["/kept"] == {8}


def test_a_refused_users_offline_write_that_fails_is_tried_again(monkeypatch, settings):
    """The refusal's database trouble is likely to fail the offline write too (a part's read was not
    answered): kept until written, not dropped with the failure (online until ``PRESENCE_TTL``)."""
    settings.PRESENCE_HEARTBEAT = 0.05
    offline: list[list[int]] = []

    def keeper(user_ids, online):
        if not online:
            offline.append(sorted(user_ids))
            if len(offline) == 1:
                raise OperationalError("the database went away")

    class Manager:
        async def dispatch(self, message):
            pass

    monkeypatch.setattr(module, "_keepers", {"/kept": keeper})
    monkeypatch.setattr(module, "presence", module.Presence())
    module.presence.offline["/kept"].add(7)

    async def scenario():
        task = asyncio.ensure_future(module.heartbeat(Manager()))
        try:
            deadline = asyncio.get_running_loop().time() + 3
            # The keeper runs in a thread: the set is let go once it returned, after it counted.
            while len(offline) < 2 or module.presence.offline["/kept"]:
                assert asyncio.get_running_loop().time() < deadline, offline
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    asyncio.run(scenario())
    assert offline == [[7], [7]] and not module.presence.offline["/kept"]
