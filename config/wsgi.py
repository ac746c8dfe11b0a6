"""WSGI entry point for REST/admin-only deployments; events still reach sockets via the Channels layer."""

import os

from django.core.wsgi import get_wsgi_application

from config.production import refuse_unsafe, warn_at_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
refuse_unsafe()  # no server with DEBUG off and a secret or host missing, nor on the try-it database
warn_at_start()  # with DEBUG off: what the apps' start checks find (demo logins), as warnings
