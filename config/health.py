"""Health endpoints for load balancers and orchestrators (contract 8.4).

Hand-written rather than a health-check package: readiness here means this
process's own state (is it stopping?) plus its two dependencies, checked with
short timeouts so a probe never hangs on an outage, and nothing more.
"""

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.errors import Unavailable
from config.realtime.server import sio

PROBE_TIMEOUT = 2.0
# A probe's answer is reused this long: a load balancer per process, a scraper and an
# orchestrator probing every second cost the dependencies one check a second, not one each.
READY_CACHE_SECONDS = 1.0
_ready: dict[str, Any] = {"at": -READY_CACHE_SECONDS, "checks": {}}
_redis: dict[str, Any] = {}


async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database and channel layer reachable, and the process is not stopping."""
    if time.monotonic() - _ready["at"] >= READY_CACHE_SECONDS:
        _ready["checks"] = {
            "database": await _probe(sync_to_async(_database, thread_sensitive=False)()),
            "channelLayer": await _probe(_channel_layer()),
        }
        _ready["at"] = time.monotonic()
    checks = {"accepting": not sio.manager.stopping, **_ready["checks"]}  # stopping shows at once
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
    await _redis_client().ping()


def _redis_client() -> Any:
    """One client per process and event loop: a probe borrows a pooled connection, never opens one."""
    loop = asyncio.get_running_loop()
    if _redis.get("loop") is not loop:
        import redis.asyncio as redis

        _redis["loop"] = loop
        _redis["client"] = redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT, max_connections=2
        )
    return _redis["client"]
