"""The platform's own rules: dispatch, jobs and their traces, safety alerts, money, time, maps."""

import os
from decimal import Decimal

from config.settings.environment import DEBUG, env_integer, env_number

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
JOB_STALE_MINUTES = env_number("JOB_STALE_MINUTES", "60", 0.05, 525600)  # a fraction for a soak
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

# How often buffered partner locations are written to the database (seconds).
LOCATION_FLUSH_INTERVAL = env_number("LOCATION_FLUSH_INTERVAL", "5", 0.05, 3600)
# A job's trace (contract 10.3): while a partner has a job, their fixes are kept, at most one
# per TRACE_MIN_SECONDS unless they moved 25 m (written with the last locations, in batches);
# fixes older than TRACE_RETENTION_DAYS are deleted by every process every
# TRACE_PRUNE_INTERVAL seconds, a few thousand rows per statement, oldest first.
TRACE_MIN_SECONDS = env_number("TRACE_MIN_SECONDS", "10", 1, 3600)
TRACE_RETENTION_DAYS = env_number("TRACE_RETENTION_DAYS", "90", 1, 36500)
TRACE_PRUNE_INTERVAL = env_number("TRACE_PRUNE_INTERVAL", "600", 0.1, 86400)
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
