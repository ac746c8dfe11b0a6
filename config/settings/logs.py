"""Logging: one console handler, plain or JSON lines, and the libraries' loggers kept quiet."""

import os

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
