"""Secrets, hosts, proxies, TLS and cookies: who may talk to this server, and how safely.

Each default depends on ``DEBUG``: safe when it is off.
"""

import os
import secrets

from config.settings.environment import BASE_DIR, DEBUG, env_bool, env_integer, env_list

# Keys that were once published (an old repository default): never a secret, whatever the mode.
_PUBLISHED_KEYS = frozenset({"dev-insecure-secret-key-change-me-in-production-0123456789"})
_CHECKOUT_KEY_FILE = BASE_DIR / ".secret_key"  # ignored by git: one checkout's debug key


def _checkout_key() -> str:
    """The debug key of this checkout, made on first use: random, never in the repository.

    Shared by every process started from the checkout (make run, simulate, the suite's
    server processes), so tokens one of them mints are valid in the others. Created with
    ``os.link`` so that processes starting at once all end up reading the same key.
    """
    if not _CHECKOUT_KEY_FILE.exists():
        import tempfile

        with tempfile.NamedTemporaryFile("w", dir=BASE_DIR, prefix=".secret_key.", delete=False) as tmp:
            tmp.write(secrets.token_urlsafe(60))
        try:
            os.link(tmp.name, _CHECKOUT_KEY_FILE)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(tmp.name)
    return _CHECKOUT_KEY_FILE.read_text().strip()


# Unset with DEBUG off: a throwaway key of this process, so that offline management commands
# run; no server starts with it (PRODUCTION_PROBLEMS, config/production.py).
SECRET_KEY = os.environ.get("SECRET_KEY") or (_checkout_key() if DEBUG else secrets.token_urlsafe(60))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# The proxies in front (addresses or networks, comma-separated) whose X-Forwarded-For and
# X-Forwarded-Proto say who the client is and whether it used TLS (config/proxies.py); from
# any other peer those headers are dropped. Empty: no proxy, the peer is the client.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
# TLS ends at the proxy (docs/deployment.md): the scheme is the one config/proxies.py decided
# (the ASGI scope's), never a header a client wrote.
SECURE_PROXY_SSL_HEADER = None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers and scrapers probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_integer("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000", 0, 10 * 365 * 86400)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)

# /metrics answers a bearer METRICS_TOKEN when one is set, else only these networks.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
