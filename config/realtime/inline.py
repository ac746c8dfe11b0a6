"""A client's event dispatched and answered through the layers it needs, not through all of python-socketio's.

python-socketio takes a client event through a task of its own (``async_handlers``),
``_handle_event_internal``, ``_trigger_event`` (which looks for decorator handlers, then the
namespace's) and, for its ack, ``_send_packet``, engineio's ``send`` and ``send_packet`` and the
socket's ``send``: seven coroutines an event before and after the handler. Here (issue 34):

- An event its namespace runs inline (``inline_events``: a lightweight event, which awaits no
  database) is handled in the socket's read (``config.realtime.eager``), its namespace's
  ``trigger_event`` called directly when no decorator handler could take it (the product
  registers none), without the task python-socketio starts for each event.
- Its ack is written to the websocket at once where nothing can be ahead of it (``outbound``);
  anywhere else (a long-poll, a backlog, a recovering connection's hold) it goes python-socketio's way.

Inline, the socket reads its next frame once the handler returns, so a handler that awaited
something slow would hold that socket's reads: only handlers that await nothing but local sends
run so. A socket's lightweight events are handled in the order sent; an event with a task of its
own may start after a lightweight one sent just after it (its task only starts first, and gives
way at its first await).

Mixed into ``config.realtime.server.Server``; written so that python-socketio's
``_handle_event`` could take the same shortcut for a class-based namespace upstream.
"""

from typing import Any

from engineio import packet as eio_packet
from socketio import packet

from config.realtime.inbound import ACK_WANTED, screen
from config.realtime.outbound import WritesNow


class InlineEvents:
    """``_handle_event`` and ``_handle_event_internal`` of a python-socketio ``AsyncServer``, and ``answer``."""

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """python-socketio's dispatch of a client event, screened (``inbound``); an inline one here."""
        data = screen(data)
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):  # dropped, logged once a session (``strays``)
            self.stray(eio_sid, namespace, "event")
            return
        handler = self.namespace_handlers.get(namespace)
        if data[0] not in getattr(handler, "inline_events", ()) or namespace in self.handlers or "*" in self.handlers:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        ACK_WANTED.set(id is not None)
        # A cancellation propagates unanswered, as python-socketio's _trigger_event lets it for a
        # namespace's handler (its ``ret = None`` is for decorator handlers only); the reader swallows it.
        answer = await handler.trigger_event(data[0], sid, *data[1:])
        if id is not None and answer != self.not_handled:
            await self.answer(eio_sid, namespace, id, answer)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> None:
        # An event's own task (python-socketio's way): the namespace reads whether an ack was
        # asked for (one answer), so it is set for each event.
        ACK_WANTED.set(id is not None)
        await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)

    async def answer(self, eio_sid: str, namespace: str, id: int, answer: Any) -> None:
        """The ACK python-socketio sends for a handler's ``answer``, written at once where it can be."""
        data = [] if answer is None else list(answer) if isinstance(answer, tuple) else [answer]
        # binary=False: an answer is the catalogue's JSON (no walk looking for bytes in it).
        pkt = self.packet_class(packet.ACK, namespace=namespace, id=id, data=data, binary=False)
        if not self.recovering.watching(eio_sid):
            socket = self.eio.sockets.get(eio_sid)
            if isinstance(socket, WritesNow) and socket.write_now(eio_packet.Packet(eio_packet.MESSAGE, pkt.encode())):
                return
        await self._send_packet(eio_sid, pkt)
