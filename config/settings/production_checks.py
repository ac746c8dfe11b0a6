"""What keeps this configuration from being served with DEBUG off (``PRODUCTION_PROBLEMS``).

config/production.py refuses to start a server with any problem listed; offline management
commands (makemigrations --check, showmigrations) run without the production secrets.
"""

import os
from pathlib import Path

from config.settings.database import DATABASES, TRY_IT_DATABASE
from config.settings.environment import DEBUG
from config.settings.realtime import SOCKETIO, TEST_FAULTS
from config.settings.security import _PUBLISHED_KEYS, ALLOWED_HOSTS, TRUSTED_PROXIES


def _unsafe_production_settings() -> list[str]:
    """What keeps this configuration from being served with DEBUG off."""
    problems = []
    key = os.environ.get("SECRET_KEY", "")
    if key in _PUBLISHED_KEYS or len(key) < 50 or len(set(key)) < 5:
        problems.append("set SECRET_KEY to a random string of at least 50 characters (it also signs the JWTs)")
    jwt_key = os.environ.get("JWT_SIGNING_KEY")
    if jwt_key is not None and (len(jwt_key) < 32 or jwt_key in _PUBLISHED_KEYS):
        problems.append("set JWT_SIGNING_KEY to a random string of at least 32 characters, or leave it unset")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("set ALLOWED_HOSTS to the host names you serve (comma-separated, no '*')")
    if TEST_FAULTS:
        problems.append("unset TEST_FAULTS (it registers a namespace that fails on purpose, for the tests)")
    if "*" in SOCKETIO["CORS_ALLOWED_ORIGINS"]:
        problems.append("set SOCKETIO_CORS_ORIGINS to the browser origins of your apps (no '*')")
    if os.environ.get("NUM_PROXIES", "0").strip() not in ("", "0"):
        problems.append(
            "NUM_PROXIES is no longer read: unset it, and set TRUSTED_PROXIES to your proxies' addresses or networks"
        )
    problems.extend(f"TRUSTED_PROXIES: {entry!r} is not an address or a network" for entry in _bad_networks())
    database = DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and Path(str(database["NAME"])).name == TRY_IT_DATABASE.name:
        problems.append(
            f"DATABASE_URL names {TRY_IT_DATABASE.name}, make run's try-it database (its logins are published): "
            "serve another database"
        )
    return problems


def _bad_networks() -> list[str]:
    import ipaddress

    bad = []
    for entry in TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry)  # as uvicorn reads it: 10.0.0.1/8 is neither
        except ValueError:
            bad.append(entry)
    return bad


# What keeps this process from serving (config/production.py refuses to start a server with any):
# checked where a server starts, not here, so that manage.py's offline commands
# (makemigrations --check, showmigrations) run without the production secrets.
PRODUCTION_PROBLEMS = [] if DEBUG else _unsafe_production_settings()
# A production server runs the apps' start checks and logs what they find (demo logins) as
# warnings (config/production.py); debug processes and the suite do not.
START_CHECKS = not DEBUG
