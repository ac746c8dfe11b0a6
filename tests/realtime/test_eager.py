"""A client's event handled where its frame is read (``config.realtime.eager``).

The handler takes its first step in ``data_received`` as the reading task's step would take it
(the same current task, the socket's own context); one that suspends is finished by the reading
task before anything after it; a socket's packets stay in order, and a burst in one read is
handled ``EAGER_PER_READ`` frames in the read, the rest by the reading task.
"""

import asyncio
import base64
import contextvars
import dataclasses
import json
import os
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from config.realtime.eager import EAGER_PER_READ, EagerFrames, Suspended
from tests.live import WAIT, run, token_for
from tests.realtime import eager_harness as harness

_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def test_a_handler_that_awaits_nothing_ends_in_the_read_as_a_step_of_the_reading_task():
    async def scenario() -> None:
        seen: list[Any] = []

        async def handler(sid: str, data: str) -> None:
            seen.append((sid, data, asyncio.current_task(), _SEEN.get()))
            _SEEN.set("set by the handler")

        reading = asyncio.current_task()
        server, idle = harness.Server(handler), harness.Idle()
        take = EagerFrames("s1", server, idle)
        _SEEN.set("the reading task's, set after the socket's context was copied")
        loop = asyncio.get_running_loop()
        handled = loop.create_future()
        # From a callback of the loop, as data_received runs: no task is current there.
        loop.call_soon(lambda: handled.set_result(take('42/partner,1["location:update",{}]')))
        assert await handled is None
        assert seen == [("s1", '2/partner,1["location:update",{}]', reading, "unset")]
        assert idle.since is not None  # the frame restarted the silence the idle bound measures
        assert _SEEN.get() == "the reading task's, set after the socket's context was copied"
        assert take.context[_SEEN] == "set by the handler"  # the socket's context keeps what its handlers set
        assert asyncio.current_task() is reading

    run(scenario(), timeout=5)


def test_other_packets_oversized_frames_and_calls_from_inside_a_task_are_the_reading_tasks():
    async def scenario() -> None:
        calls: list[str] = []

        async def handler(sid: str, data: str) -> None:
            calls.append(data)

        take = EagerFrames("s1", harness.Server(handler), harness.Idle())
        for text in ['40/partner,{"token":"t"}', "43/partner,1[]", "3", "2probe", "42" + "x" * 99]:
            assert take(text) == text
        assert take('42["inside a task"]') == '42["inside a task"]'  # this test runs in a task
        assert calls == []

    run(scenario(), timeout=5)


def test_a_handler_that_suspends_is_finished_by_the_reading_task_and_its_failure_is_logged():
    async def scenario() -> None:
        steps: list[Any] = []
        release = asyncio.Event()

        async def handler(sid: str, data: str) -> None:
            steps.append(("first step", asyncio.current_task()))
            await release.wait()
            steps.append(("second step", asyncio.current_task(), _SEEN.get()))
            raise RuntimeError("a handler's bug")

        server = harness.Server(handler)
        take = EagerFrames("s1", server, harness.Idle())
        reading = asyncio.current_task()
        loop = asyncio.get_running_loop()
        taken = loop.create_future()
        loop.call_soon(lambda: taken.set_result(take("42[]")))
        suspended = await taken
        assert isinstance(suspended, Suspended) and steps == [("first step", reading)]
        loop.call_later(0.01, release.set)
        with pytest.raises(RuntimeError, match="a handler's bug"):
            await suspended  # what the reading loop's _finish does, and logs
        assert steps[1] == ("second step", reading, "unset")

    run(scenario(), timeout=5)


def test_a_cancelled_reading_task_cancels_the_handler_it_was_finishing():
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def handler(sid: str, data: str) -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        async def reading() -> None:
            take = EagerFrames("s1", harness.Server(handler), harness.Idle())
            taken = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(lambda: taken.set_result(take("42[]")))
            await (await taken)

        task = asyncio.ensure_future(reading())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    assert run(scenario(), timeout=5) == ["cancelled"]


def test_the_read_loop_takes_events_in_the_read_finishes_a_suspended_one_and_lets_go_of_its_taker():
    """``_read`` installs the taker while it reads; a handler that suspends is finished by it
    (its failure logged, the socket read on) before the frames queued behind it; once the
    client goes the protocol holds no taker."""

    async def scenario() -> None:
        handled: list[tuple[str, str]] = []
        release = asyncio.get_running_loop().create_future()

        async def handler(sid: str, data: str) -> None:
            handled.append(("start", data))
            if data == '2["slow"]':
                await release
                handled.append(("end", data))
                raise RuntimeError("a handler's bug")

        reader, protocol, reading = harness.reading(handler)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)
        assert isinstance(protocol.take_text, EagerFrames)

        async def read(*texts: str | None) -> None:
            done = loop.create_future()
            loop.call_soon(lambda: (*map(protocol.data_received, texts), done.set_result(None)))
            await done

        await read('42["a"]')
        assert handled == [("start", '2["a"]')] and protocol.queue.awaited()  # handled in the read
        await read('42["slow"]', '42["b"]', "4plain")
        assert handled[1:] == [("start", '2["slow"]')]  # "b" waits behind the suspended handler
        release.set_result(None)
        await read(None)
        await asyncio.wait_for(reading, 5)
        assert handled[2:] == [("end", '2["slow"]'), ("start", '2["b"]')]
        assert reader.server.logged == ["message async handler error"]
        assert reader.received == ["plain"]  # no Socket.IO packet: engineio's way
        assert protocol.take_text is None

    run(scenario(), timeout=10)


class _Tcp:
    """A websocket spoken over a bare TCP connection: what a client sends in one write arrives in one read."""

    async def open(self, url: str) -> "_Tcp":
        host, port = url.removeprefix("http://").split(":")
        self.reader, self.writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await self.reader.readuntil(b"\r\n\r\n")
        return self

    def send(self, *texts: str) -> None:
        self.writer.write(b"".join(Frame(Opcode.TEXT, text.encode()).serialize(mask=True) for text in texts))

    async def next(self) -> str:
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2))
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8))
        return (await self.reader.readexactly(length)).decode()


@pytest.mark.django_db(transaction=True)
def test_on_the_real_server_updates_are_handled_in_the_read_in_order_and_a_burst_a_few_at_a_time(
    live_server_url, partner, monkeypatch, settings
):
    """Updates one at a time: each handled in the read that brought it. A burst in one write: the
    first ``EAGER_PER_READ`` in the read, the rest by the reading task. A burst whose handler
    suspends on every third: the first suspension goes to the reading task, everything after it
    waits its turn; every ack, in the order sent, each handled in that order."""
    import config.asgi

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "location:update": (1000, 60)}  # not what is tested
    taken: list[str] = []
    original = EagerFrames.__call__

    def counting(self: EagerFrames, text: str) -> Any:
        result = original(self, text)
        taken.append(type(result).__name__)
        return result

    monkeypatch.setattr(EagerFrames, "__call__", counting)
    partner_ns = next(ns for ns in config.asgi.NAMESPACES if ns.namespace == "/partner")
    update = partner_ns.client_events["location:update"]
    order: list[float] = []

    async def sometimes_slow(namespace: Any, sid: str, payload: Any) -> dict[str, Any]:
        if round(payload["latitude"] * 1000) % 3 == 2:
            await asyncio.sleep(0.005)
        order.append(payload["latitude"])
        return {"relayed": 0}

    def ack(ack_id: int) -> str:
        return f'43/partner,{ack_id}[{{"ok":true,"relayed":0}}]'

    def update_frame(ack_id: int, latitude: float) -> str:
        return f"42/partner,{ack_id}" + json.dumps(["location:update", {"latitude": latitude, "longitude": 77.2}])

    async def acks(ws: _Tcp, count: int) -> list[str]:
        frames: list[str] = []
        while len(frames) < count:
            frame = await ws.next()
            if frame.startswith("43/partner,"):
                frames.append(frame)
        return frames

    async def scenario() -> None:
        ws = await (_Tcp()).open(live_server_url)
        try:
            assert (await ws.next()).startswith("0{")
            ws.send("40/partner," + json.dumps({"token": token_for(partner.user)}))
            assert (await ws.next()).startswith("40/partner,")
            for i in range(10):
                ws.send(update_frame(i, 28.6))
                assert await acks(ws, 1) == [ack(i)]
            assert taken == ["str"] + ["NoneType"] * 10, taken  # the CONNECT is the reading task's
            taken.clear()
            ws.send(*(update_frame(100 + i, 28.6) for i in range(BURST)))
            assert await asyncio.wait_for(acks(ws, BURST), WAIT) == [ack(100 + i) for i in range(BURST)]
            # The first EAGER_PER_READ of the read in the read, the rest by the reading task.
            assert taken[:EAGER_PER_READ] == ["NoneType"] * EAGER_PER_READ and len(taken) < BURST, taken

            monkeypatch.setitem(
                partner_ns.client_events, "location:update", dataclasses.replace(update, handle=sometimes_slow)
            )
            taken.clear()
            ws.send(*(update_frame(200 + i, i / 1000) for i in range(BURST)))
            assert await asyncio.wait_for(acks(ws, BURST), WAIT) == [ack(200 + i) for i in range(BURST)]
            assert taken == ["NoneType", "NoneType", "Suspended"], taken  # the rest queued behind it
        finally:
            ws.writer.close()

    run(scenario())
    assert order == [i / 1000 for i in range(BURST)]


BURST = 3 * EAGER_PER_READ


@pytest.mark.django_db(transaction=True)
def test_an_update_whose_reading_task_is_cancelled_mid_handler_gets_no_empty_ack(
    live_server_url, partner, monkeypatch, settings
):
    """The reading task finishing a suspended update is cancelled (what a stop past its grace
    does): the update is not answered ``[]``, which no ack of the catalogue is (python-socketio
    answers a namespace's cancelled handler with nothing, as the server did before)."""
    import config.asgi

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "location:update": (1000, 60)}  # not what is tested
    readers: list[EagerFrames] = []
    original = EagerFrames.__init__

    def recording(self: EagerFrames, *args: Any) -> None:
        original(self, *args)
        readers.append(self)

    monkeypatch.setattr(EagerFrames, "__init__", recording)
    partner_ns = next(ns for ns in config.asgi.NAMESPACES if ns.namespace == "/partner")
    update = partner_ns.client_events["location:update"]
    suspended = asyncio.Event()  # set on the server's loop, read by polling from the test's

    async def stuck_at_one(namespace: Any, sid: str, payload: Any) -> dict[str, Any]:
        if payload["latitude"] == 1:
            suspended.set()
            await asyncio.sleep(60)
        return {"relayed": 0}

    monkeypatch.setitem(partner_ns.client_events, "location:update", dataclasses.replace(update, handle=stuck_at_one))

    def update_frame(ack_id: int, latitude: float) -> str:
        return f"42/partner,{ack_id}" + json.dumps(["location:update", {"latitude": latitude, "longitude": 77.2}])

    async def scenario() -> list[str]:
        ws = await (_Tcp()).open(live_server_url)
        try:
            assert (await ws.next()).startswith("0{")
            ws.send("40/partner," + json.dumps({"token": token_for(partner.user)}))
            assert (await ws.next()).startswith("40/partner,")
            ws.send(update_frame(7, 1))
            while not suspended.is_set():
                await asyncio.sleep(0.01)
            reader = readers[-1]
            reader.loop.call_soon_threadsafe(reader.task.cancel)
            ws.send(update_frame(8, 2))  # a barrier: answered after whatever 7 got
            frames: list[str] = []
            while not frames or not frames[-1].startswith("43/partner,8"):
                frames.append(await asyncio.wait_for(ws.next(), WAIT))
            return [frame for frame in frames if frame.startswith("43/")]
        finally:
            ws.writer.close()

    assert run(scenario()) == ['43/partner,8[{"ok":true,"relayed":0}]']
