"""The booking clock: every second, every server process sweeps due bookings (lapsed offers,
searches to retry) and folds the booking tallies (``bookings.tallies``).

A deadline in the database rather than a timer in memory: it survives a restart,
and ``dispatch_sweep`` takes each due booking under ``FOR UPDATE SKIP LOCKED``, so
however many processes sweep, each booking is handled once. No job library: the
work is one indexed query a second, and the lifecycle's row lock already serialises
it against a late ``booking:accept``. Lapsed offers go before retries, and what a sweep
leaves for the next is the ``homeservices_dispatch_backlog`` gauge.
"""

from django.conf import settings

from bookings import tallies
from bookings.services import dispatch_backlog, dispatch_sweep
from config import metrics
from config.realtime.clock import every
from config.realtime.orm import db


async def sweep_once() -> None:
    # The backlog's count (one statement) first: most ticks find nothing due, and then take no
    # lock, where the sweep's two transactions and its own hand-off to a database thread ran each time.
    backlog = await db(dispatch_backlog)()
    if backlog:
        await db(dispatch_sweep)()
        backlog = await db(dispatch_backlog)()
    metrics.DISPATCH_BACKLOG.set(backlog)
    await db(tallies.fold)()


async def sweep_forever() -> None:
    await every(settings.DISPATCH_SWEEP_INTERVAL, sweep_once, "the booking clock")
