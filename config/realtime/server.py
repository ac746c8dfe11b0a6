"""The process's python-socketio ``AsyncServer`` and its namespaces."""

import socketio
from django.conf import settings

from config.realtime.codec import OrjsonCodec
from config.realtime.manager import ChannelLayerManager

_conf = settings.SOCKETIO

sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=ChannelLayerManager(),
    cors_allowed_origins=_conf["CORS_ALLOWED_ORIGINS"] if _conf["CORS_ALLOWED_ORIGINS"] != ["*"] else "*",
    json=OrjsonCodec,
    ping_interval=_conf["PING_INTERVAL"],
    ping_timeout=_conf["PING_TIMEOUT"],
    max_http_buffer_size=_conf["MAX_HTTP_BUFFER_SIZE"],
    logger=False,
    engineio_logger=False,
)


def register_namespaces() -> None:
    """Attach each app's namespace (imported late: they import models)."""
    from bookings.sockets import CustomerNamespace
    from dashboard.sockets import AdminNamespace
    from partners.sockets import PartnerNamespace

    for namespace in (CustomerNamespace, PartnerNamespace, AdminNamespace):
        if namespace.namespace_name not in sio.namespace_handlers:
            sio.register_namespace(namespace(namespace.namespace_name))
