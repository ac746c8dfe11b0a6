"""Packets for a namespace the session is not connected to: dropped unanswered, one log line a session.

python-socketio logs a WARNING for each: "<sid> is not connected to namespace /x" for an event, "Unknown
callback received, ignoring." for an ack nobody waits for. So a client that keeps sending on a namespace
it never joined, left, or was disconnected from (its flood cut it, its token expired) wrote a line a
packet: a flood of the log (issue 34, contract 10.1). An ack with id 0 reached the counter python-socketio
keeps under that id, and raised.

No answer: there is no socket in that namespace to answer (the contract's ack and ``error`` are a connected
socket's, section 3). The official client sends nothing for a namespace it is not connected to (it buffers
until it is), and once the server disconnected one it listens there no more. Node's socket.io closes the
connection at the first such packet ("invalid state"); here the few a client had in flight when the
server disconnected the namespace are let go, and a session that keeps sending them is closed at
``REFUSALS_PER_SESSION`` (counted ``strays``), as one whose connects keep being refused: a client that
keeps going is disconnected. The count starts anew when the session joins a namespace (its in-flight
packets settled: a long-lived connection is not closed for the strays of its lifetime). The first of a
session, and the first after each joining, is logged at INFO; the rest only counted.

Mixed into ``config.realtime.server.Server``, whose ``_count_refusal_and_close_at_limit`` counts and closes.
"""

import logging
from typing import Any

logger = logging.getLogger(__name__)


class StrayPackets:
    """``_handle_ack`` of a python-socketio ``AsyncServer``, and ``stray`` for its events."""

    async def _handle_ack(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """python-socketio's, for an ack the server waits for; any other is a stray."""
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        # Ack ids start at 1: python-socketio keeps the sid's id counter under 0.
        waited = self.manager.callbacks.get(sid, ()) if self.manager.is_connected(sid, namespace) else ()
        if not id or id not in waited:
            self.stray(eio_sid, namespace, "ack")
            return
        await self.manager.trigger_callback(sid, id, data)

    def stray(self, eio_sid: str, namespace: str, kind: str) -> None:
        """A packet (``kind``: event, ack) for ``namespace`` that no socket of the session takes."""
        if self._count_refusal_and_close_at_limit(eio_sid, "strays") == 1:
            logger.info(
                "connection %s: an %s for %s, where it has no socket, dropped (further ones only counted)",
                eio_sid,
                kind,
                namespace,
            )
