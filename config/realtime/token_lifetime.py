"""A socket lives as long as its access token: expiry disconnects it with ``TOKEN_EXPIRED``,
and ``auth:refresh`` extends it (contract 3), re-reading the user's rights on the way.

Mixed into ``BaseNamespace``, whose ``_session_for``, ``_revoke`` and ``prune_rooms`` it uses.
"""

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from config.errors import Forbidden, TokenExpired, ValidationError
from config.formats import iso
from config.realtime import catalogue
from config.realtime.auth import Refused, decode_token
from config.realtime.emit import emit_now
from config.realtime.identity import Session, load_identity
from config.realtime.orm import db
from config.realtime.parts import Part


class Expiries:
    """Every socket's token expiry on one timer: a heap of (expiry, socket), not a timer each.

    A timer and its callback per socket cost ~0.7 KiB for the socket's life and a ``call_later``
    per connect (issue 34). ``live`` holds each socket's current expiry; a heap entry that is no
    longer it (refreshed, disconnected) is skipped when it comes up, and the heap is rebuilt
    from ``live`` when such entries outnumber the live ones.
    """

    def __init__(self) -> None:
        self.live: dict[tuple[Any, str], float] = {}  # (namespace, sid) -> its token's expiry
        self.heap: list[tuple[float, int, tuple[Any, str]]] = []
        self.order = itertools.count()  # ties in time never compare namespaces
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0  # the expiry the timer is set for
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Future[None]] = set()  # expiries under way

    def add(self, namespace: Any, sid: str, expires_at: float) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new loop (a test's): the old one's timer is gone with it
            self.loop, self.timer = loop, None
        key = (namespace, sid)
        self.live[key] = expires_at
        heapq.heappush(self.heap, (expires_at, next(self.order), key))
        if len(self.heap) > 2 * len(self.live) + 64:
            self.heap = [(at, next(self.order), key) for key, at in self.live.items()]
            heapq.heapify(self.heap)
        if self.timer is None or expires_at < self.timer_at:
            self._arm()

    def discard(self, namespace: Any, sid: str) -> None:
        self.live.pop((namespace, sid), None)
        if not self.live:
            self.heap.clear()
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.heap and self.loop is not None:
            self.timer_at = self.heap[0][0]
            self.timer = self.loop.call_later(max(0.0, self.timer_at - time.time()), self._fire)

    def _fire(self) -> None:
        self.timer = None
        now = time.time()
        while self.heap and self.heap[0][0] <= now:
            expires_at, _, key = heapq.heappop(self.heap)
            if self.live.get(key) == expires_at:
                del self.live[key]
                namespace, sid = key
                task = asyncio.ensure_future(namespace._expire(sid, expires_at))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        self._arm()


expiries = Expiries()


class TokenLifetime:
    def _schedule_expiry(self, sid: str, session: Session) -> None:
        expiries.add(self, sid, session["exp"])

    def _forget_expiry(self, sid: str) -> None:
        expiries.discard(self, sid)

    async def _expire(self, sid: str, expected_exp: float) -> None:
        if not self.server.manager.is_connected(sid, self.namespace_name):
            return
        session = await self.get_session(sid)
        if session.get("exp") != expected_exp:
            return  # refreshed in the meantime
        await emit_now(
            "error", {**TokenExpired().as_dict(), "event": None}, namespace=self.namespace_name, room=sid, local=True
        )
        await self.disconnect(sid)

    async def refresh_token(self, sid: str, payload: Any) -> dict[str, Any]:
        """``auth:refresh`` (declared below, in ``TOKEN_REFRESH``): the socket outlives the old token."""
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise ValidationError("token is required")
        try:
            user_id, expires_at = decode_token(token)
        except Refused as exc:
            code = exc.error_args["data"]["code"]
            raise (TokenExpired() if code == "TOKEN_EXPIRED" else ValidationError("token is not valid")) from exc
        session = await self.get_session(sid)
        if user_id != session["uid"]:
            raise Forbidden("the token belongs to another user")
        # A new token is no reason to keep rights the user lost since connecting.
        identity = await db(load_identity)(user_id)
        try:
            session.update(self._session_for(identity))
        except Forbidden as exc:
            # Refuse (the ack), then disconnect once the ack has left.
            reason = exc.message
            asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(self._revoke(sid, reason)))
            raise
        await self.prune_rooms(sid, session)
        if expires_at > session["exp"]:
            session["exp"] = expires_at
            self._schedule_expiry(sid, session)
        return {"expiresAt": iso(datetime.fromtimestamp(session["exp"], tz=UTC))}


# What every namespace speaks besides its parts' events (``config.realtime.namespace.compose``).
TOKEN_REFRESH = Part()


@TOKEN_REFRESH.event(
    "auth:refresh",
    summary="A newer access token of the same user: the socket outlives the old one's expiry",
    payload=catalogue.obj({"token": catalogue.STRING}),
    ack=catalogue.obj({"expiresAt": catalogue.TIME}),
)
async def _auth_refresh(namespace: TokenLifetime, sid: str, payload: Any) -> dict[str, Any]:
    return await namespace.refresh_token(sid, payload)
