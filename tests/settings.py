"""Test settings: the real ones, with fast hashing and short timers."""

import os
import uuid

# The suite runs in debug mode with this checkout's own key (config.settings.security._checkout_key);
# set in the environment so the server processes a test starts run the same way.
os.environ["DEBUG"] = "1"

from config.settings import *
from config.settings import BASE_DIR, CACHES, DATABASES, RATE_LIMITS, REST_FRAMEWORK, SIMPLE_JWT, SOCKETIO
from config.settings import PASSWORD_HASHERS as PASSWORD_HASHERS_PRODUCTION

# Connections are opened per call and closed after, so the test database can be dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: the live server's threads need real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
# MD5 for speed, on the production hashing pool. REAL_PASSWORD_HASHING=1 (the login-storm
# tests' server processes): production's hashers, which read the suite's MD5 hashes and
# upgrade them at login, at production's cost.
PASSWORD_HASHERS = ["tests.hashers.MD5PasswordHasher"]
if os.environ.get("REAL_PASSWORD_HASHING") == "1":
    PASSWORD_HASHERS = [*PASSWORD_HASHERS_PRODUCTION, *PASSWORD_HASHERS]
# Every payload emitted, here and by the server processes tests start (which inherit the
# variable), is checked against the catalogue; a violation is an ERROR the log check fails on.
os.environ["EMIT_VALIDATION"] = "1"
EMIT_VALIDATION = True
PRESENCE_HEARTBEAT = float(os.environ.get("PRESENCE_HEARTBEAT", "0.5"))
# The /faults namespace (config/realtime/faults.py), in the live server and every server process
# the suite starts with these settings: the log check's own tests raise there.
TEST_FAULTS = True
LOCATION_FLUSH_INTERVAL = float(os.environ.get("LOCATION_FLUSH_INTERVAL", "0.3"))
DASHBOARD_PUSH_INTERVAL = 0.3
TYPING_TIMEOUT = 1.0
SIMPLE_JWT = {**SIMPLE_JWT}
# A polling client's disconnect waits for the open long-poll: keep it short.
# One run's Redis keys and groups apart from any other's (ids restart with each test database);
# set in the environment so the server processes a test starts share it.
_GROUP = os.environ.setdefault("SOCKETIO_CHANNEL_GROUP", f"test-{uuid.uuid4().hex[:10]}")
SOCKETIO = {**SOCKETIO, "PING_INTERVAL": 2, "PING_TIMEOUT": 5, "CHANNEL_GROUP": _GROUP}

# REST throttles out of the way of the suite (a server process a throttle's test starts sets
# its own in the environment: tests/config/test_throttling.py; tests/config/test_logins.py lowers
# them in the test process); cache keys apart per run, like the Redis groups above.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        scope: os.environ.get(f"THROTTLE_{scope.upper()}", "100000/min") for scope in ("auth", "login", "writes")
    },
}
CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": _GROUP}}
# The in-process live server does not sweep offers: its transactions would race the suite's
# own teardown (TRUNCATE between tests). Tests of the offer clock start server processes
# with their own DISPATCH_SWEEP_INTERVAL, or call dispatch_sweep themselves.
DISPATCH_SWEEP_INTERVAL = float(os.environ.get("DISPATCH_SWEEP_INTERVAL", "3600"))
# Nor does it escalate safety alerts: the escalation tests start server processes with their own.
SAFETY_SWEEP_INTERVAL = float(os.environ.get("SAFETY_SWEEP_INTERVAL", "3600"))

# The suite connects thousands of sockets from one address, many as one user; the connect
# limits' own tests set theirs (tests/realtime/test_rights.py).
RATE_LIMITS = {
    **RATE_LIMITS,
    "connect": (int(os.environ.get("RATE_CONNECT", "1000000")), 60.0),
    "connect:address": (int(os.environ.get("RATE_CONNECT_ADDRESS", "1000000")), 60.0),
}
# Load tests and the soak book many times per customer; the limit's own test sets it back.
OPEN_BOOKINGS_MAX = int(os.environ.get("OPEN_BOOKINGS_MAX", "100000"))
