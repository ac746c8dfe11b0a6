"""The inbound path of a relayed location: no Task and no ``wait_for`` per frame, none per lightweight event.

``config.realtime.reading`` reads websocket frames with one idle timer per connection;
``config.realtime.inline`` runs a lightweight event (``location:update``) in the socket's read
(in ``data_received`` itself while the reader waits: ``config.realtime.eager``, ``test_eager``).
A silent socket is still ended at engineio's bound, and a slow event still holds no other event
of its socket.
"""

import asyncio
import dataclasses
from typing import Any

import pytest

from config.realtime.reading import IdleBound, WebSocketReader
from tests.live import Client, run, token_for


class _Logger:
    def info(self, *args: Any) -> None:
        pass

    def exception(self, *args: Any) -> None:
        raise AssertionError("no receive error expected")


class _Server:
    ping_interval = 0.04
    ping_timeout = 0.04  # the bound: 80 ms of silence
    max_http_buffer_size = 100
    async_handlers = False  # as python-socketio makes its engineio server
    logger = _Logger()

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}


class _Reader(WebSocketReader):
    """Just what ``_read`` uses of engineio's socket: its server and ``receive``."""

    sid = "s1"

    def __init__(self) -> None:
        self.server = _Server()
        self.received: list[Any] = []

    async def receive(self, pkt: Any) -> None:
        self.received.append(pkt.data)


class _Frames:
    """A websocket that delivers ``frames`` (``None``: the client went), ``gap`` seconds apart,
    then stays silent."""

    def __init__(self, frames: list[str | None], gap: float) -> None:
        self.frames, self.gap = list(frames), gap

    async def wait(self) -> Any:
        if not self.frames:
            await asyncio.get_running_loop().create_future()  # silence
        await asyncio.sleep(self.gap)
        return self.frames.pop(0)


def test_a_silent_socket_is_ended_at_engineios_bound_and_its_task_is_not_left_cancelled():
    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        reader = _Reader()
        started = loop.time()
        await reader._read(_Frames(["4a"], gap=0.01))  # in this task: the one the bound cancels
        return loop.time() - started, asyncio.current_task().cancelling()

    took, cancelling = run(scenario(), timeout=5)
    assert 0.08 <= took < 0.5  # one frame at 10 ms, then 80 ms of silence
    assert cancelling == 0


def test_frames_keep_a_socket_open_past_the_bound_with_one_timer_not_one_per_frame(monkeypatch):
    async def scenario() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        timers = 0
        call_at = loop.call_at

        def counted(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal timers
            timers += getattr(callback, "__func__", None) is IdleBound._check  # the bound's, not the sleeps'
            return call_at(when, callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_at", counted)
        reader = _Reader()
        frames = [f"4frame {i}" for i in range(40)]
        await reader._read(_Frames([*frames, None], gap=0.005))
        return reader.received, timers

    received, timers = run(scenario(), timeout=5)
    assert received == [f"frame {i}" for i in range(40)]  # 200 ms of frames: 2.5 bounds, none ended the socket
    assert 1 <= timers <= 6  # the bound re-armed when it fired, not for each of the 40 frames


def test_a_frame_over_the_size_bound_ends_the_socket():
    reader = _Reader()
    run(reader._read(_Frames(["4ok", "4" + "x" * 200, "4never"], gap=0)), timeout=5)
    assert reader.received == ["ok"]


def test_a_socketio_packet_goes_straight_to_the_message_handler_with_the_text_engineio_decodes():
    """``_message``: what ``receive`` would hand the Socket.IO server, in order with the frames it
    still decodes; a handler that fails is logged and the socket reads on."""
    reader = _Reader()
    handled: list[tuple[str, str]] = []
    logged: list[str] = []

    async def message(sid: str, data: str) -> None:
        handled.append((sid, data))
        if data == "2boom":
            raise RuntimeError("a handler's bug")

    reader.server.handlers["message"] = message
    reader.server.logger.exception = logged.append  # type: ignore[method-assign]
    frames = ['42/partner,["location:update",{}]', "42boom", "4a", '40/customer,{"token":"t"}', "3", None]
    run(reader._read(_Frames(frames, gap=0)))
    assert handled == [("s1", '2/partner,["location:update",{}]'), ("s1", "2boom"), ("s1", '0/customer,{"token":"t"}')]
    assert reader.received == ["a", ""]  # a MESSAGE that is no Socket.IO packet, and the PONG: engineio's way
    assert logged == ["message async handler error"]


def test_idle_bound_close_leaves_no_timer():
    async def scenario() -> None:
        idle = IdleBound(10)
        assert idle.timer is not None
        idle.close()
        assert idle.timer is None and not idle.expired

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_a_location_update_costs_no_task_and_a_slow_event_holds_none_of_its_sockets_reads(
    live_server_url, customer, partner, service, monkeypatch
):
    """On the real server: 20 relayed updates start no task of the inbound path (engineio's
    per-frame wait, python-socketio's per-event task); an event that is not lightweight still
    runs in a task of its own, so a location update sent after it is answered first."""
    import config.asgi
    from config.realtime.server import sio
    from tests.factories import book

    booking = book(customer, service)
    partner_ns = next(ns for ns in config.asgi.NAMESPACES if ns.namespace == "/partner")
    assert partner_ns.inline_events == frozenset({"location:update"})
    release = asyncio.Event()
    slow_loop: list[asyncio.AbstractEventLoop] = []

    async def slow_reject(namespace: Any, sid: str, payload: Any) -> dict[str, Any]:
        slow_loop.append(asyncio.get_running_loop())
        await release.wait()
        return {"slow": True}

    reject = partner_ns.client_events["booking:reject"]
    monkeypatch.setitem(partner_ns.client_events, "booking:reject", dataclasses.replace(reject, handle=slow_reject))
    started: list[str] = []

    async def scenario() -> None:
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        loop = sio.manager.loop  # the server's (set at its first connect)
        factory = loop.get_task_factory()

        def counting(loop_: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
            started.append(getattr(coro, "__qualname__", repr(coro)))
            return factory(loop_, coro, **kwargs) if factory else asyncio.Task(coro, loop=loop_, **kwargs)

        try:
            await p.call("location:update", {"latitude": 28.6, "longitude": 77.2})  # the socket is warm
            loop.call_soon_threadsafe(loop.set_task_factory, counting)
            for i in range(20):
                ack = await p.call("location:update", {"latitude": 28.6 + i / 1000, "longitude": 77.2})
                assert ack == {"ok": True, "relayed": 0}
            loop.call_soon_threadsafe(loop.set_task_factory, factory)
            inbound = [name for name in started if "_handle_event_internal" in name or "websocket_wait" in name]
            assert inbound == [], started

            slow = asyncio.ensure_future(p.call("booking:reject", {"bookingId": str(booking.pk)}))
            for _ in range(100):  # until the slow handler runs
                if slow_loop:
                    break
                await asyncio.sleep(0.02)
            assert slow_loop and not slow.done()
            ack = await p.call("location:update", {"latitude": 28.7, "longitude": 77.2})
            assert ack == {"ok": True, "relayed": 0} and not slow.done()
            slow_loop[0].call_soon_threadsafe(release.set)
            assert await slow == {"ok": True, "slow": True}
        finally:
            loop.call_soon_threadsafe(loop.set_task_factory, factory)
            await p.close()

    run(scenario())
