"""A hung database holds nothing back on the control path (contract 10): an ``access_changed``
arriving while PostgreSQL does not answer holds only its user's sockets.

Two server processes on a PostgreSQL of their own, every process of it then paused with SIGSTOP
(no RST: a hung server or a partition). Another process announces a user's access change to A;
a partner on B moves; the customer on A following the partner's job gets the location at once
(the broker listener on A does not wait for the user's read), and the user, whose rights cannot
be read, is refused ``UNAVAILABLE`` within the batched reader's timeout (fail-closed).
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import pytest

from config.realtime.server import sio
from tests.live import Client, paused_postgres, run, server_processes, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_faults import own_postgres  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SETUP = """
import json
from bookings.models import BookingStatus as S
from tests.factories import BookingFactory, PartnerFactory, ServiceFactory, UserFactory
service = ServiceFactory()
partner = PartnerFactory(user__username="hold-partner", services=[service])
customer = UserFactory(username="hold-customer")
other = UserFactory(username="hold-other")
booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_EN_ROUTE)
print(json.dumps({"booking": str(booking.pk), "other": other.pk}))
"""
FAR = {"latitude": 28.70, "longitude": 77.30}  # 10 km from the booking: no arrival to record


async def token(url: str, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        body = {"username": username, "password": "password123"}  # the factories' password
        async with http.post(url + "/api/auth/token/", json=body) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["access"]


def test_an_access_change_while_the_database_hangs_holds_no_other_room(own_postgres, cluster_env):  # noqa: F811
    if sio.manager.is_local_only:
        pytest.skip("another process's messages need Redis (set REDIS_URL); .ci/run runs them")
    env = {**cluster_env, "DATABASE_URL": own_postgres["url"]}
    made = {}
    for args in (["migrate", "--noinput"], ["shell", "-c", SETUP]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        made = json.loads(done.stdout.strip().splitlines()[-1]) if args[0] == "shell" else made
    timing: dict[str, float] = {}

    with server_processes(env) as (a, b):

        async def scenario() -> None:
            customer = await Client(a.url, "/customer").connect(await token(a.url, "hold-customer"))
            other = await Client(a.url, "/customer").connect(await token(a.url, "hold-other"))
            partner = await Client(b.url, "/partner").connect(await token(a.url, "hold-partner"))
            assert (await customer.call("booking:track", str(made["booking"])))["ok"] is True
            assert (await partner.call("location:update", FAR))["relayed"] == 1
            await customer.wait_for("partner:location_update")  # B to A through the broker
            with paused_postgres(own_postgres):
                await sio.manager.publish_external({"method": "access_changed", "user_id": str(made["other"])})
                await asyncio.sleep(0.5)  # A's listener has it: its read of the user hangs from now
                sent = time.monotonic()
                moved = {"latitude": 28.71, "longitude": 77.31}
                assert (await partner.call("location:update", moved))["relayed"] == 1  # B reads no database
                (_, location) = await customer.wait_for("partner:location_update", count=2, timeout=4)
                timing["relay"] = time.monotonic() - sent
                assert location["location"] == moved and location["bookingId"] == str(made["booking"])
                (err,) = await other.wait_for("error", timeout=12)
                timing["refused"] = time.monotonic() - sent
                assert err["code"] == "UNAVAILABLE" and err["event"] is None, err
                await wait_until(lambda: not other.sio.connected, 5, "the unreadable user's socket to be refused")
                assert customer.sio.connected and partner.sio.connected
            for client in (customer, partner):
                await client.close()

        run(scenario(), timeout=90)
    print(f"relay with the database hung: {timing['relay']:.3f} s; the user refused after {timing['refused']:.2f} s")
    assert timing["relay"] < 2, timing
