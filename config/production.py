"""No server starts with unsafe production settings (contract 9.1).

With ``DEBUG`` off, a server process (the ASGI application, the WSGI one, and ``python -m
config.production``, which ``make serve`` and ``make cluster`` run before anything else)
refuses to start until the secrets and hosts are set, and says which variable is missing.
The settings only list the problems (``PRODUCTION_PROBLEMS``): offline management commands
(``makemigrations --check``) need no secret.

    DEBUG=0 python -m config.production     # exits 1 naming what to set, or 0
"""

import os
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def refuse_unsafe() -> None:
    """Raise ``ImproperlyConfigured`` naming every unsafe setting, when ``DEBUG`` is off."""
    if settings.PRODUCTION_PROBLEMS:
        raise ImproperlyConfigured("DEBUG is off, so: " + "; ".join(settings.PRODUCTION_PROBLEMS))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        refuse_unsafe()
    except ImproperlyConfigured as exc:
        sys.exit(f"django.core.exceptions.ImproperlyConfigured: {exc}")
