"""No server starts with unsafe production settings (contract 9.1), nor on the try-it database (10.2).

With ``DEBUG`` off, a server process (the ASGI application, the WSGI one, and ``python -m
config.production``, which ``make serve`` and ``make cluster`` run before anything else)
refuses to start until the secrets and hosts are set, and says which variable is missing.
The settings only list the problems (``PRODUCTION_PROBLEMS``): offline management commands
(``makemigrations --check``) need no secret. Among them: the try-it database, the SQLite
file that ``make run`` seeds with published logins (``settings.TRY_IT_DATABASE``), is never
served.

Once it starts, a production server runs the start checks the apps registered
(``on_start_check``, from their ``AppConfig.ready``: this module knows no app) and logs each
finding as a WARNING, for instance the accounts that open with a published demo password.

    DEBUG=0 python -m config.production     # exits 1 naming what to set, or 0
"""

import logging
import os
import sys
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)
StartCheck = Callable[[], str | None]
_start_checks: list[StartCheck] = []


def refuse_unsafe() -> None:
    """Raise ``ImproperlyConfigured`` naming every unsafe setting, when ``DEBUG`` is off."""
    if settings.PRODUCTION_PROBLEMS:
        raise ImproperlyConfigured("DEBUG is off, so: " + "; ".join(settings.PRODUCTION_PROBLEMS))


def on_start_check(check: StartCheck) -> StartCheck:
    """Register a check a production server runs once at start: a warning to log, or ``None``."""
    if check not in _start_checks:
        _start_checks.append(check)
    return check


def start_warnings() -> list[str]:
    """Run every registered check now; log and return their warnings. A check that cannot
    read the database (not migrated yet) is skipped with a line saying so."""
    found = []
    for check in list(_start_checks):
        try:
            warning = check()
        except DatabaseError as exc:
            logger.warning("start check %s could not read the database: %s", check.__qualname__, exc)
            continue
        except Exception as exc:  # a check that fails must not be mistaken for a clean bill
            logger.warning("start check %s failed: %r", check.__qualname__, exc)
            continue
        if warning:
            logger.warning(warning)
            found.append(warning)
    return found


def warn_at_start() -> None:
    """With ``DEBUG`` off (``settings.START_CHECKS``), run the start checks on a thread of their
    own (a check may hash passwords): the server answers meanwhile, and the warnings follow."""
    if not settings.START_CHECKS or not _start_checks:
        return

    def run() -> None:
        try:
            start_warnings()
        finally:
            connections.close_all()  # this thread's connections, back to the pool

    threading.Thread(target=run, name="start-checks", daemon=True).start()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    try:
        refuse_unsafe()
        import django

        django.setup()
        from config.realtime import access_tokens  # needs the apps (simplejwt's settings)

        access_tokens.refuse_unusable_settings()
    except ImproperlyConfigured as exc:
        sys.exit(f"django.core.exceptions.ImproperlyConfigured: {exc}")
