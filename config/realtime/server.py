"""The process's python-socketio ``AsyncServer``."""

from typing import Any

import socketio
from django.conf import settings

from config.errors import ERROR_CODES
from config.realtime import asgi_driver, catalogue
from config.realtime.codec import OrjsonCodec, PacketCodec
from config.realtime.inbound import screen
from config.realtime.manager import ChannelLayerManager


class Server(socketio.AsyncServer):
    """``AsyncServer`` that screens client events before dispatch (see ``inbound``).

    ``_handle_event`` is python-socketio's single entry for client EVENT packets
    (plain and binary); overriding it is the narrowest place to refuse reserved
    names and malformed packets so that they still get an answer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(json=OrjsonCodec, **kwargs)
        # Socket.IO packets decode leniently (refusals get answers); Engine.IO keeps the strict codec.
        self.packet_class.json = PacketCodec
        # engineio picks its ASGI request and websocket classes from this table (see asgi_driver).
        self.eio._async = asgi_driver.driver(self.eio._async)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        await super()._handle_event(eio_sid, namespace, id, screen(data))

    def start(self) -> None:
        """Start the manager (its startup hooks, background tasks) now, not at the first connection.

        The ASGI lifespan calls this, so a process that no client reached yet still runs its
        periodic work (the dispatch sweep, presence, metrics gauges).
        """
        if not self.manager_initialized:
            self.manager_initialized = True
            self.manager.initialize()


def cors_origins(conf: dict[str, Any]) -> str | list[str]:
    origins = conf["CORS_ALLOWED_ORIGINS"]
    return "*" if origins == ["*"] else origins


_conf = settings.SOCKETIO

sio = Server(
    async_mode="asgi",
    client_manager=ChannelLayerManager(),
    cors_allowed_origins=cors_origins(_conf),
    ping_interval=_conf["PING_INTERVAL"],
    ping_timeout=_conf["PING_TIMEOUT"],
    max_http_buffer_size=_conf["MAX_HTTP_BUFFER_SIZE"],
    cookie={"name": _conf["SESSION_COOKIE"], "path": "/", "SameSite": "Lax", "HttpOnly": True}
    if _conf["SESSION_COOKIE"]
    else None,
    logger=False,
    engineio_logger=False,
)


def register_namespace(namespace: socketio.AsyncNamespace) -> None:
    """Attach a namespace once (the composition root calls this for each app's namespace).

    Declares what every ``BaseNamespace`` speaks: the ``error`` event and ``auth:refresh``.
    """
    if namespace.namespace in sio.namespace_handlers:
        return
    sio.register_namespace(namespace)
    names = (namespace.namespace,)
    catalogue.server_event(
        "error",
        namespaces=names,
        summary="A client event failed, or the socket is about to be disconnected (event: null)",
        payload=catalogue.obj(
            {
                "code": catalogue.enum(ERROR_CODES),
                "message": catalogue.STRING,
                "event": catalogue.nullable(catalogue.STRING),
            },
            {"retryAfter": catalogue.INTEGER, "details": {}},
        ),
    )
    catalogue.client_event(
        "auth:refresh",
        namespaces=names,
        summary="A newer access token of the same user: the socket outlives the old one's expiry",
        payload=catalogue.obj({"token": catalogue.STRING}),
        ack=catalogue.obj({"expiresAt": catalogue.TIME}),
    )
