"""Health endpoints for load balancers and orchestrators (contract 8.4).

Hand-written rather than a health-check package: readiness here means this
process's own state (is it stopping?) plus its two dependencies, checked with
short timeouts so a probe never hangs on an outage, and nothing more.
"""

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.errors import Unavailable
from config.realtime.server import sio

PROBE_TIMEOUT = 2.0


async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database and channel layer reachable, and the process is not stopping."""
    checks = {
        "accepting": not sio.manager.stopping,
        "database": await _probe(sync_to_async(_database, thread_sensitive=False)()),
        "channelLayer": await _probe(_channel_layer()),
    }
    if all(checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    error = Unavailable("not ready: " + ", ".join(name for name, ok in checks.items() if not ok))
    return JsonResponse({**error.as_dict(), "details": checks}, status=error.http_status)


async def _probe(check: Any) -> bool:
    try:
        await asyncio.wait_for(check, timeout=PROBE_TIMEOUT)
    except Exception:
        return False
    return True


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # back to the pool: a probe holds nothing


async def _channel_layer() -> None:
    if not settings.REDIS_URL:
        return  # the in-memory layer is this process
    import redis.asyncio as redis

    client = redis.from_url(settings.REDIS_URL, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()
