"""Test settings: the real ones, with fast hashing and short timers."""

from config.settings import *
from config.settings import BASE_DIR, DATABASES, SIMPLE_JWT

# Connections are opened per call and closed after, so the test database can be dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: the live server's threads need real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PRESENCE_HEARTBEAT = 0.5
LOCATION_FLUSH_INTERVAL = 0.3
DASHBOARD_PUSH_INTERVAL = 0.3
TYPING_TIMEOUT = 1.0
SIMPLE_JWT = {**SIMPLE_JWT}
# A polling client's disconnect waits for the open long-poll: keep it short.
SOCKETIO = {**SOCKETIO, "PING_INTERVAL": 2, "PING_TIMEOUT": 5}
