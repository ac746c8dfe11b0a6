"""What an idle socket waits on: timers, not a task asleep or a ``wait_for`` (issue 34, idle memory).

``config.realtime.engine.Socket`` waits for its next ping and bounds its writer's wait for a packet
with a timer each; the pings, their times and the bound are engineio's.
"""

import asyncio
import time

import pytest
from engineio import exceptions
from engineio import packet as eio_packet

from config.realtime.engine import EngineServer, Socket
from tests.live import run


def idle_socket(interval: float, timeout: float) -> Socket:
    server = EngineServer(async_mode="asgi", ping_interval=interval, ping_timeout=timeout)
    socket = Socket(server, "s1")
    socket.connected = socket.upgraded = True
    return socket


def test_the_writer_gets_what_is_queued_up_to_the_close_and_gives_up_at_engineios_bound():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        socket = idle_socket(0.05, 0.05)
        for data in ("a", "b", None, "c"):
            socket.queue.put_nowait(data and eio_packet.Packet(eio_packet.MESSAGE, data))
        # as engineio's: the close ends a batch and goes back in the queue, behind what followed it
        assert [p.data for p in await socket.poll()] == ["a", "b"]
        assert [p.data for p in await socket.poll()] == ["c"]
        assert await socket.poll() == []
        socket.queue = type(socket.queue)()
        started = loop.time()
        with pytest.raises(exceptions.QueueEmpty):
            await socket.poll()
        assert 0.09 <= loop.time() - started < 0.5  # ping_interval + ping_timeout
        assert not socket.queue.awaited()  # no getter left behind
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))  # the next poll gets it, nobody else
        assert [p.packet_type for p in await socket.poll()] == [eio_packet.PING]
        # A writer cancelled while it waits ends as engineio's does: QueueEmpty.
        waiting = asyncio.ensure_future(socket.poll())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(exceptions.QueueEmpty):
            await waiting

    run(scenario(), timeout=5)


def test_the_next_ping_waits_on_a_timer_and_goes_at_ping_interval():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        socket = idle_socket(0.05, 1)
        tasks = len(asyncio.all_tasks())
        socket.schedule_ping()
        assert socket.last_ping is None
        assert len(asyncio.all_tasks()) == tasks  # nothing asleep for it
        started = loop.time()
        ping = await socket.queue.get()
        assert ping.packet_type == eio_packet.PING and 0.045 <= loop.time() - started < 0.5
        assert socket.last_ping is not None
        socket.schedule_ping()
        socket.schedule_ping()  # a second call before the ping: one ping still (engineio's rule)
        await asyncio.sleep(0.15)
        assert socket.queue.qsize() == 1
        # A socket closed meanwhile is sent none.
        socket.queue.get_nowait()
        socket.schedule_ping()
        socket.closed = True
        await asyncio.sleep(0.1)
        assert socket.queue.qsize() == 0

    run(scenario(), timeout=5)


def test_the_service_task_looks_at_every_socket_in_one_pass_a_ping_timeout_and_closes_the_silent():
    """engineio's waits ``ping_timeout / len(sockets)`` between sockets (a hundred wake-ups a second
    for 2,000); here one wait a ``ping_timeout``, and what each pass does is engineio's."""

    class CountedEvent(asyncio.Event):
        waits = 0

        async def wait(self) -> bool:
            CountedEvent.waits += 1
            return await super().wait()

    async def scenario() -> None:
        server = EngineServer(async_mode="asgi", ping_interval=1, ping_timeout=0.2)
        server.create_event = CountedEvent
        disconnected = []
        server.on("disconnect", lambda sid, reason: disconnected.append((sid, reason)))
        sockets = {f"s{i}": Socket(server, f"s{i}") for i in range(200)}
        for socket in sockets.values():
            socket.last_ping = None  # its pong came: its next ping is not sent yet
        silent, gone = sockets["s1"], sockets["s2"]
        silent.last_ping = 1.0  # a ping long unanswered
        sockets["s3"].last_ping = time.time() + 10  # a ping sent and not overdue
        gone.closed = True
        server.sockets = dict(sockets)
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(server._service_task())
        # Two passes: s2 forgotten and s1 closed at the first, s1 forgotten at the next. Waited for,
        # not slept: on a loaded machine a pass may come late, and the count of waits is per pass.
        while len(server.sockets) > 198:
            assert loop.time() - started < 3, "the service task's passes did not come"
            await asyncio.sleep(0.01)
        # A wait a pass, a pass a ping_timeout (engineio's: a wait a socket, 1,000 a second here).
        assert CountedEvent.waits <= (loop.time() - started) / 0.2 + 2
        assert disconnected == [("s1", server.reason.PING_TIMEOUT)] and silent.closed
        assert len(server.sockets) == 198 and "s1" not in server.sockets and "s2" not in server.sockets
        assert not any(s.closing for sid, s in server.sockets.items() if sid != "s1")
        server.service_task_event.set()  # engineio's shutdown
        await asyncio.wait_for(task, 1)

    run(scenario(), timeout=5)


def test_a_ping_is_queued_by_its_timer_without_a_task_while_the_writer_waits():
    async def scenario() -> None:
        socket = idle_socket(0.05, 1)
        started = []
        real_start = socket.server.start_background_task
        socket.server.start_background_task = lambda *a, **k: started.append(a) or real_start(*a, **k)
        writer = asyncio.ensure_future(socket.poll())  # the websocket's writer, waiting on an empty queue
        await asyncio.sleep(0)
        socket.schedule_ping()
        packets = await asyncio.wait_for(writer, 1)
        assert [p.packet_type for p in packets] == [eio_packet.PING] and socket.last_ping is not None
        assert started == []  # engineio's: a task per ping
        # With no writer waiting (a long-poll between requests), engineio's way: a task, then the queue.
        socket.schedule_ping()
        deadline = asyncio.get_running_loop().time() + 2
        while socket.queue.empty():  # the timer, then the task: waited for, a loaded machine runs them late
            assert asyncio.get_running_loop().time() < deadline, "the ping never came"
            await asyncio.sleep(0.01)
        assert len(started) == 1 and [p.packet_type for p in await socket.poll()] == [eio_packet.PING]
        # A socket closed meanwhile is sent none, either way.
        socket.schedule_ping()
        socket.closed = True
        await asyncio.sleep(0.1)
        assert len(started) == 1 and socket.queue.qsize() == 0

    run(scenario(), timeout=5)


def test_a_ping_overdue_by_its_turn_in_a_pass_is_closed_in_that_pass():
    """Each socket is judged on the clock as its turn comes, as engineio's pass judges it: a close
    earlier in the pass (its disconnect handlers waiting on the database) does not leave a socket
    whose ping went overdue meanwhile for the next pass, a ``ping_timeout`` later."""

    async def scenario() -> None:
        server = EngineServer(async_mode="asgi", ping_interval=1, ping_timeout=0.2)
        first, second = Socket(server, "s1"), Socket(server, "s2")
        first.last_ping, second.last_ping = 1.0, None  # s1 long silent; s2 between its pong and next ping
        disconnected = []

        async def disconnect(sid, reason):
            disconnected.append(sid)
            if sid == "s1":
                await asyncio.sleep(0.05)  # s1's handlers take a while
                second.last_ping = time.time() - 0.21  # s2's ping is overdue by now, not at the pass's start

        server.on("disconnect", disconnect)
        server.sockets = {"s1": first, "s2": second}
        task = asyncio.ensure_future(server._service_task())
        deadline = asyncio.get_running_loop().time() + 3
        while not first.closed:
            assert asyncio.get_running_loop().time() < deadline, "the first pass never came"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # the rest of the pass (no wait in it: s2's close is engineio's, inline)
        assert disconnected == ["s1", "s2"] and second.closed
        server.service_task_event.set()
        await asyncio.wait_for(task, 1)

    run(scenario(), timeout=5)
