"""A packet out at the cost of a packet, not of a task, a queue hop and a frame per recipient.

python-socketio delivers a room emit by starting a task per recipient and waiting for them
all; engineio puts each packet in the socket's queue and wakes its writer task, which hands
uvicorn a ``websocket.send`` dict, which encodes the text and frames it, recipient by
recipient. Here (issue 34):

- ``EmitsOnce.emit_once``: a room emit without acks makes one Socket.IO packet, one Engine.IO
  packet and one frame (built at the first socket that takes it) for all its recipients:
  they share the namespace and the payload, and an offset (``recovery``) is the emit's, the
  same for all. The recipients are served in one loop, no task each.
- ``WritesNow.write_now``: a ``MESSAGE`` to a websocket whose writer task waits on an empty
  queue, and whose connection is writable, is written to the connection at once
  (``websocket_protocol.WebSocketProtocol.write_frame``). Whatever may be ahead of it keeps
  engineio's way, in order: a backlog (where the send-queue bounds count), an upgrade, a
  long-poll, a close under way, a ping overdue (``engine.Socket.send`` closes that socket),
  a recovering connection's hold (``recovering.Recoveries.intercept``). Pings keep the
  queue too: they wake the writer, whose wait for a packet ends the connection after
  ``ping_interval + ping_timeout``.
"""

import time
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet

from config.realtime.frames import frame_of


class SharedPacket(eio_packet.Packet):
    """A ``MESSAGE`` for every recipient of a room emit: encoded once (engineio caches it), framed once."""

    framed: bytes | None = None

    def frame(self) -> bytes:
        if self.framed is None:
            self.framed = frame_of(self.encode())
        return self.framed


class WritesNow:
    """Mixed into ``engine.Socket`` (an engineio ``AsyncSocket``): ``write_now``."""

    write_frame: Callable[[bytes], bool] | None = None  # its websocket's, while one serves it (``engine.WebSocket``)
    dropped = False  # set by ``EngineServer.drop``: nothing more is sent

    def write_now(self, pkt: Any) -> bool:
        """Write ``pkt`` to the websocket now if nothing can be ahead of it; ``False``: it was not
        written, and goes engineio's way (``send``, its queue and writer task)."""
        write = self.write_frame
        if (
            write is None
            or pkt.packet_type != eio_packet.MESSAGE
            or self.dropped
            or self.closing
            or self.upgrading
            or not self.upgraded
            or not self.queue.awaited()
        ):
            return False
        last_ping = self.last_ping
        if last_ping and time.time() - last_ping > self.server.ping_timeout:
            return False
        return write(pkt.frame() if isinstance(pkt, SharedPacket) else frame_of(pkt.encode()))

    def write_queued(self) -> None:
        """Write what engineio queued before its websocket opened (a websocket from the start: its
        OPEN packet) now, with the handshake's response (``WebSocketProtocol.send``): its writer
        task would send it a round later, in a write of its own. A close (``None``) stays queued."""
        write, queue = self.write_frame, self.queue
        while write is not None and not queue.empty() and queue._items[0] is not None:
            if not write(frame_of(queue._items[0].encode())):
                break  # a connection closing, or the round's frames at their bound: the writer task's
            queue.get_nowait()
            queue.task_done()


class EmitsOnce:
    """Mixed into ``manager.ChannelLayerManager`` (a python-socketio ``AsyncPubSubManager``): ``emit_once``."""

    async def emit_once(self, message: dict[str, Any]) -> None:
        """What ``AsyncManager.emit`` does with a pub/sub ``message`` without callback or binary data."""
        namespace = message.get("namespace")
        if namespace not in self.rooms:
            return
        data = message["data"]
        if data == [None]:
            data = []  # as python-socketio sends ``emit(event, None)``: the event alone
        skip = message.get("skip_sid")
        skip = skip if isinstance(skip, list) else [skip]
        room = message.get("room")
        recipients = [eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip]
        if not recipients:  # a user's room in a namespace they are not connected to: most of a chat message's emits
            return
        server = self.server
        # python-socketio's encoding of an EVENT without id or binary data (``Packet.encode``;
        # the caller sends binary data its way, ``_handle_emit``), without a Packet to hold it.
        encoded = server.packet_class.json.dumps([message["event"], *data])
        pkt = SharedPacket(eio_packet.MESSAGE, ("2" if namespace == "/" else f"2{namespace},") + encoded)
        sockets, recovering = server.eio.sockets, server.recovering
        others = []
        for eio_sid in recipients:
            socket = sockets.get(eio_sid)
            if not isinstance(socket, WritesNow) or recovering.watching(eio_sid) or not socket.write_now(pkt):
                others.append(eio_sid)
        for eio_sid in others:  # last: each socket gets one packet of the emit, none overtakes another
            await server._send_eio_packet(eio_sid, pkt)
