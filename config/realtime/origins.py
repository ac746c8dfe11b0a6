"""Which browser origins may open a socket: the server's own, plus ``SOCKETIO_CORS_ORIGINS``."""

from typing import Any


def cors_origins(conf: dict[str, Any]) -> Any:
    """What Engine.IO checks a browser's ``Origin`` against: the server's own origin, plus the list.

    Engine.IO allows the same origin only when given no list at all; with a list it allows
    the list alone, and the server would refuse its own pages (the live dashboard) on any
    host or port the list does not spell. Its callable form lets both hold.
    """
    origins = conf["CORS_ALLOWED_ORIGINS"]
    if origins == ["*"]:
        return "*"
    listed = frozenset(origins)

    def allowed(origin: str, environ: dict[str, Any]) -> bool:
        return origin in listed or origin in _own_origins(environ)

    return allowed


def _own_origins(environ: dict[str, Any]) -> set[str]:
    """The origin the request was made to: its ``Host``, by the scheme it came in on.

    The scheme is the one ``config.proxies`` decided (a trusted proxy's ``X-Forwarded-Proto``,
    else the connection's): Engine.IO's ``wsgi.url_scheme`` is read from the header that
    middleware rewrote, never from one a client wrote.
    """
    host = environ.get("HTTP_HOST")
    if not host:
        return set()
    return {f"{environ.get('wsgi.url_scheme', 'http')}://{host}"}
