"""Nothing a closed connection owned is left behind (issue: memory under churn).

Every socket-scoped object is counted by type on the live server (same process). Before
the clients close, two young-generation collections promote everything they hold to the
oldest generation, as a long-lived connection's objects end up in production; after they
close, only young collections run again. Whatever is still there was kept alive by a
reference cycle that only a full collection (which the tuned collector runs seldom)
would free, or by bookkeeping that forgot to let go.
"""

import asyncio
import gc
import time
from collections import Counter

import pytest
from engineio.async_socket import AsyncSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

from bookings.models import BookingStatus as S
from config import rooms
from config.realtime import engine, environ
from config.realtime.limits import limiter
from config.realtime.presence import presence
from config.realtime.primitives import Flag, Mailbox
from config.realtime.server import sio
from config.realtime.websocket_protocol import WebSocketProtocol
from tests.factories import BookingFactory
from tests.live import Client, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SOCKET_SCOPED = (
    AsyncSocket,  # engineio's session
    engine.WebSocket,  # engineio's ASGI websocket
    environ.RequestBody,
    WebSocketsSansIOProtocol,  # uvicorn's (the product's subclass included)
    HttpToolsProtocol,
    ServerProtocol,  # websockets' state machine
    Mailbox,  # the connection's queues
    Flag,
)


def socket_objects() -> Counter:
    # issubclass on the type: isinstance on a dead weak proxy raises ReferenceError
    return Counter(type(o).__name__ for o in gc.get_objects() if issubclass(type(o), SOCKET_SCOPED))


def expiry_timers() -> int:
    """Token expiries still kept, and the timer still set for them (``token_lifetime.expiries``)."""
    from config.realtime.token_lifetime import expiries

    return len(expiries.live) + len(expiries.heap) + (expiries.timer is not None)


def test_closed_connections_leave_nothing_behind(live_server_url, customer, partner, service, settings):
    settings.RATE_LIMITS = {key: (1_000_000, 1.0) for key in settings.RATE_LIMITS}
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    rounds, per_round = 4, 15

    async def session_round() -> None:
        customers = [await Client(live_server_url, "/customer").connect(token_for(customer)) for _ in range(per_round)]
        partners = [await Client(live_server_url, "/partner").connect(token_for(partner.user)) for _ in range(3)]
        for c in customers:
            assert (await c.call("booking:track", str(booking.pk)))["ok"]
        for p in partners:
            await p.call("location:update", {"latitude": 1, "longitude": 2})
            await p.call("typing:start", str(customer.pk))  # leaves a typing timer to clean up
        await customers[0].call("message:send", {"recipientId": str(partner.pk), "message": "hi"})
        gc.collect(1)
        gc.collect(1)  # everything the connections hold is now in the oldest generation
        for client in customers + partners:
            await client.close()

    async def scenario() -> None:
        gc.collect()
        before = socket_objects()
        for _ in range(rounds):
            await session_round()
        # engineio lets a closed session go at its next ping (PING_INTERVAL, 2 s in tests): its ping
        # task holds it until then. Anything still there after that, young collections included, leaked.
        await wait_until(lambda: not sio.eio.sockets, timeout=10, what="engineio sessions released")
        deadline = time.monotonic() + 10
        while True:
            gc.collect(1)
            left = socket_objects() - before
            # engineio's service task keeps the last session it looked at (and its send queue) in a local
            # variable: one, not a leak
            left -= Counter({engine.Socket.__name__: 1, engine.SendQueue.__name__: 1})
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not left, f"left behind by {rounds * (per_round + 3)} closed connections: {dict(left)}"

    run(scenario())

    # The product's own bookkeeping is empty again.
    assert not any(presence.local[ns] for ns in rooms.NAMESPACES)
    assert not sio.environ
    for namespace in rooms.NAMESPACES:
        assert not [room for room in sio.manager.rooms.get(namespace, {}) if room], namespace
    assert expiry_timers() == 0
    time.sleep(1.1)
    limiter.sweep()
    assert not limiter.windows


def test_a_live_connection_keeps_its_protocol_small(live_server_url, customer):
    """CPython shares one key table among a class's instances up to 29 attribute names; past that
    each instance holds a dict of its own (~1.6 KiB a connection, issue 34). uvicorn's protocol sets
    38: ``WebSocketProtocol.__slots__`` keeps the rest under the limit, open and after a track. And
    what the handshake needed is gone once it is over: the response, the scope's headers."""

    async def scenario() -> list[WebSocketProtocol]:
        client = await Client(live_server_url, "/customer").connect(token_for(customer))
        try:
            await client.call("booking:track", "1")  # refused or not, the connection has served an event
            return [o for o in gc.get_objects() if type(o) is WebSocketProtocol and "scope" in vars(o)]
        finally:
            await client.close()

    protocols = run(scenario())
    assert protocols and max(len(vars(p)) for p in protocols) < 30, [len(vars(p)) for p in protocols]
    assert all(p.response is None and not p.scope["headers"] for p in protocols)
