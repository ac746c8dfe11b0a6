"""A packet out (issue 34): written at once only where nothing can be ahead of it, in order,
within the send-queue bounds; a room emit's packet framed once for all its recipients."""

import asyncio
import gc
import threading
import weakref

import pytest
from engineio import packet as eio_packet
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from config import metrics
from config.realtime.engine import EngineServer, Socket
from config.realtime.frames import frame_of, uncorking
from config.realtime.manager import ChannelLayerManager
from config.realtime.outbound import SharedPacket
from config.realtime.primitives import Flag
from config.realtime.websocket_protocol import WebSocketProtocol
from tests.live import RawSocket, run, token_for


class Connection:
    """What ``WebSocketProtocol.write_frame`` does, seen from the socket: frames written while writable."""

    def __init__(self) -> None:
        self.writable = True
        self.frames: list[bytes] = []

    def write_frame(self, frame: bytes) -> bool:
        if not self.writable:
            return False
        self.frames.append(frame)
        return True


def websocket_socket(server: EngineServer, sid: str = "s1") -> tuple[Socket, Connection]:
    socket = Socket(server, sid)
    socket.connected = socket.upgraded = True
    connection = Connection()
    socket.write_frame = connection.write_frame
    return socket, connection


def message(data: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, data)


def test_a_frame_is_the_text_frame_websockets_would_send():
    for text in ("x", "y" * 125, "z" * 126, "é" * 40_000):
        assert frame_of(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
        assert frame_of("4" + text)[0] == 0x81  # FIN, text, unmasked
    for data in (b"", b"\x00" * 125, b"\xff" * 126, b"b" * 65535, b"c" * 65536):
        assert frame_of(data) == Frame(Opcode.BINARY, data).serialize(mask=False)
    shared = SharedPacket(eio_packet.MESSAGE, '2/customer,["e",{}]')
    assert shared.frame() is shared.frame()  # framed once, whoever asks
    assert shared.frame() == frame_of('42/customer,["e",{}]')


def test_a_message_is_written_at_once_only_while_the_writer_waits_on_an_empty_queue(settings):
    async def scenario() -> None:
        server = EngineServer(async_mode="asgi")
        socket, connection = websocket_socket(server)
        # No writer waiting (it holds packets it has not written yet): the queue, behind them.
        await socket.send(message("a"))
        assert socket.queue.qsize() == 1 and connection.frames == []
        assert socket.queue.get_nowait().data == "a"
        # The writer waits on the empty queue: written now, the writer not woken.
        waiting = socket.queue.get()
        await socket.send(message("b"))
        assert connection.frames == [frame_of("4b")] and not waiting.done()
        # Pings keep the queue: they wake the writer, whose wait would otherwise time out.
        await socket.send(eio_packet.Packet(eio_packet.PING))
        assert waiting.done() and waiting.result().packet_type == eio_packet.PING
        assert connection.frames == [frame_of("4b")]
        # Not writable: queued, and what follows queues behind it even once writable again.
        waiting = socket.queue.get()
        connection.writable = False
        await socket.send(message("c"))
        assert waiting.result().data == "c"  # handed to the writer, which now waits to write it
        connection.writable = True
        await socket.send(message("d"))
        assert socket.queue.qsize() == 1 and connection.frames == [frame_of("4b")]
        # An upgrade under way, or a polling socket: never written at once.
        socket.queue.get_nowait()
        waiting = socket.queue.get()
        socket.upgrading = True
        assert not socket.write_now(message("e"))
        socket.upgrading, socket.upgraded = False, False
        assert not socket.write_now(message("e"))
        socket.upgraded = True
        assert socket.write_now(message("e")) and connection.frames[-1] == frame_of("4e")
        # A ping overdue: engineio's send decides (it closes the socket), not the fast path.
        socket.last_ping = 1.0
        assert not socket.write_now(message("f"))
        waiting.cancel()

    run(scenario())


def test_a_client_that_cannot_take_more_is_still_dropped_past_its_bound_and_counted(settings):
    settings.SOCKETIO = {**settings.SOCKETIO, "SEND_QUEUE_PACKETS": 20}

    async def scenario() -> None:
        server = EngineServer(async_mode="asgi")
        socket, connection = websocket_socket(server)
        server.sockets[socket.sid] = socket
        socket.queue.get()  # the writer waits
        connection.writable = False  # the client reads no more: its connection stays unwritable
        before = metrics.CONNECTION_BOUNDS.labels("send_queue_packets")._value.get()
        for i in range(25):
            await socket.send(message(str(i)))
        assert connection.frames == []
        assert socket.dropped
        assert metrics.CONNECTION_BOUNDS.labels("send_queue_packets")._value.get() == before + 1
        await asyncio.gather(*server._dropping)
        assert socket.closed and socket.sid not in server.sockets
        connection.writable = True
        await socket.send(message("late"))
        assert connection.frames == []  # nothing is sent to a dropped socket, at once or not

    run(scenario())


def test_a_room_emit_is_one_frame_for_every_socket_that_can_take_it_and_the_queue_for_the_rest():
    """Encoded once (the offset last, as ``recovery`` appends it), framed once; a socket with a
    backlog, a recovering one and a skipped one each get what engineio's way gives them."""
    from config.realtime.server import sio

    manager, namespace, room = sio.manager, "/customer", "booking:outbound-test"

    async def scenario() -> None:
        sockets = {}
        for name in ("ready", "backlog", "recovering", "skipped"):
            socket, connection = websocket_socket(sio.eio, f"eio-{name}")
            if name != "backlog":
                socket.queue.get()  # the writer waits (the backlog's is busy writing)
            sio.eio.sockets[socket.sid] = socket
            manager.basic_enter_room(name, namespace, room, eio_sid=socket.sid)
            sockets[name] = (socket, connection)
        await sockets["backlog"][0].send(message("earlier"))  # queued: its writer is busy
        sio.recovering._connections["eio-recovering"] = {}  # a replay window open on it
        try:
            await manager.emit_once(
                {
                    "event": "booking:updated",
                    "data": [{"id": 1}, "1700000000000-0"],
                    "namespace": namespace,
                    "room": room,
                    "skip_sid": "skipped",
                }
            )
        finally:
            del sio.recovering._connections["eio-recovering"]
            for name, (socket, _) in sockets.items():
                manager.basic_leave_room(name, namespace, room)
                del sio.eio.sockets[socket.sid]
        expected = frame_of('42/customer,["booking:updated",{"id":1},"1700000000000-0"]')
        assert sockets["ready"][1].frames == [expected]
        assert sockets["backlog"][1].frames == []  # nothing written past what waits
        backlog = sockets["backlog"][0].queue
        assert backlog.get_nowait().data == "earlier"
        queued = backlog.get_nowait()
        assert isinstance(queued, SharedPacket) and queued.frame() == expected
        assert sockets["recovering"][1].frames == [expected]  # through ``intercept``, which holds nothing here
        assert sockets["skipped"][1].frames == []

    run(scenario())


@pytest.mark.django_db(transaction=True)
def test_the_server_as_it_runs_writes_its_frames_straight_to_the_connection(live_server_url, customer, monkeypatch):
    """uvicorn with the product's protocol, as ``make serve`` runs it: the link from an engineio
    socket to its connection is made, and a packet to an idle socket (the CONNECT answer) takes it."""
    written: list[bytes] = []
    real = WebSocketProtocol.write_frame

    def write_frame(self: WebSocketProtocol, frame: bytes) -> bool:
        done = real(self, frame)
        if done:
            written.append(frame)
        return done

    monkeypatch.setattr(WebSocketProtocol, "write_frame", write_frame)

    async def scenario() -> str:
        client = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        await client.close()
        return client.answer["sid"]

    sid = run(scenario())
    assert any(frame[2:].startswith(b"40/customer,") and sid.encode() in frame for frame in written), written


@pytest.mark.django_db(transaction=True)
def test_a_websockets_handshake_response_and_its_open_packet_are_one_write(live_server_url, customer, monkeypatch):
    """The 101 response and Engine.IO's OPEN go to the connection in one write (a connect's first
    system call of three saved); the namespace's answer follows in a write of its own."""
    writes: list[bytes] = []
    real = WebSocketProtocol.uncork

    def uncork(self: WebSocketProtocol) -> None:
        if self.corked:
            writes.append(b"".join(self.corked))
        real(self)

    monkeypatch.setattr(WebSocketProtocol, "uncork", uncork)

    async def scenario() -> None:
        client = await RawSocket(live_server_url, "/customer").connect(token_for(customer))
        await client.close()

    run(scenario())
    [first] = [write for write in writes if write.startswith(b"HTTP/1.1 101")]
    assert first.endswith(b"\r\n\r\n" + frame_of(first.rpartition(b"\r\n\r\n")[2][2:].decode()))
    assert first.rpartition(b"\r\n\r\n")[2][2:].startswith(b'0{"sid":'), first


class Transport:
    """What ``WebSocketProtocol`` writes to, seen from the wire: each ``write`` call, in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def open_protocol(loop: asyncio.AbstractEventLoop | None = None) -> tuple[WebSocketProtocol, Transport]:
    """A connection past its handshake, without a server around it: only what ``write_frame`` reads;
    of ``loop``, else of the running one."""
    protocol = WebSocketProtocol.__new__(WebSocketProtocol)
    transport = Transport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.plain_frames, protocol.close_sent = True, False
    protocol.writable = Flag()  # type: ignore[assignment]
    protocol.writable.set()
    protocol.uncorking = uncorking(loop or asyncio.get_running_loop())
    return protocol, transport


def test_the_frames_of_one_loop_round_are_one_write_and_uvicorns_own_writes_go_after_them(monkeypatch):
    async def uvicorn_send(self: WebSocketProtocol, message: dict) -> None:
        self.transport.write(message["text"].encode())

    monkeypatch.setattr(WebSocketsSansIOProtocol, "send", uvicorn_send)

    async def scenario() -> None:
        protocol, transport = open_protocol()
        assert protocol.write_frame(b"a") and protocol.write_frame(b"b")
        assert transport.writes == []  # taken: written at the end of this round
        await asyncio.sleep(0)
        assert transport.writes == [b"ab"]
        # What uvicorn writes itself (a queued packet, the close) goes after what was taken before it.
        assert protocol.write_frame(b"c")
        await protocol.send({"type": "websocket.send", "text": "d"})
        await asyncio.sleep(0)
        assert transport.writes == [b"ab", b"c", b"d"]
        # A connection closed in the round (the peer's close, a keepalive timeout): nothing after it.
        assert protocol.write_frame(b"e")
        transport.closing = True
        await asyncio.sleep(0)
        assert transport.writes == [b"ab", b"c", b"d"] and not protocol.write_frame(b"f")

    run(scenario())


def test_the_frames_of_a_round_on_many_connections_are_written_by_one_callback():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        opened = [open_protocol() for _ in range(3)]
        ready = len(loop._ready)  # type: ignore[attr-defined]
        for n, (protocol, _) in enumerate(opened):
            assert protocol.write_frame(b"x%d" % n) and protocol.write_frame(b"y")
        assert len(loop._ready) == ready + 1  # type: ignore[attr-defined]  # one callback, not one a connection
        assert uncorking(loop).protocols == [protocol for protocol, _ in opened]
        await asyncio.sleep(0)
        assert [transport.writes for _, transport in opened] == [[b"x0y"], [b"x1y"], [b"x2y"]]
        assert uncorking(loop).protocols == []

    asyncio.run(scenario())  # asyncio's own loop: its ready queue is a deque to count


def test_a_loops_uncorking_goes_with_the_loop():
    loop = asyncio.new_event_loop()
    protocol, transport = open_protocol(loop)

    async def a_round() -> None:
        assert protocol.write_frame(b"x")
        await asyncio.sleep(0)

    loop.run_until_complete(a_round())
    assert transport.writes == [b"x"] and uncorking(loop).protocols == []
    probe = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert probe() is None  # the per-loop table keeps no reference to its loop


def test_messages_committed_in_other_threads_reach_the_outbox_in_order_with_one_wake_up_a_burst():
    manager = ChannelLayerManager()

    async def scenario() -> None:
        manager.loop, manager.outbox = asyncio.get_running_loop(), asyncio.Queue()
        woken: list[int] = []
        take = manager._take_handed

        def counted_take() -> None:
            woken.append(len(manager._handed))
            take()

        manager._take_handed = counted_take  # type: ignore[method-assign]
        handed = threading.Event()

        def commit() -> None:
            for i in range(8):
                manager.hand_over({"i": i})
            handed.set()

        thread = threading.Thread(target=commit)
        thread.start()
        assert handed.wait(5)  # the loop busy meanwhile (here, blocked), as under load
        thread.join(5)
        await asyncio.sleep(0.05)
        assert [manager.outbox.get_nowait()["i"] for _ in range(8)] == list(range(8))
        assert woken == [8]  # one call of the loop for the burst, not one per message

    run(scenario())


def test_the_writer_task_writes_its_packets_straight_to_the_connection_and_waits_through_the_asgi_send_else():
    """A ping, or what queued behind a backlog: framed here, as ``write_now`` frames a message, not
    handed to uvicorn's ``send`` (a dict, websockets' framing); a connection that cannot take a frame
    now (not writable) gets it through that ``send``, which waits, in order."""

    class Ws:
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.closed = False

        async def send(self, data: str) -> None:
            self.sent.append(data)

        async def close(self) -> None:
            self.closed = True

    async def scenario() -> None:
        server = EngineServer(async_mode="asgi", ping_interval=25, ping_timeout=20)
        socket, connection = websocket_socket(server)
        ws = Ws()
        writer = asyncio.ensure_future(socket._writer(ws))
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
        socket.queue.put_nowait(message('2["a"]'))
        await asyncio.sleep(0.01)
        assert connection.frames == [frame_of("2"), frame_of('42["a"]')] and ws.sent == []
        connection.writable = False
        socket.queue.put_nowait(message('2["b"]'))
        socket.queue.put_nowait(None)
        await asyncio.wait_for(writer, 1)
        assert ws.sent == ['42["b"]'] and ws.closed and len(connection.frames) == 2
        # A websocket another server serves (daphne, runserver: no ``write_frame``): all through its send.
        socket, ws = Socket(server, "s2"), Ws()
        socket.connected = socket.upgraded = True
        writer = asyncio.ensure_future(socket._writer(ws))
        for pkt in (eio_packet.Packet(eio_packet.OPEN, {"sid": "s2"}), message('2["c"]'), None):
            socket.queue.put_nowait(pkt)
        await asyncio.wait_for(writer, 1)
        assert ws.sent == ['0{"sid":"s2"}', '42["c"]'] and ws.closed

    run(scenario(), timeout=5)
