"""uvicorn's websockets-sansio protocol, without the cycle that outlives each connection.

``websockets``' sans-I/O ``ServerProtocol`` parses with a generator stored on the
protocol (``self.parser = self.parse()``), and the suspended generator's frame refers
back to the protocol: a reference cycle as old as the connection. Under the tuned
collector (``config/realtime/tuning.py``) such old cycles wait for a full collection,
and each one holds its connection's buffers and permessage-deflate state: under
connection churn the process grew by ~25 KiB per closed connection (docs/performance.md).

When the connection is lost: feed the protocol the end of the stream
(``receive_eof``, the library's own idempotent API), which takes the parser to its
last ``yield`` (websockets keeps it suspended there for good and never steps it
after EOF), then close that generator. A closed generator holds no frame, so
refcounting frees the connection at once.

Use: ``uvicorn --ws config.realtime.websocket_protocol:WebSocketProtocol`` (as
``make serve`` does).
"""

import contextlib

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        with contextlib.suppress(Exception):  # best effort: the connection is gone either way
            self.conn.receive_eof()
            self.conn.parser.close()
