"""ASGI entry point and composition root: ``/socket.io/`` goes to python-socketio, the rest to Django.

This module lists everything a server process runs: the namespaces, the control messages
it handles, its background tasks and its shutdown hooks; only delivery's own tasks (the
listener, the outbox drain, the lanes) start with the manager, since nothing works without
them. The apps' pieces are attached here, so ``config.realtime`` knows no app, and
importing any other module starts nothing.
"""

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.production import refuse_unsafe, warn_at_start  # noqa: E402
from config.realtime import access_tokens  # noqa: E402

refuse_unsafe()  # no server with DEBUG off and a secret or host missing, nor on the try-it database
access_tokens.refuse_unusable_settings()  # a SIMPLE_JWT no socket could connect with, DEBUG or not
warn_at_start()  # with DEBUG off: what the apps' start checks find (demo logins), as warnings

import socketio  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from bookings import relay  # noqa: E402
from bookings.sockets import customer_bookings, partner_jobs  # noqa: E402
from bookings.sweeper import sweep_forever  # noqa: E402
from config import rooms  # noqa: E402
from config.admission import Admission  # noqa: E402
from config.body_limit import BodyLimit  # noqa: E402
from config.proxies import TrustedProxies  # noqa: E402
from config.realtime import faults, limits, presence  # noqa: E402
from config.realtime.hooks import on_control, on_shutdown, on_startup, on_stopped  # noqa: E402
from config.realtime.identity import set_identity_loader  # noqa: E402
from config.realtime.namespace import compose  # noqa: E402
from config.realtime.rechecks import access_changed_received, recheck_forever  # noqa: E402
from config.realtime.server import register_namespace, sio  # noqa: E402
from config.realtime.tuning import diagnostics_enabled, start_loop_diagnostics, tune_gc_after_startup  # noqa: E402
from dashboard.sockets import admin, push_stats  # noqa: E402
from messaging.safety import escalate_forever  # noqa: E402
from messaging.sockets import chat, safety_alerts, safety_desk  # noqa: E402
from partners import tracking  # noqa: E402
from partners.access import socket_identities  # noqa: E402
from partners.sockets import partner  # noqa: E402

# ---------------------------------------------------------------- the namespaces
# Each app brings a part: the events of its own rules, each declared once with its options.
# Chat comes first, so its goodbye (typing indicators off) runs before the others'.
NAMESPACES = (
    # Track and cancel bookings (bookings), chat and safety alerts (messaging).
    compose(rooms.CUSTOMER, role="customer", parts=(chat, customer_bookings, safety_alerts)),
    # Offers, jobs and the location relay (bookings), who may connect and availability (partners), chat, alerts.
    compose(rooms.PARTNER, role="partner", parts=(chat, partner_jobs, partner, safety_alerts)),
    # Who may connect, figures and the bookings monitor (dashboard), chat, acknowledging alerts (messaging).
    compose(rooms.ADMIN, role="admin", parts=(chat, admin, safety_desk)),
)

# ---------------------------------------------------------------- what a server process runs
# Everything below is all a server process does besides answering: nothing starts because
# a module was imported.
set_identity_loader(socket_identities)
for namespace in NAMESPACES:
    register_namespace(namespace)
if settings.TEST_FAULTS:  # the tests' /faults namespace: handlers that raise on purpose
    faults.register(sio)
# Connected partners are dispatchable: presence keeps their ``online_until`` ahead.
presence.keep_online(rooms.PARTNER, tracking.record_online)

# Control messages every process handles (config/realtime/manager.py carries them).
on_control("access_changed", ordered=True)(access_changed_received)  # a user's rights changed: recheck their sockets
on_control("presence")(presence.presence_received)  # another process's users
on_control("partner_bookings")(relay.partner_bookings_received)  # refresh a partner's relay list

# Background tasks, started once the loop runs. The manager starts delivery's own first (the
# listener, the outbox drain, one lane per broker shard: config/realtime/manager.py), which run
# to the very end of a stop; these are periodic work, cancelled first when the process stops.
on_startup(lambda manager: manager.start_task(sweep_forever()))  # dispatch sweep, tally folding
on_startup(lambda manager: manager.start_task(recheck_forever(manager)))  # rights vs the database
on_startup(lambda manager: manager.start_task(limits.sweep_forever()))  # expired rate windows
on_startup(lambda manager: manager.start_task(presence.heartbeat(manager)))  # who is online, cluster-wide
on_startup(lambda manager: manager.start_task(tracking.flush_forever()))  # last locations, trace points, in batches
on_startup(lambda manager: manager.start_task(tracking.prune_forever()))  # fixes past TRACE_RETENTION_DAYS
on_startup(lambda manager: manager.start_task(relay.reconcile_forever(manager)))  # relay lists vs the database
on_startup(lambda manager: manager.start_task(push_stats(manager)))  # the dashboard's figures
on_startup(lambda manager: manager.start_task(escalate_forever()))  # safety alerts sent again until acknowledged
on_startup(lambda manager: manager.start_task(manager.trim_recovery_log()))  # events past the recovery window
if diagnostics_enabled():  # LOOP_DIAGNOSTICS=1: loop stalls and GC pauses logged
    on_startup(start_loop_diagnostics)

# At shutdown, before the manager hands over its queues.
on_shutdown(tracking.flush_on_stop)  # buffered locations and trace points written
on_shutdown(presence.withdraw)  # this process's users offline now, not when the heartbeat lapses
# At the stop's end, what a hung database left unwritten: one warning each.
on_stopped(tracking.locations.unwritten)
on_stopped(presence.left_online)


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


def started_by_any_request(app: Any) -> Any:
    """daphne (``runserver`` is daphne's) speaks no ASGI lifespan: there the first request of
    any kind, not only the first socket, starts the periodic work (the dispatch sweep, presence)
    that uvicorn's lifespan starts at once."""

    def serve(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # Returns the call to await: no frame of this wrapper is held for a websocket's life.
        if scope["type"] != "lifespan":
            sio.start()  # once: it returns at once when the manager runs
        return app(scope, receive, send)

    return serve


application = started_by_any_request(application)
# Outermost, who the client is: forwarding headers from TRUSTED_PROXIES only (config/proxies.py).
application = TrustedProxies(application)
tune_gc_after_startup()
