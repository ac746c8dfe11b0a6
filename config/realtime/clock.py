"""A server process's clocks: periodic work that must outlive any one failure.

Each clock (the booking sweep, the buffered positions' flush, the traces' retention, the safety
alerts' escalation, the relay lists' reconcile) is started by the composition root; a tick that
fails is logged and the next one tries again, so a database that is away costs one warning line
per tick, not the clock.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)


async def every(seconds: float, tick: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run ``tick`` every ``seconds``, for ever; ``name`` says which clock in the log."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except (OperationalError, InterfaceError) as exc:  # the database is away: the next tick retries
            logger.warning("%s could not reach the database (%s)", name, exc)
        except Exception:
            logger.exception("%s failed", name)
