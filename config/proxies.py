"""Who the client is, decided in one place (contract 10.2): forwarding headers from trusted proxies only.

A proxy in front (HAProxy in ``make cluster``) connects to the server itself, so the peer of
every request is the proxy; the client's address and the scheme it used arrive in
``X-Forwarded-For`` and ``X-Forwarded-Proto``. Anyone can send those headers, so they say
something only when the peer is one of ``TRUSTED_PROXIES`` (addresses or networks): then
uvicorn's ``ProxyHeadersMiddleware`` sets the scope's ``client`` (the first address from the
right that is not a trusted proxy) and ``scheme``. Whoever the peer, the forwarding headers
are then taken out of the scope and ``X-Forwarded-Proto`` is set to the scheme decided here,
so nothing downstream (Django's ``REMOTE_ADDR`` and ``request.is_secure()``, Engine.IO's
``wsgi.url_scheme``, the per-address limits, ``/metrics``' allow-list) can read what a
client wrote.

The server's own proxy-header handling is off wherever the project starts it (uvicorn's
``--no-proxy-headers``): its default trusts ``X-Forwarded-For`` from 127.0.0.1 whatever the
settings say.
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# What a client may write to pose as someone else; ``Forwarded`` (RFC 7239) is read by nothing
# here, and dropped so that nothing added later reads it unchecked.
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"forwarded"})


class TrustedProxies:
    """ASGI middleware: the scope's client and scheme, from forwarding headers of trusted peers only."""

    def __init__(self, app: Any, trusted: Iterable[str] | None = None) -> None:
        """``trusted``: the proxies; ``None`` reads ``settings.TRUSTED_PROXIES`` at each request
        (a test changes it for the server it runs in-process)."""
        self.app = app
        self.trusted = None if trusted is None else tuple(trusted)
        self._readers: dict[tuple[str, ...], Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await self._reader(self.trusted if self.trusted is not None else tuple(settings.TRUSTED_PROXIES))(
            scope, receive, send
        )

    def _reader(self, trusted: tuple[str, ...]) -> Any:
        reader = self._readers.get(trusted)
        if reader is None:
            entries = [entry.strip() for entry in trusted if entry.strip()]
            # An empty list trusts nobody (uvicorn's middleware would read "" as no host at all).
            reader = ProxyHeadersMiddleware(self._forward, trusted_hosts=entries) if entries else self._forward
            self._readers[trusted] = reader
        return reader

    def _forward(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """The application's call with the headers decided here, to be awaited by the caller.

        The scope is the connection's own (the server builds one per request and keeps none
        after handing it over; uvicorn's ``ProxyHeadersMiddleware`` writes to it too): its
        headers are replaced in place, and no frame of this middleware stays on the stack, so a
        websocket holds no copy of its scope and no frame of ours for its life (~1.5 KiB, issue 34).
        """
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        headers = [(name, value) for name, value in scope.get("headers", ()) if name not in FORWARDING_HEADERS]
        headers.append((b"x-forwarded-proto", scheme.encode()))
        scope["headers"] = headers
        return self.app(scope, receive, send)
