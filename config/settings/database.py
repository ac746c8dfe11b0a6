"""The database: which one (``DATABASE_URL``, SQLite without it), and its connection pool."""

import os

import dj_database_url

from config.settings.environment import BASE_DIR, DEBUG, env_bool, env_integer, env_number

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
