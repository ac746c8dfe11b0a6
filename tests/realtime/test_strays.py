"""Packets for a namespace the session is not connected to (never joined, left, or whose socket the
server disconnected) are dropped unanswered: one INFO line for the session, not python-socketio's
WARNING a packet ("None is not connected to namespace ...", "Unknown callback received"), and at the
tenth the session is closed and counted (``strays``). Contract 10.1: nothing a client sends makes the
server write a line a packet; a client that keeps going is disconnected.

python-socketio's logger is set to show its warnings here, as an operator asking for them would (left
alone, python-socketio leaves it at ERROR): without the fix, each packet below is a WARNING line."""

import asyncio
import json
import logging
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from config.realtime.limits import limiter
from config.realtime.server import REFUSALS_PER_SESSION
from tests.live import RawSocket, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def bound_count(url: str, bound: str) -> float:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    found = re.search(rf'^homeservices_connection_bounds_total\{{bound="{bound}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def logged(caplog: Any) -> Iterator[Any]:
    """python-socketio's warnings and ours, from the in-process server."""
    with caplog.at_level(logging.INFO, logger="socketio.server"):
        yield caplog


def library_warnings(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("socketio") and r.levelno >= logging.WARNING]


def stray_lines(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "config.realtime.strays"]


def answers(raw: RawSocket, namespace: str) -> list[str]:
    """Frames the server sent in ``namespace`` besides its CONNECT and DISCONNECT."""
    return [f for f in raw.frames if f.startswith((f"42{namespace},", f"43{namespace},"))]


def test_packets_for_a_namespace_never_joined_or_left_are_dropped_logged_once_and_closed_at_the_tenth(
    live_server_url, customer, logged
):
    before = bound_count(live_server_url, "strays")

    async def scenario() -> None:
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        for ack_id in (1, 2):  # never joined: a namespace that exists, and one that does not
            await raw.send(f'2/partner,{ack_id}["location:update",{{"latitude":1,"longitude":2}}]')
            await raw.send(f'2/nope,{ack_id}["anything",{{}}]')
        assert (await raw.call("no:such", {}))["error"]["code"] == "VALIDATION_ERROR"  # still served, in order
        await raw.send("1/customer,")  # left
        for ack_id in range(3, 7):
            await raw.send(f'2/customer,{ack_id}["booking:track",{{}}]')
        await raw.send("3/customer,1[]")  # an ack nobody waits for, ids 1 and 0: the ninth stray
        assert raw.open
        await raw.send("3/customer,0[]")  # the tenth
        await wait_until(lambda: not raw.open, what="the session closed at the tenth stray")
        assert answers(raw, "/partner") == answers(raw, "/nope") == answers(raw, "/customer") == []
        await raw.close()

    run(scenario())
    assert library_warnings(logged) == []
    (line,) = stray_lines(logged)
    assert line.levelname == "INFO" and "an event for /partner" in line.getMessage(), line.getMessage()
    assert bound_count(live_server_url, "strays") == before + 1


def test_a_flood_that_keeps_sending_after_the_server_disconnected_it_is_closed_with_one_line(
    live_server_url, customer, settings, logged
):
    """The hostile helper's flood of over-long event names: past twice its limit the server disconnects
    the socket (``rate_flood``); what the client sends after is a stray, answered nothing."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "default": (5, 3600.0)}
    flood = "2/customer," + json.dumps(["x" * 200, {}])
    before = bound_count(live_server_url, "strays")

    def disconnected(raw: RawSocket) -> bool:
        return any(f.startswith("41/customer") for f in raw.frames)

    async def scenario() -> None:
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        for _ in range(30):  # twice the limit (ten): refused, then disconnected
            await raw.send(flood)
            await asyncio.sleep(0.05)
            await wait_until(lambda: not limiter._tasks, what="the rate limiter's lease")
            if disconnected(raw):
                break
        await raw.next(lambda f: f.startswith("41/customer"))
        answered = len(answers(raw, "/customer"))
        for _ in range(REFUSALS_PER_SESSION * 5):  # keeps going: the session is closed at the tenth
            if not raw.open:
                break
            await raw.send(flood)
        await wait_until(lambda: not raw.open, what="the session closed")
        assert len(answers(raw, "/customer")) == answered  # nothing answered after the disconnect
        await raw.close()

    run(scenario())
    assert library_warnings(logged) == []
    assert len(stray_lines(logged)) == 1
    assert bound_count(live_server_url, "strays") == before + 1


def test_a_session_that_joins_again_starts_its_strays_anew(live_server_url, customer, logged):
    """The packets in flight when a socket left (or the server disconnected it) count until the
    session joins a namespace again: a long-lived connection whose sockets come and go over hours
    (a token not refreshed, an access change) is not closed, with its other sockets and their
    recovery, at the tenth packet of its lifetime that happened to be in flight."""

    async def scenario() -> None:
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        for _ in range(2):  # two comings and goings, each with a few packets in flight
            await raw.send("1/customer,")
            for ack_id in range(1, REFUSALS_PER_SESSION // 2 + 1):
                await raw.send(f'2/customer,{ack_id}["booking:track",{{}}]')
            await raw.send(f"0/customer,{json.dumps({'token': token_for(customer)})}")
            await raw.next(lambda f: f.startswith("40/customer,"))
        assert raw.open
        assert (await raw.call("no:such", {}))["error"]["code"] == "VALIDATION_ERROR"  # still served
        await raw.send("1/customer,")  # the bound still holds within one absence
        for ack_id in range(1, REFUSALS_PER_SESSION + 1):
            await raw.send(f'2/customer,{ack_id}["booking:track",{{}}]')
        await wait_until(lambda: not raw.open, what="the session closed at the tenth stray of one absence")
        await raw.close()

    run(scenario())
    assert library_warnings(logged) == []
    assert len(stray_lines(logged)) == 3  # once a session and after each joining again
