"""Settings, read from the environment.

Embedded defaults (SQLite, in-memory Channels layer) need nothing installed;
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis. Nothing here
exists only in production.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# ---------------------------------------------------------------- GENERAL
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-secret-key-change-me-in-production-0123456789")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "bookings",
    "partners",
    "messaging",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- DATABASES
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Socket handlers reach the ORM from a bounded thread pool (DB_THREADS);
        # each thread keeps one connection for this long (0 in tests).
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A writer waits for the lock instead of failing at once under concurrent sockets.
    # IMMEDIATE: concurrent writers queue for the lock instead of deadlocking on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")

# ---------------------------------------------------------------- CHANNELS / SOCKET.IO
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Pub/sub layer: broadcast fan-out with no per-channel capacity to overflow
    # and no group expiry to outlive (see docs/architecture.md).
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "hs")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SOCKETIO = {
    "CORS_ALLOWED_ORIGINS": env_list("SOCKETIO_CORS_ORIGINS", "*"),
    "PING_INTERVAL": int(os.environ.get("SOCKETIO_PING_INTERVAL", "25")),
    "PING_TIMEOUT": int(os.environ.get("SOCKETIO_PING_TIMEOUT", "20")),
    # Largest accepted Socket.IO packet; a bigger one closes the transport.
    "MAX_HTTP_BUFFER_SIZE": int(os.environ.get("SOCKETIO_MAX_BUFFER", str(2 * 1024 * 1024))),
    "CHANNEL_GROUP": os.environ.get("SOCKETIO_CHANNEL_GROUP", "socketio"),
    # Cross-process messages wait this long to be published together (batching).
    "PUBLISH_LINGER_MS": float(os.environ.get("SOCKETIO_PUBLISH_LINGER_MS", "3")),
    # Threads (and so database connections) a server process uses for ORM calls.
    "DB_THREADS": int(os.environ.get("SOCKETIO_DB_THREADS", "4")),
}
# How often buffered partner locations are written to the database (seconds).
LOCATION_FLUSH_INTERVAL = float(os.environ.get("LOCATION_FLUSH_INTERVAL", "5"))
# How often each process re-reads its partners' relay lists as a safety net (seconds).
RELAY_RECONCILE_INTERVAL = float(os.environ.get("RELAY_RECONCILE_INTERVAL", "30"))
# A connected partner stays dispatchable this long after the last heartbeat.
PRESENCE_TTL = int(os.environ.get("PRESENCE_TTL", "90"))
PRESENCE_HEARTBEAT = float(os.environ.get("PRESENCE_HEARTBEAT", "15"))
# Admin dashboards get pushed figures at most this often (seconds).
DASHBOARD_PUSH_INTERVAL = float(os.environ.get("DASHBOARD_PUSH_INTERVAL", "1"))

# Per-socket rate limits: (events, window seconds).
RATE_LIMITS = {
    "message:send": (int(os.environ.get("RATE_MESSAGES", "20")), 10.0),
    "typing": (int(os.environ.get("RATE_TYPING", "30")), 10.0),
}
TYPING_TIMEOUT = float(os.environ.get("TYPING_TIMEOUT", "6"))

# ---------------------------------------------------------------- REST / JWT
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=int(os.environ.get("JWT_ACCESS_SECONDS", "900"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=int(os.environ.get("JWT_REFRESH_SECONDS", str(7 * 86400)))),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Home services real-time backend",
    "DESCRIPTION": "REST side of the platform; the Socket.IO events are in README.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "CAMELIZE_NAMES": False,
}

# ---------------------------------------------------------------- PRODUCT
PLATFORM_COMMISSION = Decimal(os.environ.get("PLATFORM_COMMISSION", "0.20"))
DEFAULT_CURRENCY = os.environ.get("DEFAULT_CURRENCY", "INR")

# ---------------------------------------------------------------- LOGGING
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "socketio": {"level": "WARNING"},
        "engineio": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
