"""What python-engineio and python-socketio log at a client's doing: a WARNING once a process, then
counted (``homeservices_client_caused_warnings_total``), not logged.

``LOGGING`` (config/settings/logs.py) owns the libraries' loggers, ``engineio.server`` and
``socketio.server``: the servers are handed them (``config.realtime.server``), so the libraries
neither lower them to ERROR nor add a handler of their own (which printed each ERROR twice).
Their WARNINGs show; the ones a client can cause at will, one a request or a connection, must
not become a flood of the log on its demand. Read in python-engineio 4 / python-socketio 5:

- "Application rejected connection": a connect refused (ours: past ``SESSIONS_PER_ADDRESS``);
- "Method %s not supported": an HTTP method other than GET, POST, OPTIONS on ``/socket.io/``;
- "Cannot send to sid %s": an answer or an event for a session that closed meanwhile (a client
  that asks and leaves at once, connection after connection).

The others are ours already: engineio's refused requests (``EngineServer._log_error_once``),
packets for a namespace the session is not in (``strays``), unreadable packets (one line that
closes the session). Keyed by the library's message template, not by the values in it.

Not INFO after the first, as engineio's own: ``LOGGING`` keeps these loggers at WARNING, so an
INFO line would never show, and the count would be lost with it.
"""

import logging

from config import metrics

# The library's template: the metric's label.
CLIENTS_DOING = {
    "Application rejected connection": "rejected-connection",
    "Method %s not supported": "method-not-supported",
    "Cannot send to sid %s": "send-to-closed-sid",
}
FURTHER = " (further occurrences are counted in homeservices_client_caused_warnings_total, not logged)"


class ClientsDoingLoggedOnce(logging.Filter):
    """A WARNING the first time each of ``CLIENTS_DOING`` is logged; after, counted and dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or record.msg not in CLIENTS_DOING:
            return True
        if record.msg not in self.seen:
            self.seen.add(record.msg)
            record.msg += FURTHER
            return True
        metrics.child(metrics.CLIENT_CAUSED_WARNINGS, CLIENTS_DOING[record.msg]).inc()
        return False


clients_doing_logged_once = ClientsDoingLoggedOnce()  # one object: a second server adds nothing
