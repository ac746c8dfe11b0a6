"""The one entry point every server event goes through.

Services call :func:`emit` (or :func:`control`) inside their transaction; the
message leaves only after the transaction commits. Grepping for ``emit(``
lists every event source in the product. Hot paths that write nothing (the
location relay) call :func:`emit_now` from the event loop instead.

A message is python-socketio's own pub/sub message, so the client manager of
every server process (``manager.ChannelLayerManager``) delivers it unchanged.
"""

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

from config.realtime.codec import roundtrip

logger = logging.getLogger(__name__)

Message = dict[str, Any]

# Test hook: a callable that sees every message as it is handed over.
_observers: list[Callable[[Message], None]] = []


def emit(event: str, payload: Any, *, namespace: str, room: str | list[str]) -> None:
    """Send ``event`` to ``room`` of ``namespace`` once the current transaction commits."""
    message = emit_message(event, payload, namespace=namespace, room=room)
    transaction.on_commit(partial(deliver, message), robust=True)


def control(method: str, *, at_commit: Callable[[], dict[str, Any]] | None = None, **fields: Any) -> None:
    """Send a control message (kick a user, refresh a partner's bookings) after commit. ``at_commit``
    adds fields known only once the transaction committed (read on the committing thread)."""
    message = {"method": method, **roundtrip(fields)}
    if at_commit is None:
        transaction.on_commit(partial(deliver, message), robust=True)
    else:
        transaction.on_commit(lambda: deliver({**message, **at_commit()}), robust=True)


def close_room(room: str, *, namespace: str) -> None:
    """Empty ``room`` on every process once the current transaction commits (after its last events)."""
    message = {"method": "close_room", "room": room, "namespace": namespace}
    transaction.on_commit(partial(deliver, message), robust=True)


async def emit_now(event: str, payload: Any, *, namespace: str, room: str | list[str], local: bool = False) -> None:
    """Send at once from the event loop: for relays and replies that change no data.

    The payload must already be plain JSON (a builder of floats and strings):
    the hot path skips the call-site round trip. ``local=True`` reaches only this
    process's sockets (a reply to one socket, figures every process computes itself).
    """
    # dispatch_many, not dispatch: one coroutine less an update (dispatch only wraps it in a list).
    await _server().manager.dispatch_many([_message(event, payload, namespace=namespace, room=room)], local=local)


@functools.cache
def _server() -> Any:
    """The Socket.IO server, imported on first use, not at the top: no cycle, but importing this module
    (every service does) must not build it in processes that never deliver (migrations, a shell).
    Cached: an import statement in the relay's path cost about 1 µs an update (``_handle_fromlist``)."""
    from config.realtime.server import sio

    return sio


def emit_message(event: str, payload: Any, *, namespace: str, room: str | list[str]) -> Message:
    return _message(event, roundtrip(payload), namespace=namespace, room=room)


def _message(event: str, payload: Any, *, namespace: str, room: str | list[str]) -> Message:
    return {
        "method": "emit",
        "event": event,
        "data": [payload],
        "binary": False,
        "namespace": namespace,
        "room": room,
        "skip_sid": None,
        "callback": None,
    }


def deliver(message: Message) -> None:
    """Hand a message to this process's Socket.IO server, or publish it for the others.

    Runs in whatever thread committed: a socket handler's ORM thread, a REST
    view, an admin action, a management command.
    """
    for observer in _observers:
        observer(message)
    manager = _server().manager
    loop: asyncio.AbstractEventLoop | None = getattr(manager, "loop", None)
    if loop is not None and loop.is_running() and not loop.is_closed():
        if _on_loop_thread(loop):
            manager.outbox.put_nowait(message)
        else:
            manager.hand_over(message)
        return
    # No Socket.IO server runs here (WSGI, a management command, a shell):
    # publish on the Channels layer for the processes that have sockets.
    try:
        async_to_sync(manager.publish_external)(message)
    except Exception:  # best effort: the change is committed, clients resync on reconnect
        logger.exception("could not publish %s to the channel layer", message.get("event") or message["method"])


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    thread_id = getattr(loop, "_thread_id", None)
    return thread_id == threading.get_ident()
