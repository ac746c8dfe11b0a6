"""What one connection can make a server hold is bounded, signed in or not (contract 10.1, issue 32).

Clients speak Engine.IO by hand (long-polling over aiohttp, or a bare websocket) where the
official clients would read, answer or give up on their own: a client that never reads, one
that floods, one that opens sessions and never joins a namespace.
"""

import asyncio
import contextlib
import json
import re
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from engineio import packet as eio_packet

from config.realtime.limits import limiter
from config.realtime.server import sio
from config.realtime.websocket_protocol import CORKED_MAX
from tests.live import WAIT, RawSocket, ServerProcess, run, token_for, wait_until
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)

SEP = "\x1e"  # Engine.IO's packet separator in a long-polling body
PACKETS_BOUND = 300
CHARS_BOUND = 40_000


@pytest.fixture(scope="module")
def held_env(cluster_env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    return {
        **cluster_env,
        "RATE_DEFAULT": "1000000",  # refusals flood the queue here; their limit is another test's
        "SOCKETIO_SEND_QUEUE_PACKETS": str(PACKETS_BOUND),
        "SOCKETIO_SEND_QUEUE_BYTES": str(CHARS_BOUND),
        "SOCKETIO_NO_NAMESPACE_TIMEOUT": "1",
    }


@pytest.fixture(scope="module")
def server(held_env: dict[str, str]) -> Iterator[ServerProcess]:
    process = ServerProcess(held_env)
    try:
        yield process.start()
    finally:
        process.stop()


def bound_count(server: ServerProcess, bound: str) -> float:
    text = urllib.request.urlopen(server.url + "/metrics", timeout=5).read().decode()
    found = re.search(rf'^homeservices_connection_bounds_total\{{bound="{bound}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class Polling:
    """One Engine.IO session over long-polling, spoken by hand: it reads only when told to."""

    def __init__(self, url: str) -> None:
        self.endpoint = url + "/socket.io/?EIO=4&transport=polling"

    async def open(self) -> "Polling":
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT))
        async with self.http.get(self.endpoint) as answer:
            self.status = answer.status
            body = await answer.text()
        if answer.status == 200:
            self.sid = json.loads(body[1:])["sid"]
        return self

    async def post(self, *packets: str, body: bytes | None = None) -> int:
        data = body if body is not None else SEP.join(packets).encode()
        async with self.http.post(f"{self.endpoint}&sid={self.sid}", data=data) as answer:
            await answer.read()
            return answer.status

    async def get(self) -> tuple[int, str]:
        async with self.http.get(f"{self.endpoint}&sid={self.sid}") as answer:
            return answer.status, await answer.text()

    async def refused(self) -> None:
        """Polls until the session is gone (400). The drop runs in a task of its own (a signed-in
        socket's disconnect handlers first), so a poll may still be answered while it closes:
        with Engine.IO's own packets only, never an event or an ack of what was asked for."""
        for _ in range(5):
            status, body = await self.get()
            if status == 400:
                return
            assert status == 200 and not any(p[:2] in ("42", "43") for p in body.split(SEP)), (status, body[:200])
        raise AssertionError("the session is still open after five polls")

    async def close(self) -> None:
        await self.http.close()


def test_a_client_that_never_reads_is_dropped_past_its_queue_bound_and_counted(server, customer):
    """Signed in, a polling client POSTs events whose answers it never collects: past the bound
    (packets, or characters) its connection is closed and counted, whatever it sends."""
    token = token_for(customer)

    async def flood(name: str, bound: str) -> int:
        """Answers asked for (16 a POST) until the connection is dropped; how many were asked for."""
        before = bound_count(server, bound)
        client = await Polling(server.url).open()
        assert await client.post(f'40/customer,{{"token":"{token}"}}') == 200
        posted = 0
        for batch in range(200):  # at most 3,200 answers: far past either bound
            status = await client.post(*(f'42/customer,{batch * 16 + i}["{name}",{{}}]' for i in range(16)))
            if status != 200 or bound_count(server, bound) > before:
                break
            posted += 16
        assert bound_count(server, bound) == before + 1
        # Dropped: its polls are refused, not answered with the thousands of packets asked for.
        await client.refused()
        await client.close()
        return posted

    async def scenario() -> None:
        posted = await flood("no:such", "send_queue_packets")  # a short answer each: the packets bound
        assert PACKETS_BOUND - 16 <= posted < 3200
        await flood("x" * 64, "send_queue_bytes")  # about 200 characters each: the characters' bound

    run(scenario())


def test_a_refused_packet_gets_one_answer_and_a_flood_fewer_then_a_disconnect(live_server_url, customer, settings):
    """The ack when one is asked for, else one error event; past RATE_LIMITED three answers per
    window, then none; refused as often as the limit allows (twice the limit sent): disconnected."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "default": (5, 3600.0)}

    def errors(raw: RawSocket) -> list[dict[str, Any]]:
        return [json.loads(f[len("42/customer,") :])[1] for f in raw.frames if f.startswith('42/customer,["error"')]

    async def settled() -> None:
        await wait_until(lambda: not limiter._tasks, what="the rate limiter's lease")

    async def scenario() -> None:
        raw = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        ack = await raw.call("no:such", {})  # with an ack: the ack alone
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        await settled()
        assert errors(raw) == []
        for sent in range(2, 6):  # without: one error event each (five in the limit in all)
            await raw.send('2/customer,["no:such",{}]')
            await wait_until(lambda sent=sent: len(errors(raw)) == sent - 1, what=f"answer {sent}")
            await settled()
        for refused in range(1, 4):  # past the limit: three answers
            await raw.send('2/customer,["no:such",{}]')
            await wait_until(lambda refused=refused: len(errors(raw)) == 4 + refused, what=f"refusal {refused}")
            await settled()
        assert [e["code"] for e in errors(raw)] == ["VALIDATION_ERROR"] * 4 + ["RATE_LIMITED"] * 3
        await raw.send('2/customer,4["no:such",{}]')  # the fourth refusal: no answer, not even its ack
        await settled()
        await raw.send('2/customer,["no:such",{}]')  # the fifth: twice the limit sent, disconnected
        await raw.next(lambda f: f.startswith("41/customer"))
        last = errors(raw)[-1]
        assert last["code"] == "RATE_LIMITED" and last["event"] is None, last
        assert len(errors(raw)) == 8 and not [f for f in raw.frames if f.startswith("43/customer,4[")]
        await raw.close()

    run(scenario())


def test_sessions_per_address_are_bounded(held_env):
    """Past SOCKETIO_SESSIONS_PER_ADDRESS open sessions a handshake is refused 401; one closed frees a place."""
    with contextlib.ExitStack() as stack:
        process = ServerProcess({**held_env, "SOCKETIO_SESSIONS_PER_ADDRESS": "3"}).start()
        stack.callback(process.stop)

        async def scenario() -> None:
            sessions = [await Polling(process.url).open() for _ in range(4)]
            assert [s.status for s in sessions] == [200, 200, 200, 401]
            assert bound_count(process, "sessions_per_address") == 1
            assert await sessions[0].post("1") == 200  # Engine.IO CLOSE
            again = await Polling(process.url).open()
            assert again.status == 200
            for session in [*sessions, again]:
                await session.close()

        run(scenario())


def test_a_session_that_joins_no_namespace_is_closed(server, customer):
    """A client that answers every ping but joins no namespace is closed after the timeout
    (1 s here, 10 s by default); one that joined a namespace stays."""

    async def bare_websocket(http: aiohttp.ClientSession) -> float:
        url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        started = time.monotonic()
        async with http.ws_connect(url) as ws:
            async for message in ws:
                if message.data == "2":
                    await ws.send_str("3")
        return time.monotonic() - started

    async def scenario() -> None:
        joined = await RawSocket(server.url, "/customer").connect(token_for(customer))
        before = bound_count(server, "no_namespace")
        async with aiohttp.ClientSession() as http:
            await asyncio.wait_for(bare_websocket(http), WAIT)
        assert bound_count(server, "no_namespace") == before + 1
        assert joined.open
        assert (await joined.call("no:such", {}))["error"]["code"] == "VALIDATION_ERROR"  # still served
        await joined.close()

    run(scenario())


def test_a_session_the_server_disconnects_from_its_last_namespace_is_closed_as_bare(server, customer):
    """The deadline goes when a session joins a namespace and comes back when it leaves its last
    one, whoever ends it: here the server (the token expired), and the client keeps answering pings."""

    async def scenario() -> None:
        before = bound_count(server, "no_namespace")
        raw = await RawSocket(server.url, "/customer").connect(token_for(customer, expires_at=int(time.time()) + 3))
        await raw.next(lambda f: f.startswith("41/customer"))  # the server's DISCONNECT at expiry
        await wait_until(lambda: bound_count(server, "no_namespace") == before + 1, what="the bare session closed")
        await raw.http.close()

    run(scenario())


def test_a_session_whose_connects_keep_being_refused_is_closed(server):
    """The issue's anonymous flood: ``40/customer,`` (no token) sixteen to a POST, never read.
    After ten refusals the session is closed and counted; what it asked for is not kept."""

    async def scenario() -> None:
        before = bound_count(server, "connects_refused")
        client = await Polling(server.url).open()
        assert await client.post(*["40/customer,"] * 16) == 200
        await wait_until(lambda: bound_count(server, "connects_refused") == before + 1, what="the session closed")
        await client.refused()
        await client.close()

    run(scenario())


def test_an_unregistered_namespace_costs_no_redis_call(server, held_env, customer):
    """A CONNECT to a namespace nobody registered is refused before any Redis call, token check
    or query: neither its name nor the pid it brings reach a Redis command (a registered
    namespace's connect looks its pid up: the control)."""
    import redis.asyncio as redis

    marker = uuid.uuid4().hex
    namespace, pid, control_pid = f"/nope-{marker}", f"pid-{marker}", f"control-{marker}"
    seen: list[str] = []

    async def watch(ready: asyncio.Event) -> None:
        client = redis.from_url(held_env["REDIS_URL"])
        try:
            async with client.monitor() as monitor:
                ready.set()
                async for command in monitor.listen():
                    seen.append(command["command"])
        finally:
            await client.aclose()

    async def connect(ws: Any, name: str, pid: str) -> str:
        await ws.send_str(f"40{name}," + json.dumps({"token": token_for(customer), "pid": pid}))
        while True:
            message = await ws.receive(timeout=WAIT)
            if message.data == "2":
                await ws.send_str("3")
            elif message.data.startswith((f"40{name},", f"44{name},")):
                return message.data

    async def scenario() -> None:
        ready = asyncio.Event()
        watcher = asyncio.create_task(watch(ready))
        await asyncio.wait_for(ready.wait(), WAIT)
        url = server.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.receive(timeout=WAIT)  # OPEN
            assert (await connect(ws, namespace, pid)).startswith(f"44{namespace},")
            assert (await connect(ws, "/customer", control_pid)).startswith("40/customer,")
            # Redis runs commands in order: once the control's GET shows, anything before it has.
            await wait_until(lambda: any(control_pid in c for c in seen), what="the control's GET in MONITOR")
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert not [c for c in seen if namespace in c or pid in c], seen[-20:]

    run(scenario())


def test_a_post_of_17_packets_or_unreadable_is_a_400_and_one_warning(server):
    """More packets in one POST than Engine.IO allows, or bytes that are not UTF-8: 400, one
    WARNING line, no traceback (the autouse log fixture fails the test on one)."""

    async def scenario() -> None:
        for body in (SEP.join(["3"] * 17).encode(), b"\xff\xfe4garbage"):
            client = await Polling(server.url).open()
            assert await client.post(body=body) == 400
            status, _ = await client.get()  # the session is closed, as for any transport error
            assert status == 400
            await client.close()

    before = server.output().count("engine.io POST refused")
    counted = bound_count(server, "unreadable_post")
    run(scenario())
    assert bound_count(server, "unreadable_post") == counted + 2
    lines = [line for line in server.output().splitlines() if "engine.io POST refused" in line]
    assert len(lines) - before == 2 and all(" WARNING " in line for line in lines[before:]), lines
    assert "post request handler error" not in server.output()


def test_a_binary_or_unknown_socketio_packet_closes_the_session_with_one_warning(server, customer):
    """No event of the catalogue carries binary, and python-socketio keeps a pending binary
    packet's attachments without a bound: a binary header closes the session, signed in or
    not, as does a packet kind a client never sends or one that does not decode (each was a
    traceback in python-socketio). Counted, one WARNING each, no traceback."""
    binary = '451-/customer,["x",{"_placeholder":true,"num":0}]'
    cases = [("binary", binary, True), ("binary", binary, False)]
    cases += [("unreadable", p, False) for p in ("47", "4x", '44/customer,{"message":"x"}')]

    async def scenario() -> None:
        for kind, pkt, signed_in in cases:
            before = bound_count(server, f"{kind}_packet")
            client = await Polling(server.url).open()
            if signed_in:
                assert await client.post("40/customer," + json.dumps({"token": token_for(customer)})) == 200
                status, body = await client.get()
                assert status == 200 and "40/customer," in body, body
            assert await client.post(pkt) == 200
            await wait_until(
                lambda k=kind, b=before: bound_count(server, f"{k}_packet") == b + 1, what=f"{pkt} refused"
            )
            await client.refused()
            await client.close()

    before = server.output().count("Socket.IO packet (")
    run(scenario())
    lines = [line for line in server.output().splitlines() if "Socket.IO packet (" in line][before:]
    assert len(lines) == len(cases) and all(" WARNING " in line for line in lines), lines


def _masked(text: str) -> bytes:
    """A client's text frame (RFC 6455: masked; a zero mask, the payload as it is)."""
    data = text.encode()
    length = bytes((0x80 | len(data),)) if len(data) < 126 else bytes((0x80 | 126,)) + len(data).to_bytes(2)
    return bytes((0x81,)) + length + b"\0\0\0\0" + data


def test_a_websocket_client_that_never_reads_is_held_within_the_bounds_then_cut_off(live_server_url, customer):
    """A websocket client that stops reading while 12 MB of packets are written to it in one loop
    round (room emits, answers): the connection's frames of the round stop at ~64 KiB, the rest are
    queued, where the send-queue bound drops the socket; and the connection itself (its buffers,
    its writer waiting for the client to read) goes within ``ping_interval + ping_timeout`` (7 s
    here), not when the client reads again, which it never does."""
    port = int(live_server_url.rsplit(":", 1)[1])

    async def scenario() -> None:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
        client.setblocking(False)
        await asyncio.get_running_loop().sock_connect(client, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=client)
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b'{"sid":"')
        eio_sid = (await reader.readuntil(b'"'))[:-1].decode()
        writer.write(_masked(f'40/customer,{{"token":"{token_for(customer)}"}}'))
        await reader.readuntil(b"40/customer,{")  # connected; from here on nothing is read
        engine_socket = sio.eio.sockets[eio_sid]
        protocol = engine_socket.write_frame.__self__
        payload = '2/customer,["x","' + "x" * 4000 + '"]'

        async def flood() -> int:  # on the server's loop, in one round: 3,000 packets of 4 KB
            for _ in range(3000):
                await engine_socket.send(eio_packet.Packet(eio_packet.MESSAGE, payload))
            await asyncio.sleep(0.1)  # the round's frames written
            return protocol.transport.get_write_buffer_size()

        buffered = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(flood(), protocol.loop))
        assert engine_socket.dropped and engine_socket.closed  # past SEND_QUEUE_BYTES
        assert buffered < 3 * CORKED_MAX, buffered  # the round's frames held: 12 MB
        dropped = time.monotonic()
        await wait_until(protocol.transport.is_closing, timeout=7 + 2, what="the connection cut")
        assert time.monotonic() - dropped > 1  # not at the drop: the client had its ping time
        writer.transport.abort()

    run(scenario())
