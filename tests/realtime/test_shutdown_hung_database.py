"""A stop ends within ``SHUTDOWN_TIMEOUT`` when the database hangs (contract 10.2).

PostgreSQL that does not answer (every process of its cluster paused with SIGSTOP: no RST, as a
hung server or a partition) while a partner's location is buffered and they are recorded online:
the shutdown hooks' writes, the partner's disconnect and the server's own wait for its
connections would each wait on it. The stop has one deadline; what it could not write is one
warning each, naming where it goes.
"""

import contextlib
import os
import subprocess
import sys

import aiohttp
import psycopg
import pytest

from tests.live import Client, ServerProcess, paused_postgres, run, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_faults import own_postgres  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SHUTDOWN_TIMEOUT = 6  # seconds: uvicorn's --timeout-graceful-shutdown too (whole seconds)
MARGIN = 1.5  # the interpreter's exit after the stop, on two shared cores
PARTNER = """
from django.contrib.auth import get_user_model
from partners.models import Partner
user = get_user_model().objects.create_user("hung-partner", password="tangerine-kettle-42")
Partner.objects.create(user=user, name="Hung", phone="1", kyc_status="APPROVED")
"""


def test_a_stop_with_the_database_hung_ends_within_shutdown_timeout(own_postgres, cluster_env):  # noqa: F811
    env = {
        **cluster_env,
        "DATABASE_URL": own_postgres["url"],
        "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        "LOCATION_FLUSH_INTERVAL": "600",  # the location stays buffered until the stop
    }
    for args in (["migrate", "--noinput"], ["shell", "-c", PARTNER]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
    server = ServerProcess(env).start()
    timing: dict[str, float] = {}

    def online() -> bool:
        with psycopg.connect(own_postgres["url"]) as conn:
            row = conn.execute("SELECT online_until > now() FROM partners_partner").fetchone()
        return bool(row and row[0])

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            body = {"username": "hung-partner", "password": "tangerine-kettle-42"}
            async with http.post(server.url + "/api/auth/token/", json=body) as response:
                token = (await response.json())["access"]
        partner = await Client(server.url, "/partner").connect(token)
        await wait_until(lambda: online(), what="partner online")
        ack = await partner.call("location:update", {"latitude": 12.25, "longitude": 77.75})
        assert ack["ok"]
        with paused_postgres(own_postgres):
            timing["exit"] = await server.terminated_in(4 * SHUTDOWN_TIMEOUT)
        with contextlib.suppress(Exception):
            await partner.close()

    try:
        run(scenario(), timeout=120)
    finally:
        server.stop()
    output = server.output()
    print(f"SIGTERM with the database hung: exited after {timing['exit']:.2f} s")
    assert timing["exit"] < SHUTDOWN_TIMEOUT + MARGIN, output[-3000:]
    assert "timeout graceful shutdown exceeded" not in output, output[-3000:]
    assert output.count("1 partners' last locations and 0 trace points not written") == 1, output[-3000:]
    assert output.count("1 users not recorded offline") == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
