"""The libraries' own log lines in a real server process, logging as in production (``LOGGING``):
their WARNINGs show, through LOGGING's handler only (the library's own printed each line a second
time); what a client causes at will stays one line however often it is caused."""

import inspect
import time
import urllib.error
import urllib.request

import engineio.async_server
import pytest

from config.realtime.library_logs import CLIENTS_DOING, FURTHER
from tests.live import ServerProcess, eventually, server_env

pytestmark = [pytest.mark.django_db(transaction=True)]


def put(url: str) -> int:
    """A PUT on the Engine.IO endpoint (engineio: "Method PUT not supported"): its status."""
    request = urllib.request.Request(url + "/socket.io/?EIO=4&transport=polling", data=b"x", method="PUT")
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as refused:
        return refused.code
    return 200


def lines_with(server: ServerProcess, text: str) -> list[str]:
    return [line for line in server.output().splitlines() if text in line]


def test_a_library_warning_shows_once_and_a_flood_of_it_stays_one_line():
    server = ServerProcess(server_env()).start()
    try:
        assert put(server.url) == 405
        eventually(lambda: lines_with(server, "not supported"), what="engineio's warning in the log")
        [first] = lines_with(server, "not supported")
        assert f" WARNING engineio.server Method PUT not supported{FURTHER}" in first
        assert [put(server.url) for _ in range(300)] == [405] * 300  # a client that keeps asking
        time.sleep(0.3)
        assert lines_with(server, "not supported") == [first]  # nor a copy by a handler of the library
    finally:
        server.stop()


def ask_and_leave(url: str) -> None:
    """An Engine.IO session on ``/faults`` that sends an event asking for an ack and, in the same
    POST, its CLOSE: the answer finds the session gone (engineio: "Cannot send to sid ...")."""
    handshake = urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=5).read().decode()
    sid = handshake.split('"sid":"')[1].split('"')[0]
    session = f"{url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    urllib.request.urlopen(urllib.request.Request(session, data=b"40/faults,", method="POST"), timeout=5).read()
    urllib.request.urlopen(session, timeout=5).read()  # the CONNECT's answer
    # raise_later answers at once and raises a minute later: never, the server is stopped before
    event_then_close = b'42/faults,1["raise_later",60]\x1e1'
    urllib.request.urlopen(urllib.request.Request(session, data=event_then_close, method="POST"), timeout=5).read()


def test_answers_for_sessions_that_left_are_one_line_however_many():
    server = ServerProcess(server_env()).start()
    try:
        ask_and_leave(server.url)
        eventually(lambda: lines_with(server, "Cannot send to sid"), what="engineio's warning in the log")
        for _ in range(20):  # a client that asks and leaves, connection after connection
            ask_and_leave(server.url)
        time.sleep(0.3)
        [line] = lines_with(server, "Cannot send to sid")
        assert " WARNING engineio.server " in line and line.endswith(FURTHER)
    finally:
        server.stop()


def test_the_lines_logged_once_are_the_library_s_own():
    """Matched by python-engineio's message templates: an upgrade that rewords one is found here."""
    source = inspect.getsource(engineio.async_server)
    assert [message for message in sorted(CLIENTS_DOING) if f"'{message}'" not in source] == []
