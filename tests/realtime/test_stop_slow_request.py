"""A stop whose server waits for a slow HTTP request (contract 10.2, docs/deployment.md "Health,
shutdown and failures"): uvicorn's wait for its connections runs to the end of its share, past the
database cutoff. The database answered all along, so the cutoff abandons nothing: the stop's
second half still writes what came after the first (a partner's last locations), and its warning
names the request, not the database."""

import asyncio
import socket

import pytest

from partners.models import Partner
from tests.factories import PartnerFactory
from tests.live import Client, ServerProcess, run, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SHUTDOWN_TIMEOUT = 3  # seconds (the least a server starts with); uvicorn's --timeout-graceful-shutdown too
MARGIN = 1.5  # the interpreter's exit after the stop, on two shared cores


def slow_request(port: int) -> socket.socket:
    """A POST whose body never finishes arriving (a client on a slow uplink): Django reads it, and
    uvicorn waits for the request at a stop until its share of the deadline ends."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.sendall(
        b"POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    return conn


# uvicorn's, for the request it cancels when its wait ends: an ERROR line and the request's traceback
@pytest.mark.server_errors(r"timeout graceful shutdown exceeded", r"Exception in ASGI application", r"^Traceback")
def test_a_slow_request_at_a_stop_leaves_the_database_to_the_second_half(cluster_env, service):  # noqa: F811
    partner = PartnerFactory(services=[service], kyc_status="APPROVED", online_until=None)
    env = {**cluster_env, "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "LOCATION_FLUSH_INTERVAL": "600"}
    server = ServerProcess(env).start()
    acked: list[float] = []
    timing: dict[str, float] = {}

    async def send_locations(client: Client) -> None:
        """Locations every 20 ms until the server closes the socket: some arrive after the first
        half's flush, before uvicorn closes the websockets, for the second half to write."""
        latitude = 10.0
        while True:
            latitude += 0.001
            try:
                ack = await client.call("location:update", {"latitude": latitude, "longitude": 77.75}, timeout=2)
            except Exception:
                return
            if not isinstance(ack, dict) or not ack.get("ok"):
                return
            acked.append(latitude)
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        client = await Client(server.url, "/partner").connect(token_for(partner.user))
        request = slow_request(server.port)
        sending = asyncio.ensure_future(send_locations(client))
        await asyncio.sleep(0.3)
        timing["exit"] = await server.terminated_in(4 * SHUTDOWN_TIMEOUT)
        await asyncio.wait_for(sending, 5)
        request.close()
        await client.close()

    try:
        run(scenario(), timeout=60)
    finally:
        server.stop()
    output = server.output()
    assert timing["exit"] < SHUTDOWN_TIMEOUT + MARGIN, output[-3000:]
    assert acked, output[-3000:]
    stored = Partner.objects.get(pk=partner.pk).last_latitude
    assert stored == pytest.approx(acked[-1]), (stored, acked[-1], output[-3000:])
    assert "the database did not answer" not in output, output[-3000:]
    assert "requests were still running at the database's cutoff" in output, output[-3000:]
    # the one traceback is uvicorn's, of the request it cancelled
    assert output.count("Traceback") == 1, output[-3000:]
    assert "CancelledError: Task cancelled, timeout graceful shutdown exceeded" in output, output[-3000:]
