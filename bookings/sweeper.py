"""The booking clock: every second, every server process sweeps due bookings (lapsed offers,
searches to retry) and folds the booking tallies (``bookings.tallies``).

A deadline in the database rather than a timer in memory: it survives a restart,
and ``dispatch_sweep`` takes each due booking under ``FOR UPDATE SKIP LOCKED``, so
however many processes sweep, each booking is handled once. No job library: the
work is one indexed query a second, and the lifecycle's row lock already serialises
it against a late ``booking:accept``. Lapsed offers go before retries, and what a sweep
leaves for the next is the ``homeservices_dispatch_backlog`` gauge.
"""

import asyncio
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError

from bookings import tallies
from bookings.services import dispatch_backlog, dispatch_sweep
from config import metrics
from config.realtime.orm import db

logger = logging.getLogger(__name__)


async def sweep_forever() -> None:
    while True:
        await asyncio.sleep(settings.DISPATCH_SWEEP_INTERVAL)
        try:
            await db(dispatch_sweep)()
            metrics.DISPATCH_BACKLOG.set(await db(dispatch_backlog)())
            await db(tallies.fold)()
        except asyncio.CancelledError:
            raise
        except (OperationalError, InterfaceError) as exc:  # the database is away: the next sweep retries
            logger.warning("the booking clock could not reach the database (%s)", exc)
        except Exception:
            logger.exception("the booking clock failed")
