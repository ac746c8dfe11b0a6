"""ASGI entry point and composition root: ``/socket.io/`` goes to python-socketio, the rest to Django.

The apps' namespaces are attached here, so ``config.realtime`` knows no app.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.production import refuse_unsafe  # noqa: E402

refuse_unsafe()  # no server with DEBUG off and a secret or host missing

import socketio  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from bookings.sockets import CustomerNamespace  # noqa: E402
from bookings.sweeper import sweep_forever  # noqa: E402
from config.admission import Admission  # noqa: E402
from config.body_limit import BodyLimit  # noqa: E402
from config.realtime.manager import on_startup  # noqa: E402
from config.realtime.namespace import recheck_forever, set_identity_loader  # noqa: E402
from config.realtime.server import register_namespace, sio  # noqa: E402
from config.realtime.tuning import tune_gc_after_startup  # noqa: E402
from dashboard.sockets import AdminNamespace  # noqa: E402
from partners.access import socket_identities  # noqa: E402
from partners.sockets import PartnerNamespace  # noqa: E402

set_identity_loader(socket_identities)
for namespace in (CustomerNamespace, PartnerNamespace, AdminNamespace):
    register_namespace(namespace(namespace.namespace_name))
on_startup(lambda manager: manager.start_task(sweep_forever()))
on_startup(lambda manager: manager.start_task(recheck_forever(manager)))


# Lifespan (uvicorn --lifespan on): start the periodic work at once; at shutdown write what is
# buffered, withdraw presence, hand over queues.
application = BodyLimit(
    socketio.ASGIApp(
        sio,
        other_asgi_app=Admission(
            get_asgi_application(),
            concurrency=settings.HTTP_CONCURRENCY,
            timeout=settings.HTTP_QUEUE_TIMEOUT,
            exempt=frozenset({"/healthz", "/readyz", "/metrics", *settings.PASSWORD_PATHS}),
        ),
        socketio_path="socket.io",
        on_startup=sio.start,
        on_shutdown=sio.manager.shutdown,
    ),
    # Socket.IO's long-polling POSTs carry packets: its own limit; everything else Django's.
    limit=lambda path: (
        settings.SOCKETIO["MAX_HTTP_BUFFER_SIZE"]
        if path.startswith("/socket.io/")
        else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    ),
)
tune_gc_after_startup()
