"""``orm.unavailable``: which failures are the database being unavailable (``UNAVAILABLE``, one
warning) and which are bugs (an error with its traceback), on SQLite and PostgreSQL alike; and
``orm.warn_if_unavailable``, the one place where an unavailable database becomes one warning without
a traceback (a disconnect, an event, a control message, a shutdown hook, a partner's relay list after
a move), anything else being left to its caller as the fault it is.

The errors are real: raised by the drivers through Django's connections (a SQLite file locked by
another writer or that cannot be opened, a PostgreSQL port nobody listens on, statements that are
wrong). This file runs in both of CI's passes (.ci/run): PostgreSQL, then SQLite."""

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from django.db.utils import load_backend

from config.errors import Unavailable
from config.realtime.orm import log_failure, unavailable, warn_if_unavailable
from tests.live import free_port

WRONG_STATEMENTS = ("SELECT no_such_column FROM auth_user", "SELECT * FROM no_such_table", "SELEC 1")

logger = logging.getLogger("tests.unavailable")


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("couldn't get a connection after 4.00 sec"),
        InterfaceError("connection already closed"),
        Unavailable(),
    ],
)
def test_an_unavailable_database_is_one_warning_naming_what_failed_without_traceback(exc, caplog):
    with caplog.at_level(logging.DEBUG, logger="tests.unavailable"):
        assert warn_if_unavailable(logger, "disconnect of /partner abc", exc) is True
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    message = record.getMessage()
    assert message.startswith("disconnect of /partner abc: database unavailable (")
    assert type(exc).__name__ in message and str(exc) in message


def test_a_fault_is_left_to_the_caller_and_logs_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="tests.unavailable"):
        assert warn_if_unavailable(logger, "control x", RuntimeError("a bug")) is False
    assert caplog.records == []


def wrapper(alias: str, **database: Any) -> Any:
    """A connection of Django's own to a database of the test's (not the test database)."""
    settings_dict = connections.configure_settings({"default": database})["default"]
    return load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)


def raised(db: Any, sql: str) -> DatabaseError:
    try:
        with db.cursor() as cursor:
            cursor.execute(sql)
    except DatabaseError as exc:
        return exc
    finally:
        db.close()
    raise AssertionError(f"{sql!r} did not fail")


@pytest.mark.django_db
@pytest.mark.parametrize("sql", WRONG_STATEMENTS)
def test_a_wrong_statement_is_a_bug_not_unavailability_on_the_test_database(sql):
    """Whichever backend the run has: psycopg raises these as ProgrammingError, sqlite3 as
    OperationalError; neither is UNAVAILABLE, so neither is logged as an outage."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    except DatabaseError as exc:
        assert not unavailable(exc), (connection.vendor, exc)
    else:
        raise AssertionError(f"{sql!r} did not fail")


@pytest.mark.parametrize("sql", WRONG_STATEMENTS)
def test_a_wrong_statement_on_sqlite_is_a_bug_though_sqlite3_calls_it_operational(sql, tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        exc = raised(wrapper("wrong", ENGINE="django.db.backends.sqlite3", NAME=str(tmp_path / "x.sqlite3")), sql)
    assert isinstance(exc, OperationalError) and isinstance(exc.__cause__, sqlite3.OperationalError)
    assert not unavailable(exc), exc


def test_a_sqlite_database_locked_by_another_writer_is_unavailable(tmp_path, django_db_blocker):
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    try:
        db = wrapper("locked", ENGINE="django.db.backends.sqlite3", NAME=str(path), OPTIONS={"timeout": 0.05})
        with django_db_blocker.unblock():
            exc = raised(db, "INSERT INTO t VALUES (1)")
    finally:
        holder.close()
    assert isinstance(exc, OperationalError) and "database is locked" in str(exc)
    assert unavailable(exc)


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path, django_db_blocker):
    missing = Path(tmp_path, "no-such-folder", "x.sqlite3")
    with django_db_blocker.unblock():
        exc = raised(wrapper("gone", ENGINE="django.db.backends.sqlite3", NAME=str(missing)), "SELECT 1")
    assert isinstance(exc, OperationalError) and "unable to open database file" in str(exc)
    assert unavailable(exc)


def test_a_postgresql_nobody_answers_is_unavailable(django_db_blocker):
    db = wrapper(
        "refused",
        ENGINE="django.db.backends.postgresql",
        NAME="homeservices",
        USER="postgres",
        HOST="127.0.0.1",
        PORT=str(free_port()),  # nothing listens there
        OPTIONS={"connect_timeout": 2},
    )
    with django_db_blocker.unblock():
        exc = raised(db, "SELECT 1")
    assert isinstance(exc, OperationalError) and "refused" in str(exc).lower()
    assert unavailable(exc)


def test_log_failure_is_one_warning_for_an_outage_and_an_error_with_traceback_for_a_fault(caplog):
    with caplog.at_level(logging.DEBUG, logger="tests.unavailable"):
        log_failure(logger, "control x", OperationalError("couldn't get a connection after 4.00 sec"))
        log_failure(logger, "control x", RuntimeError("a bug"))
    outage, fault = caplog.records
    assert outage.levelno == logging.WARNING and outage.exc_info is None
    assert outage.getMessage().startswith("control x: database unavailable (OperationalError: ")
    assert fault.levelno == logging.ERROR and fault.getMessage() == "control x failed"
    assert fault.exc_info is not None and isinstance(fault.exc_info[1], RuntimeError)
