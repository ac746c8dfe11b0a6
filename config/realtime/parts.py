"""An app's part of a namespace: the client events it handles, each declared once, and its hooks.

An app writes each event's name once, in the decorator that records its handler, schema
and options::

    jobs = Part()

    @jobs.event("booking:accept", summary="...", payload=..., ack=...)
    async def accept(namespace: BaseNamespace, sid: str, payload: Any) -> dict[str, Any]: ...

The composition root (``config/asgi.py``) builds each namespace from parts
(``config.realtime.namespace.compose(name, role=..., parts=(...))``); registering it puts its events in the
catalogue (``config.realtime.server.register_namespace``), which the AsyncAPI document and
the TypeScript package read. No part sets an option of another part's event: an event's
options are fields of its declaration.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from config.realtime.catalogue import Schema
from config.realtime.identity import Session
from config.realtime.orm import log_failure, warn_if_unavailable

if TYPE_CHECKING:
    from config.realtime.namespace import BaseNamespace


# What the server and recovery ask of a composed namespace (``BaseNamespace`` is both); a plain
# python-socketio namespace is neither: it is connected without the cheap checks, and a
# recovered session gets none of its rooms back. Named, so that a rename fails a test
# (tests/realtime/test_parts.py) instead of turning a check off.
@runtime_checkable
class AdmitsConnects(Protocol):
    def admit_connect(self, environ: dict[str, Any]) -> None: ...


@runtime_checkable
class RestoresRooms(Protocol):
    async def restorable_rooms(self, sid: str, rooms: list[str]) -> tuple[list[str], list[str]]: ...


logger = logging.getLogger(__name__)


# A handler returns the ack's extra fields (or ``None``) and raises ``DomainError`` to refuse.
Handler = Callable[["BaseNamespace", str, Any], Awaitable[dict[str, Any] | None]]
Hook = Callable[["BaseNamespace", str, Session], Awaitable[None]]
Qualify = Callable[[dict[str, Any]], None]
PermittedRooms = Callable[..., list[str]]


# The most a refused connect's undo (``undo_connected``) may take. It runs once the connect is over
# (past CONNECT_TIMEOUT, or a read not answered), before the client gets its refusal: the hooks it
# runs are in memory today (a partner's offline write is presence's batched one), so a few seconds
# is room to spare, and a hook that came to wait on a dependency cannot hold the answer for ever.
UNDO_SECONDS = 3.0

# Refusals of a ``keeps_socket`` event in one rate window before its socket goes: a thumb pressing
# SOS again and again stays far below (10 a second for the whole window).
KEPT_SOCKET_REFUSALS = 100


@dataclass(frozen=True)
class ClientEvent:
    name: str
    handle: Handler
    payload: Schema
    summary: str
    ack: Schema | None = None
    # Its handler needs no database: never refused for ORM load (``OrmLoad.busy``), and run in
    # the socket's read loop, without a task of its own (``Server._handle_event``): it must await
    # nothing but local sends, since the socket reads nothing else meanwhile.
    lightweight: bool = False
    # The name of the rate limit it counts against (``settings.RATE_LIMITS``), when it shares one.
    rate_key: str | None = None
    # Past its limit it is refused (fewer answers each window), but a socket that keeps sending it
    # is disconnected only past KEPT_SOCKET_REFUSALS refusals in a window, not at twice its limit:
    # a person calling for help keeps the line (an SOS), a script flooding for ever does not.
    # Within its limit it is never shed under ORM load (``OrmLoad.busy``): it waits for a thread.
    keeps_socket: bool = False


class Part:
    """What one app brings to a namespace.

    ``qualify(identity)`` raises ``Forbidden`` when the user may not use the namespace (no I/O:
    it runs at connect, on ``auth:refresh`` and on every access change). ``permitted_rooms(session,
    joined, *, finished=False)`` says which of the rooms this part's handlers joined the user
    may be in now (``BaseNamespace.permitted_rooms``). ``connected`` hooks run together
    (``together``: none may count on another's) after the socket joined its user room;
    ``disconnected`` hooks, in the order the parts are given, when it goes. A connect refused
    after a part's ``connected`` ran to its end (another part's read not answered) runs that
    part's ``disconnected`` too, as its undo: it must leave nothing behind either way.
    """

    def __init__(
        self,
        *,
        qualify: Qualify | None = None,
        permitted_rooms: PermittedRooms | None = None,
    ) -> None:
        self.events: dict[str, ClientEvent] = {}
        self.qualify = qualify
        self.permitted_rooms = permitted_rooms
        self.connected: Hook | None = None
        self.disconnected: Hook | None = None

    def event(
        self,
        name: str,
        *,
        summary: str,
        payload: Schema,
        ack: Schema | None = None,
        lightweight: bool = False,
        rate_key: str | None = None,
        keeps_socket: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a client event and record the decorated function as its handler."""

        def record(handle: Handler) -> Handler:
            if name in self.events:
                raise ValueError(f"{name} is declared twice in one part")
            self.events[name] = ClientEvent(name, handle, payload, summary, ack, lightweight, rate_key, keeps_socket)
            return handle

        return record

    def on_connected(self, hook: Hook) -> Hook:
        if self.connected is not None:  # a second one would silently replace the first
            raise ValueError("a part has one connected hook")
        self.connected = hook
        return hook

    def on_disconnected(self, hook: Hook) -> Hook:
        if self.disconnected is not None:
            raise ValueError("a part has one disconnected hook")
        self.disconnected = hook
        return hook


class PartHooks:
    """The parts' connected and disconnected hooks, run by a composed namespace (``BaseNamespace``)."""

    parts: tuple[Part, ...]
    namespace_name: str

    async def on_connected(self, sid: str, session: Session, done: list[Part] | None = None) -> None:
        """Runs on the loop after the socket joined its user room. The parts' hooks run together: each
        waits on reads of its own (a partner's newest fix, their relay list), which a connect waited
        for one after the other (issue 34: a database round trip more per partner connect). Each part
        whose hook ran to its end is added to ``done``, whose hooks a refused connect undoes
        (``undo_connected``): with the hooks together, one may end before another fails."""

        async def run(part: Part) -> None:
            await part.connected(self, sid, session)
            if done is not None:
                done.append(part)

        await together([run(part) for part in self.parts if part.connected is not None])

    async def undo_connected(self, sid: str, session: Session, done: list[Part]) -> None:
        """A connect refused after some parts' ``connected`` hooks ran: their ``disconnected`` hooks undo
        them (a partner's newest fix held for the relay, ``partners.sockets``), as the socket's disconnect
        would have, which never comes. Run after presence forgot the socket: a hook sees whether another
        socket of the user is still here. A failure is logged and does not replace the refusal; nor
        does the undo's bound (``UNDO_SECONDS``), past which what is left is logged and left."""
        what = f"undoing the refused connect of {self.namespace_name} {sid}"
        try:
            async with asyncio.timeout(UNDO_SECONDS):
                for part in done:
                    if part.disconnected is None:
                        continue
                    try:
                        await part.disconnected(self, sid, session)
                    except Exception as exc:
                        log_failure(logger, what, exc)
        except TimeoutError:
            logger.warning("%s: not done within %s s, left", what, UNDO_SECONDS)

    async def on_disconnected(self, sid: str, session: Session) -> None:
        """Runs on the loop when the socket goes; leave nothing behind. A dependency down (``unavailable``) is
        one warning, no traceback, and the next part's hook still runs: what was not written catches up (a
        partner gone is written offline at once by presence's batched write, ``presence.remove``, tried again
        until the database answers; the heartbeat never renews them). A bug is raised on (engineio logs it)."""
        for part in self.parts:
            try:
                if part.disconnected is not None:
                    await part.disconnected(self, sid, session)
            except Exception as exc:
                if not warn_if_unavailable(logger, f"disconnect of {self.namespace_name} {sid}", exc):
                    raise


async def together(hooks: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``hooks`` at once, the first in the caller's task (a lone hook costs no task). The first
    failure, whichever hook's, cancels the others and is raised as it is (not as a group); the
    caller's cancel (``CONNECT_TIMEOUT``, a stopping process) cancels them all."""
    if not hooks:
        return
    first, *others = hooks
    if not others:
        await first
        return
    try:
        async with asyncio.TaskGroup() as group:
            for hook in others:
                group.create_task(hook)
            await first
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
