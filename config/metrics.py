"""Prometheus metrics (prometheus-client) and the ``/metrics`` endpoint.

With several processes (``make cluster``) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by them: each process writes its samples there and ``/metrics`` on
any of them reports the sum. Access: ``METRICS_TOKEN`` (``Authorization: Bearer``) when
set, else only clients in ``METRICS_ALLOWED_NETWORKS`` (loopback by default).

Gauges are sampled once a second by each process (``sample_forever``), not written on
every change, so the hot paths pay only for the counters they bump.
"""

import functools
import gc
import hmac
import ipaddress
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from config.realtime.auth import client_address

SOCKETS = Gauge(
    "homeservices_sockets_connected", "Sockets connected, per namespace", ["namespace"], multiprocess_mode="livesum"
)
CLIENT_EVENTS = Counter(
    "homeservices_client_events_total",
    "Client events received, by namespace, event and outcome (ok or the error code)",
    ["namespace", "event", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "homeservices_handler_seconds",
    "Time to answer a client event",
    ["namespace", "event"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SERVER_EVENTS = Counter("homeservices_server_events_total", "Server events handed to local delivery", ["event"])
ORM_QUEUE = Gauge(
    "homeservices_orm_queue_depth", "ORM calls queued or running for socket handlers", multiprocess_mode="livesum"
)
PUBLISH_QUEUE = Gauge(
    "homeservices_publish_queue_depth", "Cross-process messages waiting to be published", multiprocess_mode="livesum"
)
DISPATCH_BACKLOG = Gauge(
    "homeservices_dispatch_backlog",
    "Bookings whose dispatch clock ran out (a lapse or a retry) and that the last sweep left for the next",
    multiprocess_mode="max",
)
PUBLISH_BATCHES = Counter("homeservices_publish_batches_total", "Batches published on the channel layer")
PUBLISH_FAILURES = Counter("homeservices_publish_failures_total", "Failed attempts to publish a batch (retried)")
PUBLISH_DROPPED = Counter("homeservices_publish_dropped_total", "Cross-process messages dropped: backlog full")
BROKER_INBOX = Gauge(
    "homeservices_broker_inbox_bytes",
    "Broker messages read, waiting for this process's listener (bounded: config/realtime/inbox.py)",
    multiprocess_mode="livesum",
)
BROKER_BEHIND = Counter(
    "homeservices_broker_listener_behind_total",
    "Times a lane's subscriber stopped reading: the listener had INBOX_MAX_BYTES of broker messages to read",
)
BROKER_CUTS = Counter(
    "homeservices_broker_subscriber_cuts_total",
    "Subscriber connections Redis ended while up: its pubsub limit (a listener behind, a slow reader), a CLIENT KILL",
)
CLIENT_CAUSED_WARNINGS = Counter(
    "homeservices_client_caused_warnings_total",
    "Library warnings a client can cause at will, after the first a process: counted here, not logged",
    ["message"],
)
CONTROLS_SHED = Counter(
    "homeservices_controls_shed_total",
    "Control messages refused: CONTROL_TASKS_MAX of their handlers already running (an ordered one fails closed)",
    ["method"],
)
BROKER_MESSAGES = Counter(
    "homeservices_broker_messages_total",
    "Messages this process decoded from the broker, by kind: room, user, broadcast, socket, control",
    ["kind"],
)
RECOVERY_UNLOGGED = Counter(
    "homeservices_recovery_unlogged_total", "Events sent without an offset: the recovery log did not answer in time"
)
CONNECTION_BOUNDS = Counter(
    "homeservices_connection_bounds_total",
    "Connections closed or refused for passing a bound on what one connection may hold (contract 10.1)",
    ["bound"],
)
HASHING_REFUSED = Counter(
    "homeservices_password_hashing_refused_total",
    "Logins, sign-ups and password changes refused: hashing queue full, or the address's share of it taken",
)
DASHBOARD_FIGURES = Counter(
    "homeservices_dashboard_figures_total", "Dashboard figures this process computed for every process's admins"
)
NEARBY_CLAIMS = Counter(
    "homeservices_nearby_claims_total",
    "Claims of a booking's partner:nearby by this process: sent, taken (already sent, or the job ended), failed",
    ["outcome"],
)
TRACE_POINTS_DROPPED = Counter(
    "homeservices_trace_points_dropped_total", "Trace points dropped: the process's trace buffer was full"
)
GC_PAUSE = Counter("homeservices_gc_pause_seconds_total", "Time spent in cyclic GC, per generation", ["generation"])
GC_COLLECTIONS = Counter("homeservices_gc_collections_total", "Cyclic GC runs, per generation", ["generation"])
HTTP_REQUESTS = Counter(
    "homeservices_http_requests_total", "HTTP requests, by view, method and status", ["view", "method", "status"]
)
HTTP_SECONDS = Histogram("homeservices_http_request_seconds", "HTTP request time, by view", ["view"])

_KNOWN_EVENT_LABEL = "unknown"  # client-chosen names never become label values


def event_label(event: str, handled: bool) -> str:
    return event if handled else _KNOWN_EVENT_LABEL


# A lightweight client event (a location update: thousands a second) is timed one in this many.
# A histogram's ``observe`` takes a lock and a bisect (about 1.5 µs here, more than the payload
# check and the rate limit of an update together); one in 16 still gives its quantiles at any rate
# worth alerting on.
# Its count is ``homeservices_client_events_total``'s, which counts every event.
LIGHTWEIGHT_TIMED_ONE_IN = 16


class EventMetrics:
    """A client event's children of ``CLIENT_EVENTS`` (``ok``) and ``HANDLER_SECONDS``; its events are
    timed (``start``, ``stop``) all, or one in ``LIGHTWEIGHT_TIMED_ONE_IN`` (the first included)."""

    __slots__ = ("countdown", "ok", "one_in", "seconds")

    def __init__(self, namespace: str, label: str, one_in: int) -> None:
        self.ok = CLIENT_EVENTS.labels(namespace, label, "ok")
        self.seconds = HANDLER_SECONDS.labels(namespace, label)
        self.one_in = one_in
        self.countdown = 1  # the first is timed: a process's first event of a kind has its time

    def start(self) -> float | None:
        """When this event started, if it is one of those timed."""
        self.countdown -= 1
        if self.countdown:
            return None
        self.countdown = self.one_in
        return time.perf_counter()

    def stop(self, started: float | None) -> None:
        if started is not None:
            self.seconds.observe(time.perf_counter() - started)


@functools.cache
def event_metrics(namespace: str, label: str, lightweight: bool) -> EventMetrics:
    """One per namespace and ``event_label`` (few by construction)."""
    return EventMetrics(namespace, label, LIGHTWEIGHT_TIMED_ONE_IN if lightweight else 1)


@functools.cache
def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per set of labels: prometheus_client takes a lock
    and builds its key on every ``labels`` call (about 2.5 µs here, four times the count itself),
    and delivery counts every server event, the listener every broker message. Only for labels
    few by construction (a server event's name, a broker message's kind)."""
    return metric.labels(*labels)


# ---------------------------------------------------------------- GC pauses
_gc_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        return
    generation = str(info["generation"])
    GC_PAUSE.labels(generation).inc(time.perf_counter() - _gc_started[0])
    GC_COLLECTIONS.labels(generation).inc()


def watch_gc() -> None:
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


# ---------------------------------------------------------------- HTTP
class MetricsMiddleware:
    """Counts every HTTP request by the view that answered it (``unmatched`` when none did)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match else "unmatched"
        HTTP_REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        HTTP_SECONDS.labels(view).observe(time.perf_counter() - started)
        return response


def process_stopping() -> None:
    """A stopping process's live gauges leave the multiprocess sum."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())


# ---------------------------------------------------------------- the endpoint
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(status=403)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        # Constant time: a comparison that stops at the first wrong byte tells a prober how many were right.
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())
    try:
        address = ipaddress.ip_address(client_address(request.META))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)
