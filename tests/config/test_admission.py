"""At most HTTP_CONCURRENCY requests run at once; the next waits a bounded time, then 503 with Retry-After."""

import asyncio
import time

from config.admission import Admission


async def call(app, path: str) -> tuple[int, dict[bytes, bytes], float]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    started = time.monotonic()
    await app({"type": "http", "path": path, "headers": []}, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), time.monotonic() - started


async def slow_app(scope, receive, send):
    await asyncio.sleep(0.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_a_request_past_the_concurrency_waits_a_bounded_time_then_is_refused():
    async def scenario():
        app = Admission(slow_app, concurrency=1, timeout=0.2, exempt=frozenset({"/readyz", "/api/auth/token/"}))
        first = asyncio.ensure_future(call(app, "/api/bookings/"))
        await asyncio.sleep(0.05)
        refused, probe, login = await asyncio.gather(
            call(app, "/api/bookings/"), call(app, "/readyz"), call(app, "/api/auth/token/")
        )
        return await first, refused, probe, login

    first, refused, probe, login = asyncio.run(scenario())
    assert first[0] == 200
    status, headers, took = refused
    assert status == 503 and headers[b"retry-after"] == b"1"
    assert took >= 0.15  # it waited for a turn (HTTP_QUEUE_TIMEOUT) before it was told, not at once
    assert probe[0] == 200 and login[0] == 200  # probes and password requests have lanes of their own
