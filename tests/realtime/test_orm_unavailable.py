"""``orm.warn_if_unavailable``: the one place where an unavailable database becomes one warning
without a traceback (a disconnect, an event, a control message, a shutdown hook, a partner's relay
list after a move), and anything else is left to its caller as the fault it is."""

import logging

import pytest
from django.db import InterfaceError, OperationalError

from config.errors import Unavailable
from config.realtime.orm import warn_if_unavailable

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
