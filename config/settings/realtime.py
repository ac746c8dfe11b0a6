"""Socket.IO: the engine's options, connection state recovery, what one connection may hold,
presence, rights rechecks, the per-user event limits, and how a process stops."""

import os

from config.settings.environment import DEBUG, env_bool, env_integer, env_list, env_number

# Every payload a server process emits checked against the event catalogue, a violation
# logged as an ERROR: the test suite turns it on (for the servers it starts too); it costs
# a JSON Schema check per delivery.
EMIT_VALIDATION = env_bool("EMIT_VALIDATION", False)

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
# How often each process re-reads its partners' relay lists as a safety net (seconds).
RELAY_RECONCILE_INTERVAL = env_number("RELAY_RECONCILE_INTERVAL", "30", 0.1, 86400)
# A connected partner stays dispatchable this long after the last heartbeat.
PRESENCE_TTL = env_integer("PRESENCE_TTL", "90", 1, 86400)
PRESENCE_HEARTBEAT = env_number("PRESENCE_HEARTBEAT", "15", 0.05, 3600)


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

# The test suite's ``/faults`` namespace (config/realtime/faults.py): handlers that raise on purpose.
TEST_FAULTS = os.environ.get("TEST_FAULTS") == "1"
