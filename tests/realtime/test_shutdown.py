"""A graceful stop that finishes (contract 10.2), whatever the clients' transports.

A real server process (uvicorn, as ``make serve`` runs it) with long-polling clients: one
signed-in partner polling as a client behind a proxy without websockets does, and one
anonymous Engine.IO session that opened and never reads again. SIGTERM must write what is
buffered, close both without waiting on them, and exit within ``SHUTDOWN_TIMEOUT``.
"""

import asyncio

import aiohttp
import pytest
from django.utils import timezone

from partners.models import Partner
from tests.factories import PartnerFactory
from tests.live import Client, ServerProcess, eventually, run, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

SHUTDOWN_TIMEOUT = 8  # seconds: uvicorn's --timeout-graceful-shutdown too (whole seconds)


async def open_and_never_read(url: str) -> str:
    """An Engine.IO long-polling session that asks for a namespace and then never polls: what the
    server queues for it (the CONNECT's answer, the CLOSE at the stop) is never read."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/socket.io/?EIO=4&transport=polling") as answer:
            text = await answer.text()
        sid = text.split('"sid":"')[1].split('"')[0]
        post = f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        async with http.post(post, data="40/customer,") as answer:
            assert answer.status == 200
    return sid


def test_sigterm_with_long_polling_clients_finishes_in_time_and_runs_the_hooks(cluster_env, service):  # noqa: F811
    partner = PartnerFactory(services=[service], kyc_status="APPROVED", online_until=None)
    # The location stays buffered until the stop writes it: no periodic flush comes first.
    env = {**cluster_env, "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "LOCATION_FLUSH_INTERVAL": "600"}
    server = ServerProcess(env).start()
    timing: dict[str, float] = {}

    async def scenario() -> None:
        polling = await Client(server.url, "/partner", transports=["polling"]).connect(token_for(partner.user))
        await asyncio.to_thread(
            eventually,
            lambda: Partner.objects.filter(pk=partner.pk, online_until__gt=timezone.now()).exists(),
            what="partner online",
        )
        ack = await polling.call("location:update", {"latitude": 12.25, "longitude": 77.75})
        assert ack["ok"]
        await open_and_never_read(server.url)
        await asyncio.sleep(0.5)  # the polling client's next GET is waiting on the server now
        timing["exit"] = await server.terminated_in(3 * SHUTDOWN_TIMEOUT)
        await polling.close()

    try:
        run(scenario(), timeout=60)
    finally:
        server.stop()
    output = server.output()
    print(f"SIGTERM with two long-polling sessions: exited after {timing['exit']:.2f} s")
    assert timing["exit"] < SHUTDOWN_TIMEOUT, output[-3000:]
    assert "did not finish" not in output and "timeout graceful shutdown exceeded" not in output
    assert "Traceback" not in output, output[-3000:]
    partner.refresh_from_db()
    assert (partner.last_latitude, partner.last_longitude) == (12.25, 77.75)  # the stop's hook wrote it
    assert partner.online_until is None  # presence withdrawn


def test_a_disconnect_whose_session_is_gone_is_not_an_error():
    """A stopping process may drop the Engine.IO session before python-socketio runs the namespace's
    disconnect handler: one INFO line, no ``KeyError: 'Session not found'`` traceback."""
    import logging

    import config.asgi  # noqa: F401 - registers the namespaces
    from config.realtime.server import sio

    class Records(logging.Handler):
        records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    seen = Records()
    log = logging.getLogger("config.realtime.namespace")  # it does not propagate: listen to it directly
    log.addHandler(seen)
    try:
        asyncio.run(sio.namespace_handlers["/customer"].on_disconnect("a-sid-nobody-has", "transport close"))
    finally:
        log.removeHandler(seen)
    [record] = [r for r in seen.records if "session was gone" in r.getMessage()]
    assert record.levelno == logging.INFO
