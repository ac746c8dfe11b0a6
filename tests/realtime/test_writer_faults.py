"""The websocket writer (``reading.WebSocketReader._writer``) ends on any failure, as engineio's
does; a failure on a live connection is a fault of ours (framing, encoding) and is logged once a
process with its traceback, where engineio's bare ``except`` kept it silent. A connection that
went is closed quietly. A unit test: no real connection fails in framing but by a bug."""

import asyncio
import logging

import pytest
from engineio import packet

from config.realtime import reading
from tests.live import run


class Closed:
    def is_closing(self) -> bool:
        return True


class Protocol:
    close_sent = False
    transport = Closed()


class Connection:
    """The websocket the writer writes to: what it was sent, and its close."""

    def __init__(self, protocol: Protocol | None = None) -> None:
        self.sent: list[str] = []
        self.closed = False
        if protocol is not None:
            self.protocol = protocol

    async def send(self, data: str) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True


class Writer(reading.WebSocketReader):
    """A socket with one packet queued, whose frame write fails with ``failure``."""

    def __init__(self, failure: BaseException, closing: bool = False) -> None:
        self.sid, self.closed, self.closing = "sid-1", False, closing
        self.failure = failure
        self.server = type("Server", (), {"ping_interval": 2, "ping_timeout": 5})()
        self.packets = [[packet.Packet(packet.MESSAGE, data='2["x"]')], []]

    async def poll(self) -> list:
        return self.packets.pop(0)

    def write_frame(self, frame: bytes) -> bool:
        raise self.failure


def write(writer: Writer, connection: Connection) -> None:
    run(asyncio.wait_for(writer._writer(connection), 5))


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(reading, "_failures_logged", False, raising=False)


def test_a_fault_in_framing_is_one_error_with_its_traceback_a_process(fresh, caplog):
    with caplog.at_level(logging.DEBUG, logger="config.realtime.reading"):
        for _ in range(3):
            connection = Connection()
            write(Writer(TypeError("a bug in our framing")), connection)
            assert connection.closed and connection.sent == []  # the writer ended, the connection closed
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "sid-1: writing to the websocket failed, connection closed (further failures at DEBUG)"
    ]
    assert isinstance(errors[0].exc_info[1], TypeError)
    assert [r.levelname for r in caplog.records].count("DEBUG") == 2


@pytest.mark.parametrize(
    ("failure", "closing", "protocol"),
    [
        (ConnectionResetError(), False, None),  # uvicorn's ClientDisconnected is an OSError too
        (RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'"), True, None),
        (RuntimeError("the transport closed under it"), False, Protocol()),
    ],
)
def test_a_connection_that_went_is_closed_quietly(fresh, caplog, failure, closing, protocol):
    with caplog.at_level(logging.DEBUG, logger="config.realtime.reading"):
        connection = Connection(protocol)
        write(Writer(failure, closing=closing), connection)
    assert connection.closed
    assert caplog.records == []
