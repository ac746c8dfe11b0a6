# Home-services real-time backend. Every target sets itself up (virtualenv, install, migrate).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# Seconds a stopping process gets to close sockets and hand over its work (settings.SHUTDOWN_TIMEOUT).
SHUTDOWN_TIMEOUT ?= 10
# Largest Socket.IO packet (settings.SOCKETIO["MAX_HTTP_BUFFER_SIZE"]); uvicorn refuses a larger
# websocket frame from its header, before buffering it.
SOCKETIO_MAX_BUFFER ?= 1000000
# The production commands never run in debug mode, whatever the environment says, and refuse
# to start (config/production.py) without SECRET_KEY and ALLOWED_HOSTS, naming them.
PRODUCTION = DEBUG=0
# websockets-sansio without its per-connection cycle (config/realtime/websocket_protocol.py);
# permessage-deflate off: small JSON frames gain nothing from it, and every socket would pay its zlib state.
# --ws-ping-interval 0: Engine.IO's heartbeat (SOCKETIO_PING_INTERVAL / _TIMEOUT) already finds a dead
# peer and keeps proxies from timing out; uvicorn's own pings would double it (a ping, a pong through
# the frame parser and two timers per socket every 20 s: 500 a second at 10,000 sockets), as Node's doesn't.
# --no-proxy-headers: uvicorn's own default trusts X-Forwarded-For from 127.0.0.1; the application
# reads them from TRUSTED_PROXIES only (config/proxies.py).
UVICORN = $(BIN)/python -m uvicorn config.asgi:application --loop uvloop --http httptools \
	--ws config.realtime.websocket_protocol:WebSocketProtocol --ws-per-message-deflate false --ws-ping-interval 0 \
	--ws-max-size $(SOCKETIO_MAX_BUFFER) --no-proxy-headers \
	--lifespan on --timeout-graceful-shutdown $(SHUTDOWN_TIMEOUT) --no-access-log

.PHONY: run test lint format sdk serve cluster mutation mutation-retest bench bench-quick bench-dispatch bench-recovery bench-morning bench-history simulate vendor-socketio vendor-leaflet clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

tests/js/node_modules: tests/js/package-lock.json
	@if command -v npm >/dev/null; then cd tests/js && npm ci --no-audit --no-fund --silent; fi

sdk/typescript/node_modules: sdk/typescript/package-lock.json
	@if command -v npm >/dev/null; then cd sdk/typescript && npm ci --no-audit --no-fund --silent; fi

# Set up and run the server on embedded defaults (SQLite in demo.sqlite3, which the production
# commands refuse to open; in-memory layer) with demo data, in
# debug mode with this checkout's own key (.secret_key, made on first use).
run: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Set up and run the whole test suite (DATABASE_URL / REDIS_URL switch to PostgreSQL / Redis).
test: $(VENV)/.installed tests/js/node_modules sdk/typescript/node_modules
	$(BIN)/python -m pytest tests

# Regenerate the TypeScript client package (sdk/typescript/) from the event catalogue, then
# type-check its examples (strict).
sdk: $(VENV)/.installed sdk/typescript/node_modules
	DEBUG=1 $(BIN)/python -m config.typescript
	cd sdk/typescript && npm run --silent check

# Lint and check formatting (ruff).
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrite files to the project's format.
format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Production-style single process (uvicorn + uvloop); settings from the environment.
serve: $(VENV)/.installed
	$(PRODUCTION) $(BIN)/python -m config.production
	$(PRODUCTION) $(BIN)/python manage.py migrate --noinput
	$(PRODUCTION) $(BIN)/python manage.py collectstatic --noinput -v 0
	$(PRODUCTION) SHUTDOWN_TIMEOUT=$(SHUTDOWN_TIMEOUT) $(UVICORN) --host $(HOST) --port $(PORT)

# WORKERS processes, each on its own loopback port, behind HAProxy on PORT with sticky
# sessions (needs REDIS_URL, one server or a comma-separated list; installs HAProxy when
# missing). PGBOUNCER=1 pools PostgreSQL through PgBouncer (installed when missing); see docs/deployment.md.
# Run as root, the workers and PgBouncer run as CLUSTER_USER (homeservices) and HAProxy drops to it:
# that user must be able to run $(BIN)/python (BIN=... names another virtualenv).
cluster: $(VENV)/.installed
	$(PRODUCTION) $(BIN)/python -m config.production
	$(PRODUCTION) $(BIN)/python manage.py migrate --noinput
	$(PRODUCTION) $(BIN)/python manage.py collectstatic --noinput -v 0
	$(PRODUCTION) SHUTDOWN_TIMEOUT=$(SHUTDOWN_TIMEOUT) $(BIN)/python deploy/cluster.py --workers $(WORKERS) --port $(PORT) --host $(HOST) $(if $(filter 1,$(PGBOUNCER)),--pgbouncer) -- $(UVICORN)

# The full benchmark (several minutes) and the connection-churn run; figures in bench/results/.
bench: $(VENV)/.installed tests/js/node_modules
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py --churn 70:300 --database sqlite
	$(BIN)/python bench/dispatch.py --partners 50000
	$(MAKE) bench-recovery
	$(MAKE) bench-morning
	$(MAKE) bench-history

# Connection state recovery's cost: the same load with it off, then on (docs/performance.md).
RECOVERY_BENCH = --steps 1000:15,2000:15 --chat 100:15 --accepts 0
bench-recovery: $(VENV)/.installed tests/js/node_modules
	RECOVERY_ENABLED=0 $(BIN)/python bench/run.py $(RECOVERY_BENCH) --out bench/results/recovery-off.json
	RECOVERY_ENABLED=1 $(BIN)/python bench/run.py $(RECOVERY_BENCH) --out bench/results/recovery-on.json

# A morning's burst (logins and sign-ups with production's hashing, cheap reads, socket connects)
# against two processes while 1,000 location updates/s flow (PostgreSQL + Redis; docs/performance.md).
bench-morning: $(VENV)/.installed
	$(BIN)/python bench/morning.py

# Dispatch with 50,000 partners online around one city (PostgreSQL; figures in docs/performance.md).
bench-dispatch: $(VENV)/.installed
	$(BIN)/python bench/dispatch.py --partners 50000

# A year of history: 1,000,000 past bookings loaded through SQL, then the ops side timed
# (PostgreSQL, a few minutes; docs/performance.md). BASELINE=<checkout> times another tree too.
bench-history: $(VENV)/.installed
	$(BIN)/python bench/history.py --bookings 1000000 $(if $(BASELINE),--baseline $(BASELINE))

# Partners and customers as Socket.IO clients against a running server (make run in another terminal).
simulate: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py simulate --url http://$(HOST):$(PORT)

# A benchmark smoke run that finishes in under a minute.
bench-quick: $(VENV)/.installed tests/js/node_modules
	$(BIN)/python bench/run.py --quick

# Mutation spot-check of the rule modules (cosmic-ray, in a scratch clone; about an hour; not in CI).
# MINUTES bounds each module; mutation-retest tries the last run's survivors against today's tests.
MINUTES ?= 20
mutation: $(VENV)/.installed
	bash bench/mutation/run.sh $(MINUTES)

mutation-retest: $(VENV)/.installed
	bash bench/mutation/run.sh --retest

# Refresh the vendored socket.io-client browser bundle of the live dashboard (needs npm; make run does not).
vendor-socketio: tests/js/node_modules
	cp tests/js/node_modules/socket.io-client/dist/socket.io.min.js dashboard/static/dashboard/vendor/socket.io.min.js

# Refresh the vendored Leaflet of the admin's trace map (needs npm; make run does not): the registry's tarball, unpacked aside.
LEAFLET ?= 1.9.4
vendor-leaflet:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent leaflet@$(LEAFLET) >/dev/null && tar xzf leaflet-$(LEAFLET).tgz && \
	dest=$(CURDIR)/dashboard/static/dashboard/vendor/leaflet && mkdir -p $$dest/images && \
	cp package/dist/leaflet.js package/dist/leaflet.css package/LICENSE $$dest/ && cp package/dist/images/* $$dest/images/ && \
	rm -rf $$tmp

# Remove the virtualenv, databases and caches.
clean:
	rm -rf $(VENV) .secret_key db.sqlite3 test_db.sqlite3 tests/js/node_modules sdk/typescript/node_modules .pytest_cache .ruff_cache
