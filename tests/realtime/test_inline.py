"""An inline event's dispatch (``config.realtime.inline``): its namespace called directly, its
answer acked as python-socketio acks it, anything else (a decorator handler, another event) its way."""

import asyncio
from typing import Any

import pytest
import socketio

from config.realtime.inbound import ACK_WANTED
from config.realtime.inline import InlineEvents
from tests.live import run


class _Namespace:
    inline_events = frozenset({"location:update"})

    def __init__(self, outcome: Any) -> None:
        self.outcome, self.calls = outcome, []

    async def trigger_event(self, event: str, sid: str, *args: Any) -> Any:
        self.calls.append((event, sid, args, ACK_WANTED.get()))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class _Manager:
    connected = True

    def sid_from_eio_sid(self, eio_sid: str, namespace: str) -> str:
        return f"sid-of-{eio_sid}"

    def is_connected(self, sid: str, namespace: str) -> bool:
        return self.connected


class _AsyncServer:
    """What ``InlineEvents`` takes from python-socketio's ``AsyncServer``."""

    not_handled = object()

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        self.their_way.append((namespace, id, data))


class _Server(InlineEvents, _AsyncServer):
    def __init__(self, outcome: Any) -> None:
        self.namespace = _Namespace(outcome)
        self.namespace_handlers = {"/partner": self.namespace}
        self.handlers: dict[str, Any] = {}
        self.manager = _Manager()
        self.their_way: list[Any] = []
        self.answers: list[Any] = []
        self.strays: list[Any] = []

    def stray(self, eio_sid: str, namespace: str, kind: str) -> None:
        self.strays.append((eio_sid, namespace, kind))

    async def answer(self, eio_sid: str, namespace: str, id: int, answer: Any) -> None:
        self.answers.append((eio_sid, namespace, id, answer))


def test_an_inline_event_calls_its_namespace_and_is_answered_only_when_asked():
    server = _Server({"ok": True, "relayed": 0})
    run(server._handle_event("e1", "/partner", 7, ["location:update", {"latitude": 1}]))
    run(server._handle_event("e1", "/partner", None, ["location:update", {"latitude": 2}]))
    assert server.namespace.calls == [
        ("location:update", "sid-of-e1", ({"latitude": 1},), True),
        ("location:update", "sid-of-e1", ({"latitude": 2},), False),
    ]
    assert server.answers == [("e1", "/partner", 7, {"ok": True, "relayed": 0})]
    assert server.their_way == []


def test_a_cancelled_inline_handler_is_answered_nothing_and_the_cancellation_goes_on():
    """As python-socketio lets a namespace handler's cancellation through: no empty ack."""
    server = _Server(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        run(server._handle_event("e1", "/partner", 7, ["location:update", {}]))
    assert server.answers == []


def test_other_events_decorator_handlers_and_unknown_namespaces_go_python_socketios_way():
    server = _Server({"ok": True})
    run(server._handle_event("e1", "/partner", 1, ["booking:reject", {}]))  # not inline
    run(server._handle_event("e1", "/elsewhere", 2, ["location:update", {}]))  # no namespace of ours
    server.handlers["*"] = {}  # a catch-all decorator handler could take it
    run(server._handle_event("e1", "/partner", 3, ["location:update", {}]))
    assert [id for _, id, _ in server.their_way] == [1, 2, 3]
    assert server.namespace.calls == [] and server.answers == []


def test_an_event_of_a_socket_no_longer_connected_is_a_stray_inline_or_not():
    """Dropped before python-socketio sees it, which logs a WARNING a packet for it (``strays``)."""
    server = _Server({"ok": True})
    server.manager.connected = False
    run(server._handle_event("e1", "/partner", 1, ["location:update", {}]))
    run(server._handle_event("e1", "/partner", 2, ["booking:reject", {}]))
    assert server.namespace.calls == [] and server.answers == [] and server.their_way == []
    assert server.strays == [("e1", "/partner", "event")] * 2


class _Watched:
    def watching(self, eio_sid: str) -> bool:
        return True  # a recovering connection's: every ack goes python-socketio's way, to be compared


class _Real(InlineEvents, socketio.AsyncServer):
    """python-socketio's server with ``InlineEvents``, its packets caught where they would be sent."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.recovering, self.result, self.sent = _Watched(), answer, []

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        return self.result

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        self.sent.append(pkt.encode())


@pytest.mark.parametrize("answer", [None, {"ok": True}, (1, "two"), [1, 2], "x", 0])
def test_an_inline_ack_is_the_packet_python_socketio_would_send(answer):
    """``answer`` builds the ACK as ``_handle_event_internal`` does (a tuple spread, ``None``: no argument)."""
    server = _Real(answer)
    run(server._handle_event_internal(server, "sid", "e1", ["location:update", {}], "/partner", 7))
    run(server.answer("e1", "/partner", 7, answer))
    theirs, ours = server.sent
    assert ours == theirs


def test_where_the_inline_path_is_taken_python_socketio_would_find_no_decorator_handler():
    """The inline path skips ``_trigger_event``'s decorator lookup only where it would find nothing."""

    async def handler(*args: Any) -> None:
        pass

    for handlers in ({}, {"/": {"*": handler}}, {"/customer": {"location:update": handler}}):
        server = socketio.AsyncServer()
        server.handlers = handlers
        assert not ("/partner" in server.handlers or "*" in server.handlers)  # inline, for InlineEvents
        assert server._get_event_handler("location:update", "/partner", ("sid", {}))[0] is None, handlers
