"""Whether a failure is the database's outage (the contract's ``UNAVAILABLE``) or a bug, and the
one way each is logged: an outage one warning without a traceback, a bug an error with its own."""

import logging
import sqlite3

from django.db import InterfaceError, OperationalError

from config.errors import Unavailable

# SQLite's primary result codes that say the database could not be used, not that the statement
# was wrong: busy or locked by another writer, unable to open the file, disk I/O, disk full, out of
# memory, the locking protocol failing. A statement's own fault (no such column or table, a syntax
# error) is SQLITE_ERROR (1), an OperationalError too in sqlite3: a bug, not an outage.
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
}


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` is the contract's ``UNAVAILABLE``: the database failed, or a read was not
    answered (``Batched``: past its timeout, or cancelled by a stopping process). A client's connect
    or event gets ``UNAVAILABLE`` for these, and only these (``BaseNamespace``); a control message
    logs them as one warning (``hooks.on_control``).

    Django's ``OperationalError`` is what the driver calls one. psycopg keeps the statement's faults
    out of it (``ProgrammingError``): every one it raises is the server's state (a connection refused
    or lost, the pool's timeout, a shutdown, a statement cancelled, a lock or serialization conflict).
    sqlite3 raises a missing column or a syntax error as one too: there only the result codes above
    are unavailability, and the rest is the bug it is."""
    if isinstance(exc, (InterfaceError, Unavailable)):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _SQLITE_UNAVAILABLE  # extended codes carry the primary's low byte
    return True


def warn_if_unavailable(logger: logging.Logger, what: str, exc: BaseException) -> bool:
    """One warning on ``logger``, without a traceback, when ``exc`` is ``unavailable``; then True, and
    the caller carries on (the database's outage is not a bug: a traceback per failure would bury
    the log). False for anything else, which the caller raises or logs as the fault it is."""
    if not unavailable(exc):
        return False
    logger.warning("%s: database unavailable (%s: %s)", what, type(exc).__name__, exc)
    return True


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """``what`` failed with ``exc``: the database's outage is one warning without a traceback
    (``warn_if_unavailable``), anything else ``"<what> failed"``, an error with its traceback."""
    if not warn_if_unavailable(logger, what, exc):
        logger.error("%s failed", what, exc_info=exc)
