"""engineio's environ for an ASGI request, less what it keeps for a connection's life for nothing.

- ``translate_request`` (engineio's ASGI driver) defines a class per request for its body, whose
  ``read`` closes over the request's ASGI ``receive``: a cycle as old as the connection, freed only
  by a full collection (``config.realtime.engine``'s docstring). Here the body is ``RequestBody``.
- A websocket's environ lives as long as the connection; once it is open, ``forget_headers``
  drops what nothing reads any more (issue 34, docs/performance.md "Idle memory per socket").

Installed in engineio's ASGI table by ``config.realtime.engine.EngineServer``.
"""

from typing import Any

from engineio.async_drivers import asgi

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


def forget_headers(environ: dict[str, Any]) -> None:
    """Drop from a websocket's environ, which lives as long as the connection, the strings nothing
    reads once it is open (issue 34): each header's two (``HTTP_X``, its value), but the token's
    (``auth.token_from``); the address is read from the scope (uvicorn holds it anyway), whose
    headers went into the environ at the connect and are read no more either."""
    for key in [k for k in environ if k.startswith("HTTP_") and k != "HTTP_AUTHORIZATION"]:
        del environ[key]
    environ.pop("RAW_URI", None)
    environ.pop("wsgi.input", None)  # a websocket has no body: the connect event, held
    scope = environ.get("asgi.scope")
    if scope is not None:
        scope["headers"] = ()
    # A dict keeps its table when keys go: refilled, it takes one the size of what is left.
    kept = dict(environ)
    environ.clear()
    environ.update(kept)
