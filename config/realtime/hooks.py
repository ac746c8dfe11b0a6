"""What a server process runs besides answering: control handlers, startup and shutdown hooks.

Registered by the composition root (``config/asgi.py``) and read by the manager; nothing
registers itself when a module is imported.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from config.realtime.orm import unavailable

if TYPE_CHECKING:
    from config.realtime.manager import ChannelLayerManager

ControlHandler = Callable[["ChannelLayerManager", dict[str, Any]], Awaitable[None]]
StartupHook = Callable[["ChannelLayerManager"], None]
ShutdownHook = Callable[["ChannelLayerManager"], Awaitable[None]]
logger = logging.getLogger(__name__)
_control_handlers: dict[str, ControlHandler] = {}
_startup_hooks: list[StartupHook] = []
_shutdown_hooks: list[ShutdownHook] = []


def on_control(method: str) -> Callable[[ControlHandler], ControlHandler]:
    """Register the handler of a control message ``method`` (run on every process).

    A dependency it finds unavailable (``orm.unavailable``: the database, a batched read not
    answered) is one warning without a traceback, as an event's ``UNAVAILABLE`` is: nobody waits
    for an answer, and the periodic work (``reconcile_relays``, the rechecks) catches up.
    """

    def register(handler: ControlHandler) -> ControlHandler:
        async def handled(manager: "ChannelLayerManager", message: dict[str, Any]) -> None:
            try:
                await handler(manager, message)
            except Exception as exc:
                if not unavailable(exc):
                    raise
                logger.warning("control %s: a dependency is unavailable (%r)", method, exc)

        _control_handlers[method] = handled
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


def control_handler(method: str) -> ControlHandler | None:
    return _control_handlers.get(method)


def startup_hooks() -> list[StartupHook]:
    return list(_startup_hooks)


def shutdown_hooks() -> list[ShutdownHook]:
    return list(_shutdown_hooks)
