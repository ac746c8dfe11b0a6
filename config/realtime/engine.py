"""python-engineio's server, less what it keeps per connection for nothing.

Two reference cycles per connection, found with ``gc.DEBUG_SAVEALL`` under connection
churn (docs/performance.md, "Memory under churn"); both kept a closed connection's
whole protocol stack (uvicorn's protocol, the websockets state machine, buffers)
alive until a full collection:

- ``translate_request`` (its ASGI driver) defines a class per request; the class's
  ``read`` closes over the request's ASGI ``receive``, and a class is always a cycle.
  The environ (and so the class) lives as long as the connection, long enough to
  reach the oldest GC generation, where the tuned collector seldom looks.
- ``WebSocket.wait`` raises ``OSError`` when the client goes; the exception's
  traceback holds the frames that hold the task that holds the exception.

And one cost of idle memory: each socket's send queue is an ``asyncio.Queue`` (about
3 KiB, empty nearly all the time); here it is a ``primitives.Mailbox``.

All replaced in a subclass (python-socketio's ``_engineio_server_class`` hook), not
patched into the library: the same names, the same behaviour.
"""

from typing import Any

import engineio
from engineio.async_drivers import asgi

from config.realtime.primitives import Mailbox

_NO_BODY_YET = object()


class RequestBody:
    """The request body as engineio reads it (``environ['wsgi.input'].read``), without a per-request class."""

    __slots__ = ("event", "payload", "receive")

    def __init__(self, event: dict[str, Any], receive: Any) -> None:
        self.event = event
        self.receive = receive
        self.payload: Any = _NO_BODY_YET

    async def read(self, length: int | None = None) -> bytes:
        if self.payload is _NO_BODY_YET:
            self.payload = b""
            if self.event["type"] == "http.request":
                self.payload = self.event.get("body") or b""
                while self.event.get("more_body"):
                    self.event = await self.receive()
                    if self.event["type"] == "http.request" and (length is None or len(self.payload) < length):
                        self.payload += self.event.get("body") or b""
        if length is None:
            body, self.payload = self.payload, b""
        else:
            body, self.payload = self.payload[:length], self.payload[length:]
        return body


async def translate_request(scope: dict[str, Any], receive: Any, send: Any) -> dict[str, Any]:
    environ = await asgi.translate_request(scope, receive, send)
    original = environ.get("wsgi.input")
    if original is not None:
        environ["wsgi.input"] = RequestBody(original.event, receive)
        # The throwaway class now closes over nothing: a small cycle, collected young.
        for member in vars(type(original)).values():
            for cell in getattr(member, "__closure__", None) or ():
                cell.cell_contents = None
    return environ


class WebSocket(asgi.WebSocket):
    async def wait(self) -> Any:
        """The next message, or ``None`` once the client has gone (engineio's "connection closed").

        During an upgrade engineio reads packets outside its receive loop and expects
        ``OSError`` for a client that went away; there the old behaviour stays (no task
        is involved, so no cycle).
        """
        event = await self.asgi_receive()
        if event["type"] != "websocket.receive":
            if getattr(getattr(self.handler, "__self__", None), "upgrading", False):
                raise OSError("the client went away during the upgrade")
            return None
        if event.get("bytes") is not None:
            return event["bytes"]
        return event.get("text")


class EngineServer(engineio.AsyncServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # engineio picks its ASGI request and websocket classes from this table.
        self._async = {**self._async, "translate_request": translate_request, "websocket": WebSocket}

    def create_queue(self, *args: Any, **kwargs: Any) -> Mailbox:
        return Mailbox()
