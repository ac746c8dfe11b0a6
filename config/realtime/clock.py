"""A server process's clocks: periodic work that must outlive any one failure.

Each clock (the booking sweep, the buffered positions' flush, the traces' retention, the safety
alerts' escalation, the relay lists' reconcile, the recovery log's trim) is started by the
composition root; a tick that fails is logged and the next one tries again. A database or Redis
that is away is one warning when the ticks start failing and one line when one goes through again
(``config.realtime.outages``), not a line per tick; any other failure is an error each time.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from config.realtime.outages import OutageLog

logger = logging.getLogger(__name__)


async def every(seconds: float, tick: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run ``tick`` every ``seconds``, for ever; ``name`` says which clock in the log."""
    outage = OutageLog(logger, name)
    while True:
        await asyncio.sleep(seconds)
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()
