"""WSGI entry point for REST/admin-only deployments; events still reach sockets via the Channels layer."""

import os

from django.core.wsgi import get_wsgi_application

from config.production import refuse_unsafe

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
refuse_unsafe()  # no server with DEBUG off and a secret or host missing
