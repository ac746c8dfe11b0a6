"""A socket lives as long as its access token: expiry disconnects it with ``TOKEN_EXPIRED``,
and ``auth:refresh`` extends it (contract 3), re-reading the user's rights on the way.

Mixed into ``BaseNamespace``, whose ``_session_for``, ``_revoke`` and ``prune_rooms`` it uses.
"""

import asyncio
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


class TokenLifetime:
    def _schedule_expiry(self, sid: str, session: Session) -> None:
        old = session.pop("expiry", None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        expires_at = session["exp"]
        delay = max(0.0, expires_at - time.time())
        session["expiry"] = loop.call_later(delay, lambda: asyncio.ensure_future(self._expire(sid, expires_at)))

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
