"""Rights follow the user into rooms (contract 9.2), and connects are counted.

A booking room is membership in a right: staff who track another customer's booking lose
the room when they lose staff rights, whether the change was announced (a save) or not
(``QuerySet.update``, a lost message: the periodic recheck).
"""

import asyncio

import pytest
import socketio
from channels.db import database_sync_to_async as sync_to_async

from bookings.models import BookingStatus as S
from config import rooms
from config.realtime.server import sio
from tests.factories import BookingFactory, StaffFactory, UserFactory
from tests.live import Client, ServerProcess, run, server_env, socket_barrier, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
HERE = {"latitude": 28.62, "longitude": 77.21}


async def watchers(url: str, staff, customer, partner, booking) -> tuple[Client, Client, Client]:
    """Staff and the customer tracking ``booking``; its partner on /partner."""
    watcher = await Client(url, rooms.CUSTOMER).connect(token_for(staff))
    owner = await Client(url, rooms.CUSTOMER).connect(token_for(customer))
    for client in (watcher, owner):
        assert (await client.call("booking:track", str(booking.pk)))["ok"] is True
    moving = await Client(url, rooms.PARTNER).connect(token_for(partner.user))
    return watcher, owner, moving


async def hears_no_more_locations(watcher: Client, owner: Client, moving: Client) -> None:
    """A location after the room is gone reaches the customer (the barrier) and not the watcher."""
    before = len(watcher.events.get("partner:location_update", []))
    seen = len(owner.events.get("partner:location_update", []))
    assert (await moving.call("location:update", HERE))["ok"] is True
    await owner.wait_for("partner:location_update", count=seen + 1)
    await socket_barrier(watcher)
    assert len(watcher.events.get("partner:location_update", [])) == before
    assert watcher.sio.connected  # still a customer: only the staff right went


def test_demoted_staff_leave_the_booking_rooms_they_joined_as_staff(live_server_url, customer, partner, service):
    staff = StaffFactory()
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)

    async def scenario() -> None:
        watcher, owner, moving = await watchers(live_server_url, staff, customer, partner, booking)
        await moving.call("location:update", HERE)
        await watcher.wait_for("partner:location_update")  # it was in the room
        staff.is_staff = False
        await sync_to_async(staff.save)()  # announced: every process rechecks the user's sockets
        sid = watcher.sio.get_sid(rooms.CUSTOMER)
        room = rooms.booking(booking.pk)
        await wait_until(lambda: room not in sio.manager.get_rooms(sid, rooms.CUSTOMER), 5, "room left")
        await hears_no_more_locations(watcher, owner, moving)
        for client in (watcher, owner, moving):
            await client.close()

    run(scenario())


def test_the_periodic_recheck_catches_a_change_nobody_announced(customer, partner, service):
    """``QuerySet.update`` sends no signal; within ACCESS_RECHECK_SECONDS the room goes all the same."""
    staff = StaffFactory()
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)
    server = ServerProcess(server_env(ACCESS_RECHECK_SECONDS="1")).start()

    async def scenario() -> None:
        watcher, owner, moving = await watchers(server.url, staff, customer, partner, booking)
        await moving.call("location:update", HERE)
        await watcher.wait_for("partner:location_update")
        await sync_to_async(type(staff).objects.filter(pk=staff.pk).update)(is_staff=False)
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # each location is a probe: once one reaches the owner only, the room is gone
            heard = len(watcher.events.get("partner:location_update", []))
            seen = len(owner.events.get("partner:location_update", []))
            await moving.call("location:update", HERE)
            await owner.wait_for("partner:location_update", count=seen + 1)
            await socket_barrier(watcher)  # the watcher's copy, if any, came before this answer
            if len(watcher.events.get("partner:location_update", [])) == heard:
                break
            assert asyncio.get_running_loop().time() < deadline, "the periodic recheck did not remove the room"
            await asyncio.sleep(0.2)  # pacing the probes under the location limit, not a wait for an event
        await hears_no_more_locations(watcher, owner, moving)
        for client in (watcher, owner, moving):
            await client.close()

    try:
        run(scenario())
    finally:
        server.stop()
    assert "Traceback" not in server.output()


def test_connects_are_limited_per_user_and_per_address(live_server_url, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "connect": (3, 60.0), "connect:address": (4, 60.0)}
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the clients' X-Forwarded-For is the proxy's word
    looping = UserFactory()
    crowd = [UserFactory() for _ in range(5)]

    async def attempt(user, address: str) -> dict | None:
        client = Client(live_server_url, rooms.CUSTOMER)
        try:
            await client.connect(token_for(user), headers={"X-Forwarded-For": address})
        except socketio.exceptions.ConnectionError:
            return client.connect_error
        await client.close()
        return None

    async def scenario() -> None:
        for _ in range(3):
            assert await attempt(looping, "198.51.100.7") is None
        refused = await attempt(looping, "198.51.100.8")  # another address: the user's own limit
        assert refused["data"]["code"] == "RATE_LIMITED" and refused["data"]["retryAfter"] >= 1
        outcomes = [await attempt(user, "203.0.113.9") for user in crowd]
        assert outcomes[:4] == [None] * 4  # one address, many users: its own limit
        assert outcomes[4]["data"]["code"] == "RATE_LIMITED"

    run(scenario())
