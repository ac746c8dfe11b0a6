"""The base of the three namespaces: JWT on connect, rights that follow the user, acks and errors.

A namespace is built from the apps' parts (``config.realtime.parts``): an event is handled
by the handler its part declared under that name. A handler returns the ack's extra
fields (or ``None``) and raises ``DomainError`` to refuse; the base turns either into the
contract's ack ``{ok, ...}`` / ``{ok: false, error}`` and, on failure, an ``error`` event.
Per-socket state lives in the socket's session only: namespaces are singletons.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import socketio
from django.conf import settings

from config import metrics
from config.errors import DomainError, Forbidden, RateLimited, Unavailable, ValidationError
from config.realtime import catalogue
from config.realtime.auth import Refused, client_address, decode_token, token_from
from config.realtime.emit import emit_now
from config.realtime.identity import Session, access_changed_since, identities, user_room
from config.realtime.inbound import ACK_WANTED, EVENT_SESSION, RejectedEvent
from config.realtime.limits import count_connect, limiter
from config.realtime.orm import OrmLoad, unavailable, warn_if_unavailable
from config.realtime.parts import KEPT_SOCKET_REFUSALS, ClientEvent, Part, PartHooks
from config.realtime.presence import presence
from config.realtime.rights import RoomRights
from config.realtime.token_lifetime import TOKEN_REFRESH, TokenLifetime

logger = logging.getLogger(__name__)
# One line per refused connect or failed event: who (user id, sid) and what (namespace,
# event, code), never the payload (it may hold addresses, phone numbers, messages).
outcomes = logging.getLogger("config.realtime.outcomes")


# Past RATE_LIMITED a socket gets this many answers per rate window, then none; one whose refusals
# in a window reach the limit itself (it sends at twice its limit) is disconnected.
ANSWERS_PAST_LIMIT = 3


class BaseNamespace(PartHooks, TokenLifetime, RoomRights, socketio.AsyncNamespace):
    """Built by ``compose`` from the apps' parts."""

    # The name, ours: python-socketio's ``self.namespace`` holds the same, but reading it would be
    # one more library internal to pin (tests/config/test_overrides.py).
    namespace_name: str
    role: str  # the session's "role": who this namespace's users are
    parts: tuple[Part, ...]  # in order: their disconnect hooks run in it
    client_events: dict[str, ClientEvent]  # every part's, by name
    # The lightweight ones, which the server runs in the socket's read loop (``Server._handle_event``).
    inline_events: frozenset[str]

    # ------------------------------------------------------------ the parts' hooks
    def qualify(self, identity: dict[str, Any]) -> None:
        """Refuse with ``Forbidden`` when ``identity`` may not use this namespace (every part's rule). Checked
        at connect, on ``auth:refresh`` and whenever the user's access changes (``access_changed``): no I/O."""
        for part in self.parts:
            if part.qualify is not None:
                part.qualify(identity)

    # ------------------------------------------------------------ connect / disconnect
    def admit_connect(self, environ: dict[str, Any]) -> None:
        """The cheap checks of a connect, which the server runs before any Redis call, token
        check or query (recovery's included): the process is not stopping, the address's limit."""
        try:
            if self.server.manager.stopping:
                raise Refused("UNAVAILABLE", "The server is restarting; reconnect")
            count_connect(f"address:{client_address(environ)}", "connect:address")
        except Refused as exc:
            self._report_connect_refusal(None, exc)
            raise

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            await self._connect(sid, environ, auth)
        except Refused as exc:
            self._report_connect_refusal(sid, exc)
            raise
        except Exception as exc:  # a fault (a bug) is refused too: raised on, python-socketio would not answer
            logger.exception("connect of %s failed", self.namespace_name)  # nor take the socket out of its rooms
            refused = Refused("INTERNAL_ERROR", "The connect failed; retry later")
            self._report_connect_refusal(sid, refused)
            raise refused from exc

    def _report_connect_refusal(self, sid: str | None, refused: Refused) -> None:
        """A refused connect in the metrics and the outcome log; the session itself is the server's
        (``Server._count_refusal_and_close_at_limit`` closes one that keeps being refused)."""
        code = refused.error_args["data"]["code"]
        metrics.CLIENT_EVENTS.labels(self.namespace_name, "connect", code).inc()
        self._log_outcome("connect refused", sid, None, "connect", code)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        # The process's stop and the address's limit were checked first (``admit_connect``).
        token = token_from(auth, environ)
        if token is None:
            raise Refused("AUTH_REQUIRED", "An access token is required (auth.token)")
        user_id, expires_at = decode_token(token)
        count_connect(user_id, "connect")
        try:  # the whole connect, the parts' reads included: under load answered UNAVAILABLE in time
            async with asyncio.timeout(settings.SOCKETIO["CONNECT_TIMEOUT"]):
                await self._join(sid, user_id, expires_at)
        except Exception as exc:  # past CONNECT_TIMEOUT, or a read (the user, a part's) not answered
            if isinstance(exc, TimeoutError) or unavailable(exc):
                raise Refused("UNAVAILABLE", "The server is busy; retry with backoff") from exc
            raise

    async def _join(self, sid: str, user_id: int, expires_at: float) -> None:
        read_at = time.monotonic()
        session = {**(await self._checked_session(user_id)), "exp": expires_at}
        await self.save_session(sid, session)
        presence.add(self.namespace_name, user_id)
        self._schedule_expiry(sid, session)
        done: list[Part] = []  # the parts whose connected hook ran
        try:
            await self.enter_room(sid, user_room(user_id))
            if access_changed_since(user_id, read_at):
                # The user's access changed while we read it: the control that announced it may
                # have reached this process before the socket was in its user room. Read again.
                session = {**(await self._checked_session(user_id)), "exp": expires_at}
                await self.save_session(sid, session)
            await self.on_connected(sid, session, done)
        except BaseException:
            # A refusal (python-socketio leaves the rooms) or a cancel (CONNECT_TIMEOUT, a stopping process): undone.
            # A cancelled connect's socket stays connected to python-socketio: its disconnect must not count again.
            self._forget_expiry(sid)
            presence.remove(self.namespace_name, user_id)
            await self.undo_connected(sid, session, done)
            session.pop("uid", None)
            raise

    async def _checked_session(self, user_id: int) -> Session:
        """The user's session; ``_connect`` answers a read not answered, or past ``CONNECT_TIMEOUT``."""
        identity = await identities.get(user_id)
        try:
            return self._session_for(identity)
        except DomainError as exc:
            raise Refused("FORBIDDEN", exc.message) from exc

    def _session_for(self, identity: dict[str, Any] | None) -> Session:
        if identity is None or not identity["is_active"]:
            raise Forbidden("This account is not active")
        self.qualify(identity)
        uid, named = identity["uid"], ("username", "first_name", "last_name", "is_staff")
        return {"uid": uid, "user_id": str(uid), **{field: identity[field] for field in named}, "role": self.role}

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._forget_expiry(sid)  # whether or not its session is still there
        try:
            session = await self.get_session(sid)
        except KeyError:  # its Engine.IO session went first (a stopping process, a transport gone): nothing left
            logger.info("disconnect of %s %s: its session was gone already", self.namespace_name, sid)
            return
        if "uid" in session:
            presence.remove(self.namespace_name, session["uid"])
            await self.on_disconnected(sid, session)

    # ------------------------------------------------------------ events
    def _session_now(self, sid: str) -> Session | None:
        """python-socketio's ``get_session`` without its three coroutines (about 1.4 µs of every
        client event): the same lookups in the same order; ``None`` where it raises ``KeyError``."""
        server = self.server
        try:
            socket = server.eio._get_socket(server.manager.eio_sid_from_sid(sid, self.namespace_name))
        except KeyError:
            return None
        return socket.session.setdefault(self.namespace_name, {})

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect") and not isinstance(event, RejectedEvent):  # not a client's "connect"
            return await super().trigger_event(event, *args)
        sid = args[0]
        session = self._session_now(sid)
        if session is None:  # the socket went while this packet waited (a flood cut it): nobody to answer
            return self.server.not_handled
        if isinstance(event, RejectedEvent):
            return await self._refuse_unhandled(session, sid, event, event.reason, "rejected")
        EVENT_SESSION.set(session)
        payload = args[1] if len(args) > 1 else None
        # Only the declared name reaches a handler: "booking_status:update" is not
        # "booking:status_update" (nor a way around its rate limit).
        declared = self.client_events.get(event)
        label = metrics.event_label(event, declared is not None)
        if declared is None:
            return await self._refuse_unhandled(session, sid, event, f"unknown event {event[:64]!r}", label)
        if len(args) > 2:  # every client event carries one payload, whether or not it asks for an ack
            return await self._refuse_unhandled(session, sid, event, "an event carries one payload", label)
        measured = metrics.event_metrics(self.namespace_name, label, declared.lightweight)
        started = measured.start()
        rate_key = declared.rate_key or event
        try:  # per-user rate limit, then load shedding: refused at once, so heartbeats and relays keep flowing
            limiter.hit(session["uid"], rate_key)
            if not (declared.lightweight or declared.keeps_socket) and OrmLoad.busy():  # an SOS waits its turn
                raise Unavailable("The server is busy; retry shortly")
            problem = catalogue.payload_problem(self.namespace_name, event, payload)
            if problem is not None:
                field, rule = problem
                raise ValidationError(f"{field} breaks the event's schema ({rule})", details={field: [rule]})
            if not declared.lightweight and self.server.manager.held and sid in self.server.manager.held:
                await self.server.manager.until_released(sid)  # its rights being read: served with the new
                if (session := self._session_now(sid)) is None:  # refused meanwhile
                    return self.server.not_handled
                EVENT_SESSION.set(session)
            result = await declared.handle(self, sid, payload)
        except DomainError as exc:
            return await self._fail(sid, event, exc, label, rate_key)
        except Exception as exc:
            if warn_if_unavailable(logger, f"{self.namespace_name} {event}", exc):
                return await self._fail(sid, event, Unavailable(), label)
            logger.exception("handler for %s failed", event)
            return await self._fail(sid, event, DomainError("The server could not handle this event"), label)
        finally:
            measured.stop(started)
        measured.ok.inc()
        return {"ok": True, **(result or {})}

    async def _refuse_unhandled(self, session: Session, sid: str, event: str, reason: str, label: str) -> Any:
        """A packet no handler takes still counts against the sender's limit: refusals are not free to flood."""
        try:
            limiter.hit(session["uid"], "default")
        except RateLimited as limited:
            return await self._fail(sid, event, limited, label, "default")
        return await self._fail(sid, event, ValidationError(reason), label, "default")

    def _log_outcome(self, what: str, sid: str | None, user_id: str | None, event: str | None, code: str) -> None:
        if code == RateLimited.code:
            return  # counted in metrics; one log line per refused event would let a client flood the logs
        level = logging.WARNING if code in ("INTERNAL_ERROR", "UNAVAILABLE") else logging.INFO
        fields = {"namespace": self.namespace_name, "event": event, "user_id": user_id, "sid": sid, "code": code}
        outcomes.log(level, "%s: %s %s %s", what, self.namespace_name, event or "-", code, extra=fields)

    async def _fail(
        self, sid: str, event: str, exc: DomainError, label: str, rate_key: str | None = None
    ) -> dict[str, Any] | object:
        """One answer to a refused event: its ack when the client asked for one, else one ``error``.

        Past RATE_LIMITED the answers thin out (``_past_limit``): no answer is the server's
        ``not_handled``, which python-socketio acks with nothing.
        """
        metrics.CLIENT_EVENTS.labels(self.namespace_name, label, exc.code).inc()
        try:
            session = await self.get_session(sid)
        except KeyError:  # the socket went while its event ran: the answer reaches nobody
            session = {}
        limited = isinstance(exc, RateLimited) and rate_key is not None and session
        if limited and not await self._past_limit(sid, session, rate_key, self.client_events.get(event)):
            return self.server.not_handled
        self._log_outcome("event failed", sid, session.get("user_id"), label, exc.code)
        error = exc.as_dict()
        if not ACK_WANTED.get():
            await emit_now("error", {**error, "event": str(event)}, namespace=self.namespace_name, room=sid, local=True)
        return {"ok": False, "error": error}

    async def _past_limit(self, sid: str, session: Session, rate_key: str, declared: Any) -> bool:
        """Count a RATE_LIMITED refusal of the socket; whether it is still answered.

        ``ANSWERS_PAST_LIMIT`` answers per rate window; a socket refused as many times as its limit in one
        window (twice the limit sent) is told so and disconnected (``keeps_socket``: ``KEPT_SOCKET_REFUSALS``).
        """
        limit, window = limiter.limit_of(rate_key)
        index = int(time.time() // window)
        refused = session.setdefault("refused", {})
        seen_index, count = refused.get(rate_key, (index, 0))
        count = count + 1 if seen_index == index else 1
        refused[rate_key] = (index, count)
        kept = declared is not None and declared.keeps_socket
        if count >= (KEPT_SOCKET_REFUSALS if kept else max(limit, ANSWERS_PAST_LIMIT + 1)):
            refused.pop(rate_key)
            metrics.CONNECTION_BOUNDS.labels("rate_flood").inc()
            message = f"Over {'the refusals allowed' if kept else 'twice the limit'} of {rate_key}"
            payload = {"code": RateLimited.code, "message": message, "event": None}
            await emit_now("error", payload, namespace=self.namespace_name, room=sid, local=True)
            await self.disconnect(sid)
            return False
        return count <= ANSWERS_PAST_LIMIT


def compose(name: str, *, role: str, parts: Sequence[Part]) -> BaseNamespace:
    """The namespace ``name`` whose users are ``role``, made of ``parts`` (their hooks run in
    this order) and of what every namespace speaks (``auth:refresh``). An event two parts declare is
    refused: each event has one owner, who alone sets its options."""
    namespace = BaseNamespace(name)
    namespace.namespace_name = name
    namespace.role = role
    namespace.parts = (*parts, TOKEN_REFRESH)
    namespace.client_events = {}
    for part in namespace.parts:
        for event, declared in part.events.items():
            if event in namespace.client_events:
                raise ValueError(f"{name}: {event} is declared by two parts")
            namespace.client_events[event] = declared
    namespace.inline_events = frozenset(name for name, e in namespace.client_events.items() if e.lightweight)
    return namespace
