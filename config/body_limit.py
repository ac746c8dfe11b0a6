"""Every HTTP body is bounded before it is buffered (contract 9.1).

Django checks ``Content-Length`` against ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when a view
reads the body, and its ASGI handler first spools the whole body to a file; a chunked body
(no ``Content-Length``) is read to its end whatever its size. Engine.IO's long-polling
reads a whole POST before it checks its size too. This middleware, around the whole ASGI
application, refuses a declared length past the limit before reading anything, and stops
reading an undeclared one as soon as it passes the limit: 413, the contract's error body.

Hand-written: a few lines of ASGI, and no kept package does just this.
"""

from typing import Any

import orjson

Scope = dict[str, Any]


class BodyLimit:
    """ASGI middleware: at most ``limit(path)`` bytes of request body."""

    def __init__(self, app: Any, limit: Any) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        """The call to await: a websocket goes straight to the application (no frame of ours
        held for its life), a request through ``_bounded``."""
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Any, send: Any) -> None:
        limit = self.limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = refused = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the application the client went away: it stops reading
                    # (Django raises RequestAborted, Engine.IO drops the request) and what it
                    # may still send is dropped below.
                    refused = True
                    if not started:
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, bounded_receive, tracked_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Any, limit: int) -> None:
    body = {"code": "VALIDATION_ERROR", "message": f"the request body is over {limit} bytes"}
    await send_json(send, 413, body, [(b"connection", b"close")])


async def send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    """An ASGI response with the contract's JSON body, sent without the application."""
    data = orjson.dumps(body)
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*base, *headers]})
    await send({"type": "http.response.body", "body": data})
