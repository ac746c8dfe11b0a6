"""How many HTTP requests a process runs at once (contract 9.5): a bounded wait, then 503.

Django's ASGI handler runs every synchronous view in a thread of its own, however many
arrive: fifty requests in flight are fifty threads taking turns at the GIL with the event
loop, which then answers sockets and relays late, while each of them waits for a pooled
database connection anyway. Here at most ``HTTP_CONCURRENCY`` requests run at once; the
next wait up to ``HTTP_QUEUE_TIMEOUT`` seconds for a turn, then get 503 ``UNAVAILABLE`` with
``Retry-After``, so nothing waits unanswered behind a queue it cannot see.

Not counted: Socket.IO (its own admission: ``SOCKETIO_DB_QUEUE_MAX``), the probes (a
saturated process must still say so), and the requests that hash a password (bounded by
the hashing pool, ``config.hashing``, which refuses past its own queue: counting them here
too would let a login storm take every turn from the cheap requests).

Hand-written: a semaphore in a dozen lines of ASGI; a server's own limit (uvicorn's
``--limit-concurrency``) answers 503 at once, without a wait, and counts websockets too.
"""

import asyncio
from typing import Any

from config.body_limit import send_json


class Admission:
    def __init__(self, app: Any, *, concurrency: int, timeout: float, exempt: frozenset[str]) -> None:
        self.app = app
        self.turns = asyncio.Semaphore(concurrency)
        self.timeout = timeout
        self.exempt = exempt  # paths, exactly

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.turns.acquire(), self.timeout)
        except TimeoutError:
            retry_after = max(1, round(self.timeout))
            body = {"code": "UNAVAILABLE", "message": "The server is busy; retry shortly", "retryAfter": retry_after}
            await send_json(send, 503, body, [(b"retry-after", str(retry_after).encode())])
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.turns.release()
