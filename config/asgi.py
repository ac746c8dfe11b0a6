"""ASGI entry point: ``/socket.io/`` goes to python-socketio, the rest to Django."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

import socketio  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from config.realtime.server import register_namespaces, sio  # noqa: E402
from config.realtime.tuning import tune_gc_after_startup  # noqa: E402

register_namespaces()
application = socketio.ASGIApp(sio, other_asgi_app=get_asgi_application(), socketio_path="socket.io")
tune_gc_after_startup()
