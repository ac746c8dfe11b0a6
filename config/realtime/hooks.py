"""What a server process runs besides answering: control handlers, startup and shutdown hooks.

Registered by the composition root (``config/asgi.py``) and read by the manager; nothing
registers itself when a module is imported. A control message's handler runs as a task of its
own (``run_control``): one that waits on the database never holds the broker listener, nor
the outbox, and with them every room's delivery; except an ``ordered`` one, which the messages
after it wait for, and which therefore waits on nothing (``rechecks.access_changed_received``
holds its user's sockets and reads in a task: ``config.realtime.holding``).

The tasks are bounded: at most ``CONTROL_TASKS_MAX`` per method (``start_task``). A flood of
controls (a bulk change of thousands of partners while the database hangs) would otherwise be a
task, a coroutine and a waiting read each, for as long as the database does not answer.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from config import metrics
from config.realtime.orm import log_failure

if TYPE_CHECKING:
    from config.realtime.manager import ChannelLayerManager

ControlHandler = Callable[["ChannelLayerManager", dict[str, Any]], Awaitable[None]]
StartupHook = Callable[["ChannelLayerManager"], None]
ShutdownHook = Callable[["ChannelLayerManager"], Awaitable[None]]
StoppedReport = Callable[[], str | None]
logger = logging.getLogger(__name__)
_control_handlers: dict[str, tuple[ControlHandler, bool]] = {}  # method: (handler, ordered)
_startup_hooks: list[StartupHook] = []
_shutdown_hooks: list[ShutdownHook] = []
_stopped_reports: list[StoppedReport] = []
_controls: set[asyncio.Task[None]] = set()  # the handlers running now, cancelled by ``stop_controls``
_running: dict[str, int] = {}  # method: its tasks running now
_shedding: set[str] = set()  # methods past their bound since they last had no task running (logged once)
CONTROL_TASKS_MAX = 1000


def on_control(method: str, *, ordered: bool = False) -> Callable[[ControlHandler], ControlHandler]:
    """Register the handler of a control message ``method`` (run on every process).

    ``ordered``: what comes after the message waits until its handler ends (a user's rights
    changed: nothing sent after the change reaches a socket that lost them, as with one process).
    Others run as tasks, so a handler waiting on the database holds no delivery.

    A dependency it finds unavailable (``orm.unavailable``: the database, a batched read not
    answered) is one warning without a traceback, as an event's ``UNAVAILABLE`` is: nobody waits
    for an answer, and the periodic work (``reconcile_relays``, the rechecks) catches up. Any
    other failure is one error with its traceback.
    """

    def register(handler: ControlHandler) -> ControlHandler:
        async def handled(manager: "ChannelLayerManager", message: dict[str, Any]) -> None:
            # Logged here, ordered or not: the same line whichever loop (the broker listener, the
            # outbox) or task ran it, and nothing raised into the loop that carries the messages.
            try:
                await handler(manager, message)
            except Exception as exc:
                log_failure(logger, f"control {method}", exc)

        _control_handlers[method] = (handled, ordered)
        return handler

    return register


def on_startup(hook: StartupHook) -> StartupHook:
    """Register a function called once the server's loop runs (start background tasks there)."""
    _startup_hooks.append(hook)
    return hook


def on_shutdown(hook: ShutdownHook) -> ShutdownHook:
    """Register a coroutine run once when the process stops (write what is buffered, withdraw state)."""
    _shutdown_hooks.append(hook)
    return hook


def on_stopped(report: StoppedReport) -> StoppedReport:
    """Register what a stop asks at its very end, once the shutdown hooks had their last try: what
    is still unwritten (a hung database), as a sentence naming what is lost or left for the next
    process; ``None`` when nothing is. Each answer is one warning."""
    _stopped_reports.append(report)
    return report


async def run_control(manager: "ChannelLayerManager", method: str, message: dict[str, Any]) -> None:
    """Run the handler of the control ``method`` (if one is registered): an ordered one to its end,
    any other as a task of its own.

    Tasks start in the order their messages came, so each handler's first step (up to its first
    wait) runs in that order; one that reads the database after a commit takes its own lock
    (``bookings.relay.refresh_relay``: per partner, asked for in arrival order).
    """
    handler, ordered = _control_handlers.get(method, (None, False))
    if handler is None:
        return
    if ordered:  # never shed here: its handler keeps the bound itself (``admitted``), failing closed
        await handler(manager, message)
        return
    if admitted(method):
        start_task(method, handler(manager, message))


def admitted(method: str) -> bool:
    """Whether one more task of ``method`` fits under ``CONTROL_TASKS_MAX``; if not, the refusal is
    counted, and logged once until the method's tasks have all ended.

    A method shed here is one whose periodic work catches up (``partner_bookings``: the relay
    reconcile; ``presence``: the next heartbeat); an ordered one answers a refusal itself."""
    if _running.get(method, 0) < CONTROL_TASKS_MAX:
        return True
    metrics.child(metrics.CONTROLS_SHED, method).inc()
    if method not in _shedding:
        _shedding.add(method)
        logger.warning(
            "control %s: %d handlers running (CONTROL_TASKS_MAX), the next are refused", method, CONTROL_TASKS_MAX
        )
    return False


def start_task(method: str, work: Awaitable[None]) -> "asyncio.Task[None]":
    """Run ``work`` as a control task of ``method`` (admitted first: ``admitted``), cancelled by a stop."""
    task = asyncio.get_running_loop().create_task(work, name=f"control {method}")  # type: ignore[arg-type]
    _running[method] = _running.get(method, 0) + 1
    _controls.add(task)
    task.add_done_callback(lambda done: _ended(method, done))
    return task


def _ended(method: str, task: "asyncio.Task[None]") -> None:
    _controls.discard(task)
    _running[method] -= 1
    if not _running[method]:
        del _running[method]
        _shedding.discard(method)


async def stop_controls(within: float) -> None:
    """The end of a stop: the handlers still running are cancelled, and awaited ``within`` seconds
    at most (what the stop has left): one that goes on waiting after its cancellation does not
    hold the process past its deadline."""
    running = list(_controls)
    for task in running:
        task.cancel()
    if not running:
        return
    _, pending = await asyncio.wait(running, timeout=max(0.0, within))
    if pending:
        logger.warning("stopping: %d control handlers did not end in time, abandoned", len(pending))


def startup_hooks() -> list[StartupHook]:
    return list(_startup_hooks)


def shutdown_hooks() -> list[ShutdownHook]:
    return list(_shutdown_hooks)


def stopped_reports() -> list[StoppedReport]:
    return list(_stopped_reports)
