"""Settings, read from the environment.

Embedded defaults (SQLite, in-memory Channels layer) need nothing installed;
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis. Nothing here
exists only in production.
"""

import os
import secrets
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_number(name: str, default: str, low: float, high: float) -> float:
    """A number from the environment, refused at start (naming it) unless in [low, high]: a zero, a
    negative or a junk value would loop without a pause, wipe what it bounds, or fail at run time."""
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN and the infinities fail too
        raise ImproperlyConfigured(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


def env_integer(name: str, default: str, low: float, high: float) -> int:
    """A whole number from the environment, bounded as ``env_number`` (a count, a size, a limit)."""
    value = env_number(name, default, low, high)
    if value != int(value):
        raise ImproperlyConfigured(f"{name} must be a whole number, not {os.environ.get(name, default)!r}")
    return int(value)


# ---------------------------------------------------------------- GENERAL
# Off unless asked for: the safe value is the default. The try-it command (make run) and the
# tests turn it on; the production commands (make serve, make cluster) force it off, and then
# the secrets and hosts below must be set (see the checks at the end of this file).
DEBUG = env_bool("DEBUG", False)
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
    # Refresh tokens are recorded when issued and can be revoked (logout, password change,
    # deactivation, suspension); ``manage.py flushexpiredtokens`` drops rows past their expiry.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets served from here: /api/docs/ works without internet
    "bookings",
    "partners",
    "messaging",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's (and later pages') static files from the application itself, with caching
    # headers, so make serve / make cluster need no file server (contract 8.4).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.metrics.MetricsMiddleware",
    "config.overload.UnavailableMiddleware",
    # Which address a password check is for: one address gets a fair share of the hashing pool.
    "config.hashing.ClientAddressMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide admin template overrides (the link to the live dashboard).
        "DIRS": [BASE_DIR / "config" / "templates"],
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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies made by collectstatic (make serve / make cluster run it); no manifest,
    # so a page renders the same whether or not collectstatic ran.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Also serve files not collected yet (straight from the apps' static folders): a page never
# loses its script because collectstatic was skipped; collected files win when present.
WHITENOISE_USE_FINDERS = True
# Before the first collectstatic there is no STATIC_ROOT yet; the finders serve the files meanwhile.
warnings.filterwarnings("ignore", message="No directory at: ")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------- DATABASES
# Without DATABASE_URL: SQLite, in a file of its own for debug processes. ``make run`` seeds
# the try-it file with logins whose passwords are published; no production server opens it
# (config/production.py), and with DEBUG off the default is another file.
TRY_IT_DATABASE = BASE_DIR / "demo.sqlite3"
_DEFAULT_DATABASE = TRY_IT_DATABASE if DEBUG else BASE_DIR / "db.sqlite3"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", f"sqlite:///{_DEFAULT_DATABASE}"))}
# PostgreSQL connections per server process, whatever the traffic: HTTP requests (one
# thread each under ASGI) and the socket handlers' ORM threads borrow from one pool.
# N processes need N x DB_POOL_SIZE connections (docs/deployment.md).
DB_POOL_SIZE = env_integer("DB_POOL_SIZE", "10", 1, 1000)
# How long a request waits for a pooled connection before it is answered UNAVAILABLE;
# also how soon a database outage becomes an answer rather than a hang.
DB_POOL_TIMEOUT = env_number("DB_POOL_TIMEOUT", "4", 0.1, 300)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django returns them after each use
    # The pool checks a connection before lending it: after a database restart, no request gets a dead one.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        pool={"min_size": min(2, DB_POOL_SIZE), "max_size": DB_POOL_SIZE, "timeout": DB_POOL_TIMEOUT, "max_idle": 300},
        connect_timeout=3,  # a fresh connection gives up quickly when the server is unreachable
        application_name=os.environ.get("DB_APPLICATION_NAME", "homeservices"),  # seen in pg_stat_activity
    )
    # Behind PgBouncer in transaction mode (make cluster PGBOUNCER=1 sets it), a server connection
    # is this client's only until its transaction ends; nothing may outlive one there:
    if env_bool("DB_PGBOUNCER", False):
        # .iterator() would hold a named cursor open across the next transactions' connections;
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        # no prepared statements: one would live on a server connection that goes to another client
        # next (Debian's PgBouncer 1.18 cannot track them). Django's default for psycopg 3 already;
        # said here so that nobody turns them on for speed without seeing why they are off.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A writer waits for the lock instead of failing at once under concurrent sockets.
    # IMMEDIATE: concurrent writers queue for the lock instead of deadlocking on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")

# ---------------------------------------------------------------- REDIS
# One Redis, or several separated by commas. Rooms' pub/sub is spread over all of them (by
# a hash of the room's group); the state that needs one place (the recovery log, rate
# limits, the cache) lives on the first. See docs/deployment.md, "A sharded broker".
# Sorted: every process must place a room on the same server and keep the log on the same
# one, so hosts whose operators listed the servers in another order still agree.
REDIS_URLS = sorted(env_list("REDIS_URL", ""))
REDIS_URL = REDIS_URLS[0] if REDIS_URLS else ""

# ---------------------------------------------------------------- CACHE (REST throttle counts, shared figures)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that stops answering (paused, partitioned) fails a request in half a second
            # instead of holding its thread for ever.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Every payload a server process emits checked against the event catalogue, a violation
# logged as an ERROR: the test suite turns it on (for the servers it starts too); it costs
# a JSON Schema check per delivery.
EMIT_VALIDATION = env_bool("EMIT_VALIDATION", False)

# ---------------------------------------------------------------- CHANNELS / SOCKET.IO
if REDIS_URL:
    # Pub/sub layer: broadcast fan-out with no per-channel capacity to overflow
    # and no group expiry to outlive (see docs/deployment.md, "Which channels-redis layer").
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": REDIS_URLS, "prefix": os.environ.get("CHANNELS_PREFIX", "hs")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


SOCKETIO = {
    # Browser origins besides the server's own that may open sockets (the server's own pages,
    # such as the live dashboard, always may, on any host and port); non-browser clients send none.
    "CORS_ALLOWED_ORIGINS": env_list("SOCKETIO_CORS_ORIGINS", "*" if DEBUG else ""),
    "PING_INTERVAL": env_integer("SOCKETIO_PING_INTERVAL", "25", 1, 3600),
    "PING_TIMEOUT": env_integer("SOCKETIO_PING_TIMEOUT", "20", 1, 3600),
    # Largest accepted Socket.IO packet; a bigger one closes the transport. No event
    # of the contract comes near it (a chat message is at most 2,000 characters).
    "MAX_HTTP_BUFFER_SIZE": env_integer("SOCKETIO_MAX_BUFFER", str(1_000_000), 1000, 1_000_000_000),
    "CHANNEL_GROUP": os.environ.get("SOCKETIO_CHANNEL_GROUP", "socketio"),
    # Engine.IO sets this cookie to the session id on the handshake: a proxy can learn which
    # process holds a session from it and route the session's later requests there
    # (deploy/haproxy.cfg.tmpl), whether or not the client keeps cookies.
    "SESSION_COOKIE": os.environ.get("SOCKETIO_SESSION_COOKIE", "io"),
    # Cross-process messages wait this long to be published together (batching).
    "PUBLISH_LINGER_MS": env_number("SOCKETIO_PUBLISH_LINGER_MS", "3", 0, 1000),
    # Threads a server process runs socket handlers' ORM calls in (they borrow pooled connections).
    "DB_THREADS": env_integer("SOCKETIO_DB_THREADS", "4", 1, 256),
    # ORM calls queued or running past which client events that need the database are
    # refused UNAVAILABLE at once (a burst must not starve heartbeats and relays).
    "DB_QUEUE_MAX": env_integer("SOCKETIO_DB_QUEUE_MAX", "200", 1, 10**12),
    # A connect that cannot read its user within this many seconds is refused UNAVAILABLE
    # (the client backs off and retries) rather than left to time out on the client's side.
    "CONNECT_TIMEOUT": env_number("CONNECT_TIMEOUT", "5", 0.1, 300),
    # Connection state recovery (socket.io 4.6+'s, for the official client): a socket that drops
    # involuntarily and comes back within the window gets its sid, rooms and missed events, on
    # any process. On, every logged event carries its offset as a last argument (python-socketio
    # clients see it as an extra handler argument). The log keeps at most LOG_LENGTH events per
    # namespace, and none older than the window.
    "RECOVERY_ENABLED": env_bool("RECOVERY_ENABLED", True),
    "RECOVERY_WINDOW_SECONDS": env_number("RECOVERY_WINDOW_SECONDS", "120", 1, 86400),
    "RECOVERY_LOG_LENGTH": env_integer("RECOVERY_LOG_LENGTH", "10000", 1, 100_000_000),
    # A replay reads at most this many logged events of the namespace; a longer gap gets a fresh session.
    "RECOVERY_REPLAY_MAX": env_integer("RECOVERY_REPLAY_MAX", "1000", 1, 100_000_000),
    # What one connection may make the server hold (contract 10.1). Past either bound of its send
    # queue (packets, characters of their payloads) a connection is closed as a transport error.
    "SEND_QUEUE_PACKETS": env_integer("SOCKETIO_SEND_QUEUE_PACKETS", "2000", 1, 10**12),
    "SEND_QUEUE_BYTES": env_integer("SOCKETIO_SEND_QUEUE_BYTES", str(4_000_000), 1000, 100_000_000_000),
    # Engine.IO sessions open at once from one client address (a carrier's NAT holds many phones).
    "SESSIONS_PER_ADDRESS": env_integer("SOCKETIO_SESSIONS_PER_ADDRESS", "2000", 1, 10**12),
    # An Engine.IO session that has joined no namespace this many seconds after it opened is closed.
    "NO_NAMESPACE_TIMEOUT": env_number("SOCKETIO_NO_NAMESPACE_TIMEOUT", "10", 0.1, 3600),
}
# Every socket's rights are compared with the database at least this often (seconds), besides
# the recheck every change of rights sets off at once: a lost notification is bounded by it.
ACCESS_RECHECK_SECONDS = env_number("ACCESS_RECHECK_SECONDS", "60", 1, 86400)
# A stopping process finishes its work (buffered writes, queued messages) within this many seconds.
# At least 3: its database waits end a second before (``stopping.DATABASE_CUTOFF``), and a shorter
# stop would abandon its writes (trace points, last locations, users offline) with the database fine.
SHUTDOWN_TIMEOUT = env_number("SHUTDOWN_TIMEOUT", "10", 3, 3600)
# How often buffered partner locations are written to the database (seconds).
LOCATION_FLUSH_INTERVAL = env_number("LOCATION_FLUSH_INTERVAL", "5", 0.05, 3600)
# A job's trace (contract 10.3): while a partner has a job, their fixes are kept, at most one
# per TRACE_MIN_SECONDS unless they moved 25 m (written with the last locations, in batches);
# fixes older than TRACE_RETENTION_DAYS are deleted by every process every
# TRACE_PRUNE_INTERVAL seconds, a few thousand rows per statement, oldest first.
TRACE_MIN_SECONDS = env_number("TRACE_MIN_SECONDS", "10", 1, 3600)
TRACE_RETENTION_DAYS = env_number("TRACE_RETENTION_DAYS", "90", 1, 36500)
TRACE_PRUNE_INTERVAL = env_number("TRACE_PRUNE_INTERVAL", "600", 0.1, 86400)
# How often each process re-reads its partners' relay lists as a safety net (seconds).
RELAY_RECONCILE_INTERVAL = env_number("RELAY_RECONCILE_INTERVAL", "30", 0.1, 86400)
# A connected partner stays dispatchable this long after the last heartbeat.
PRESENCE_TTL = env_integer("PRESENCE_TTL", "90", 1, 86400)
PRESENCE_HEARTBEAT = env_number("PRESENCE_HEARTBEAT", "15", 0.05, 3600)
# Dispatch (contract 8.2): an offer lapses after OFFER_TIMEOUT_SECONDS; a booking is offered
# at most DISPATCH_MAX_OFFERS times before it waits for staff; one that found nobody is tried
# again every DISPATCH_RETRY_SECONDS, or as soon as a partner is freed or comes online
# (``bookings.dispatch.dispatch_waiting_now``); every process sweeps due bookings every
# DISPATCH_SWEEP_INTERVAL seconds (row locks, SKIP LOCKED: each runs once). The ETA of a
# partner who is not moving (or does not report speed) assumes CITY_SPEED_KMH.
OFFER_TIMEOUT_SECONDS = env_number("OFFER_TIMEOUT_SECONDS", "30", 0.1, 86400)
DISPATCH_MAX_OFFERS = env_integer("DISPATCH_MAX_OFFERS", "5", 1, 1000)
DISPATCH_RETRY_SECONDS = env_number("DISPATCH_RETRY_SECONDS", "10", 0.1, 86400)
# Not every second: sweeping each second made the connection pool come back seconds later
# after a short database outage (tests/realtime/test_faults.py); every 2 s it did not.
DISPATCH_SWEEP_INTERVAL = env_number("DISPATCH_SWEEP_INTERVAL", "2", 0.05, 3600)
CITY_SPEED_KMH = env_number("CITY_SPEED_KMH", "20", 1, 300)
# Nobody farther than this from a booking is offered it (contract 9.3).
DISPATCH_MAX_KM = env_number("DISPATCH_MAX_KM", "25", 0.1, 20000)
# A booking nobody took this long after its scheduledAt is cancelled by dispatch (no_partner).
DISPATCH_GIVE_UP_MINUTES = env_number("DISPATCH_GIVE_UP_MINUTES", "30", 1, 525600)
# Bookings a customer may have open (not finished) at once; the next create is 409 CONFLICT.
OPEN_BOOKINGS_MAX = env_integer("OPEN_BOOKINGS_MAX", "3", 1, 10000)
# A job under way with no status change or location from its partner this long is flagged to staff.
JOB_STALE_MINUTES = env_number("JOB_STALE_MINUTES", "60", 1, 525600)
# The partner is near (contract 10.3): the first position this close to the booking's place sends
# partner:nearby to its room, once per booking (bookings/arrival.py).
ARRIVAL_RADIUS_METERS = env_number("ARRIVAL_RADIUS_METERS", "150", 10, 5000)
# Safety alerts (contract 10.3): an open alert goes to staff again every SAFETY_ESCALATE_SECONDS
# until acknowledged; every process looks for due ones every SAFETY_SWEEP_INTERVAL seconds (a
# conditional UPDATE claims each escalation: it goes out once whichever process finds it).
# Bounded: 0 or less would send every open alert again at every sweep, a sweep interval of 0 would
# query without a pause on every process, and a deadline past year 9999 would fail every raise.
SAFETY_ESCALATE_SECONDS = env_number("SAFETY_ESCALATE_SECONDS", "60", 1, 86400)
SAFETY_SWEEP_INTERVAL = env_number("SAFETY_SWEEP_INTERVAL", "1", 0.05, 3600)
# Admin dashboards get pushed figures at most this often (seconds).
DASHBOARD_PUSH_INTERVAL = env_number("DASHBOARD_PUSH_INTERVAL", "1", 0.05, 3600)

# Per-user limits on client events, across the user's sockets and processes:
# (events, window seconds). "typing" covers typing:start and typing:stop.
_RATE_WINDOW = env_number("RATE_WINDOW", "10", 0.1, 86400)
RATE_LIMITS = {
    "default": (env_integer("RATE_DEFAULT", "60", 1, 10**12), _RATE_WINDOW),
    "location:update": (env_integer("RATE_LOCATION", "60", 1, 10**12), _RATE_WINDOW),
    # An offline batch (up to 500 fixes) is one event: a phone back from hours offline sends a few.
    "location:batch": (env_integer("RATE_LOCATION_BATCH", "10", 1, 10**12), _RATE_WINDOW),
    "booking:track": (env_integer("RATE_TRACK", "30", 1, 10**12), _RATE_WINDOW),
    "request:stats": (env_integer("RATE_STATS", "20", 1, 10**12), _RATE_WINDOW),
    "message:send": (env_integer("RATE_MESSAGES", "20", 1, 10**12), _RATE_WINDOW),
    "typing": (env_integer("RATE_TYPING", "30", 1, 10**12), _RATE_WINDOW),
    # Never below one per 10 s (contract 10.3); past it refused, never disconnected (``keeps_socket``).
    "safety:alert": (env_integer("RATE_SAFETY", "3", 1, 10**12), 10.0),
    "auth:refresh": (env_integer("RATE_REFRESH", "10", 1, 10**12), 6 * _RATE_WINDOW),
    # Connects (every namespace) per user, and per client address (TRUSTED_PROXIES says which
    # address is the client's behind a proxy; carriers put many phones behind one address).
    "connect": (env_integer("RATE_CONNECT", "30", 1, 10**12), 6 * _RATE_WINDOW),
    "connect:address": (env_integer("RATE_CONNECT_ADDRESS", "600", 1, 10**12), 6 * _RATE_WINDOW),
}
TYPING_TIMEOUT = env_number("TYPING_TIMEOUT", "6", 0.1, 3600)

# ---------------------------------------------------------------- PASSWORDS
# Django's hashers (stored format, iterations, upgrade of older hashes), each run on this
# process's hashing pool (config/hashing.py): at most PASSWORD_HASH_WORKERS at once, on threads
# that yield the CPU to the event loop; past PASSWORD_HASH_QUEUE waiting, or once a request's
# hashes took PASSWORD_HASH_WAIT seconds (queued or hashing), it is refused 503 with Retry-After.
PASSWORD_HASHERS = [
    "config.hashing.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# One per core at most, shared by the processes on the machine: WORKERS processes on C cores
# want C // WORKERS each (docs/deployment.md).
PASSWORD_HASH_WORKERS = env_integer("PASSWORD_HASH_WORKERS", "1", 1, 256)
PASSWORD_HASH_QUEUE = env_integer("PASSWORD_HASH_QUEUE", "8", 0, 100_000)
PASSWORD_HASH_WAIT = env_number("PASSWORD_HASH_WAIT", "5", 0.1, 3600)
PASSWORD_HASH_NICE = env_integer("PASSWORD_HASH_NICE", "10", 0, 19)
# Hashes one client address may have running or waiting at once; its next is refused 429 at
# once (0: no share). One address flooding a login form cannot fill the queue for everyone.
PASSWORD_HASH_PER_ADDRESS = env_integer("PASSWORD_HASH_PER_ADDRESS", "2", 0, 100_000)
# Django's validators, on every door that sets a password: sign-up (customer and partner),
# the password change, the admin's forms, createsuperuser (config/fields.py PasswordField).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},  # 8
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# HTTP requests (not Socket.IO) a process runs at once, and how long the next may wait for a
# turn before 503 with Retry-After (config/admission.py). Requests to PASSWORD_PATHS hash a
# password: the hashing pool bounds them instead.
HTTP_CONCURRENCY = env_integer("HTTP_CONCURRENCY", "8", 1, 100_000)
HTTP_QUEUE_TIMEOUT = env_number("HTTP_QUEUE_TIMEOUT", "5", 0, 3600)
PASSWORD_PATHS = (
    "/api/auth/token/",
    "/api/auth/register/",
    "/api/partners/register/",
    "/api/auth/password/",
    "/admin/login/",
)

# ---------------------------------------------------------------- REST / JWT
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: one parser per input kind, and the OpenAPI schema documents exactly what is read.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.WriteRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per client address: login, refresh, sign-ups, logout, password change, the admin's login.
        "auth": os.environ.get("THROTTLE_AUTH", "20/min"),
        # Per username: every password check (the API's login and password change, the admin's login).
        "login": os.environ.get("THROTTLE_LOGIN", "10/min"),
        "writes": os.environ.get("THROTTLE_WRITES", "120/min"),
    },
    # The client's address is the peer's, as config/proxies.py set it: DRF never reads
    # X-Forwarded-For itself (its default, None, would take the header whole from anyone).
    "NUM_PROXIES": 0,
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
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_integer("JWT_ACCESS_SECONDS", "900", 10, 365 * 86400)),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env_integer("JWT_REFRESH_SECONDS", str(7 * 86400), 10, 10 * 365 * 86400)
    ),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Home services real-time backend",
    "DESCRIPTION": (
        "REST side of the platform. The Socket.IO events: the AsyncAPI 3 document at "
        "[/api/asyncapi.json](/api/asyncapi.json) ([YAML](/api/asyncapi.yaml)); README.md explains them."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own (required fields, minLength of non-blank text).
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "CAMELIZE_NAMES": False,
}

# ---------------------------------------------------------------- METRICS
# /metrics answers a bearer METRICS_TOKEN when one is set, else only these networks.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")

# ---------------------------------------------------------------- PRODUCT
# The platform's share of a booking, from 0 to 1, bounded as every number here (a bare Decimal() took
# 1.5: negative earnings; -0.2; NaN: every completion failed at its earning's write; and a typo failed
# the start with an InvalidOperation naming nothing). repr() of the float is its shortest decimal: exact.
PLATFORM_COMMISSION = Decimal(repr(env_number("PLATFORM_COMMISSION", "0.20", 0, 1)))
# "Today" in every figure (the dashboard, a partner's earnings of the day) is the calendar day here.
PLATFORM_TIME_ZONE = os.environ.get("PLATFORM_TIME_ZONE", "Asia/Kolkata")
DEFAULT_CURRENCY = os.environ.get("DEFAULT_CURRENCY", "INR")
# A job's trace as it is read (GET /api/bookings/{id}/trace/, the admin's map): at most
# TRACE_MAX_POINTS points (a 2-hour job at one fix per 10 s is about 720; a longer one is thinned
# evenly, its end kept) and TRACE_MAX_MESSAGES messages, the first ones (0 or less: none; the
# safety alerts are not messages: the first 500 of them always show).
TRACE_MAX_POINTS = env_integer("TRACE_MAX_POINTS", "2000", 2, 10_000_000)
TRACE_MAX_MESSAGES = max(0, env_integer("TRACE_MAX_MESSAGES", "500", -1_000_000_000, 1_000_000_000))
# The admin's maps: a tile URL template (Leaflet's {s}, {z}, {x}, {y}); empty draws no tiles (the
# route and its timeline still show). The staff member's browser fetches them, and which tiles it
# asks for tells the tile server where a customer lives: a production server draws none until the
# operator names a tile service it may use (OpenStreetMap's own is for light use only); debug
# (make run) uses OpenStreetMap's.
MAP_TILE_URL = os.environ.get("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png" if DEBUG else "")
MAP_TILE_ATTRIBUTION = os.environ.get(
    "MAP_TILE_ATTRIBUTION", '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)

# ---------------------------------------------------------------- LOGGING
# LOG_FORMAT=json: one JSON object per line (for log shippers); plain text otherwise.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "plain"}
    },
    # A 503 is the server saying "not now" on purpose (config/overload.py): a warning, not an error.
    "filters": {"answered_unavailable": {"()": "config.overload.AnsweredUnavailable"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"filters": ["answered_unavailable"]},
        # The libraries' server loggers are ours (config/realtime/library_logs.py): their WARNINGs
        # show, no handler of their own; what a client causes at will is a WARNING once, INFO after.
        "socketio": {"level": "WARNING"},
        "engineio": {"level": "WARNING"},
        "socketio.server": {"level": "WARNING"},
        "engineio.server": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}


# ---------------------------------------------------------------- PRODUCTION CHECKS
# The test suite's ``/faults`` namespace (config/realtime/faults.py): handlers that raise on purpose.
TEST_FAULTS = os.environ.get("TEST_FAULTS") == "1"


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
