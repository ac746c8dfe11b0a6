"""Structured logs: one line per refused connect or failed event, no personal data from payloads."""

import json
import logging

import pytest
import socketio
from pythonjsonlogger.json import JsonFormatter

from tests.live import Client, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_failed_events_and_refused_connects_are_logged_without_payloads(live_server_url, customer, caplog):
    caplog.set_level(logging.INFO, logger="config.realtime.outcomes")

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        secret = {"recipientId": "999999999", "message": "call me on +91 98765 43210 at 12 Baker St"}
        assert (await c.call("message:send", secret))["error"]["code"] == "FORBIDDEN"
        await c.close()
        refused = Client(live_server_url, "/partner")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(token_for(customer))

    run(scenario())
    records = [r for r in caplog.records if r.name == "config.realtime.outcomes"]
    failed = [r for r in records if r.event == "message:send"]
    assert failed and failed[0].code == "FORBIDDEN" and failed[0].namespace == "/customer"
    assert failed[0].user_id == str(customer.pk) and failed[0].sid
    assert [r.code for r in records if r.event == "connect" and r.namespace == "/partner"] == ["FORBIDDEN"]
    text = "\n".join(r.getMessage() + json.dumps({k: str(v) for k, v in vars(r).items()}) for r in records)
    assert "98765" not in text and "Baker" not in text

    line = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s").format(failed[0])
    parsed = json.loads(line)
    assert {parsed[k] for k in ("namespace", "event", "code")} == {"/customer", "message:send", "FORBIDDEN"}


def test_a_websocket_connection_logs_nothing_at_info(live_server_url, customer, caplog):
    """Connections are counted by the metrics; uvicorn's per-connection lines are DEBUG."""
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")

    async def scenario():
        for _ in range(3):
            c = await Client(live_server_url, "/customer").connect(token_for(customer))
            await c.close()

    run(scenario())
    handshakes = [r for r in caplog.records if r.name == "uvicorn.error" and "WebSocket" in r.getMessage()]
    assert len(handshakes) >= 3  # they are still there for whoever asks for DEBUG
    assert {r.levelno for r in handshakes} == {logging.DEBUG}
