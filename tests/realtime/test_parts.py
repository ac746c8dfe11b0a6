"""Namespaces are composed from the apps' parts: each event declared once, with its options, by its owner."""

import asyncio
from typing import Any

import pytest

from config.errors import Forbidden
from config.realtime import namespace as namespace_module
from config.realtime.catalogue import NOTHING
from config.realtime.inbound import ACK_WANTED
from config.realtime.namespace import compose
from config.realtime.orm import OrmLoad
from config.realtime.parts import AdmitsConnects, Part, RestoresRooms
from config.realtime.token_lifetime import TOKEN_REFRESH


def _part(*names: str, **options: Any) -> Part:
    part = Part()
    for name in names:

        @part.event(name, summary=name, payload=NOTHING, **options)
        async def handle(namespace: Any, sid: str, payload: Any, name: str = name) -> dict[str, Any]:
            return {"handled": name}

    return part


def test_an_event_has_one_owner():
    with pytest.raises(ValueError, match="declared twice"):
        _part("x:one", "x:one")
    with pytest.raises(ValueError, match="declared by two parts"):
        compose("/parts-test", role="user", parts=(_part("x:one"), _part("x:one")))
    with pytest.raises(ValueError, match="declared by two parts"):  # nor may a part take the base's
        compose("/parts-test", role="user", parts=(_part("auth:refresh"),))


def test_a_part_has_one_hook_of_each_kind():
    part = Part()

    async def hook(namespace: Any, sid: str, session: Any) -> None: ...

    part.on_connected(hook)
    part.on_disconnected(hook)
    with pytest.raises(ValueError, match="one connected hook"):  # not replaced without a word
        part.on_connected(hook)
    with pytest.raises(ValueError, match="one disconnected hook"):
        part.on_disconnected(hook)


def test_the_root_composes_the_apps_parts_in_order():
    import config.asgi  # the composition root (it builds the namespaces)
    from bookings.sockets import partner_jobs
    from messaging.sockets import chat, safety_alerts
    from partners.sockets import partner

    partner_ns = next(ns for ns in config.asgi.NAMESPACES if ns.namespace == "/partner")
    assert partner_ns.parts == (chat, partner_jobs, partner, safety_alerts, TOKEN_REFRESH)
    assert partner_ns.role == "partner"
    # The event's options are its owner's declaration: bookings says the relay needs no database.
    assert partner_ns.client_events["location:update"] is partner_jobs.events["location:update"]
    assert {name for name, e in partner_ns.client_events.items() if e.lightweight} == {"location:update"}
    assert {name: e.rate_key for name, e in partner_ns.client_events.items() if e.rate_key} == {
        "typing:start": "typing",
        "typing:stop": "typing",
    }
    # Messaging says a call for help is never a reason to disconnect (contract 10.3).
    assert {name for name, e in partner_ns.client_events.items() if e.keeps_socket} == {"safety:alert"}
    with pytest.raises(Forbidden):  # the partners' rule for who may connect
        partner_ns.qualify({"is_partner": False})
    # What the server and recovery ask of every composed namespace, by name: a rename fails here.
    assert all(isinstance(ns, AdmitsConnects) and isinstance(ns, RestoresRooms) for ns in config.asgi.NAMESPACES)
    assert "admit_connect" in vars(AdmitsConnects)  # the name the server reads (Server._connect_namespace)


def test_options_come_from_the_declaration(monkeypatch):
    """Under ORM load only a lightweight event is handled; a shared rate key is what is counted."""
    heavy = _part("x:heavy")
    light = _part("x:light", lightweight=True)
    shared = _part("x:shared", rate_key="x-limit", lightweight=True)
    ns = compose("/parts-test", role="user", parts=(heavy, light, shared))
    counted: list[str] = []

    async def session(sid: str) -> dict[str, Any]:
        return {"uid": 1, "user_id": "1"}

    monkeypatch.setattr(ns, "get_session", session)  # no server around it: the refusals read it
    monkeypatch.setattr(ns, "_session_now", lambda sid: {"uid": 1, "user_id": "1"})  # and the dispatch
    monkeypatch.setattr(namespace_module.limiter, "hit", lambda uid, key: counted.append(key))
    monkeypatch.setattr(namespace_module.catalogue, "payload_problem", lambda *args: None)
    monkeypatch.setattr(OrmLoad, "busy", classmethod(lambda cls: True))

    async def call(event: str) -> Any:
        ACK_WANTED.set(True)  # answered in the ack, as a client asking for one is
        return await ns.trigger_event(event, "sid", None)

    assert asyncio.run(call("x:light")) == {"ok": True, "handled": "x:light"}
    assert asyncio.run(call("x:shared")) == {"ok": True, "handled": "x:shared"}
    refused = asyncio.run(call("x:heavy"))
    assert refused["ok"] is False and refused["error"]["code"] == "UNAVAILABLE"
    assert counted == ["x:light", "x-limit", "x:heavy"]
    unknown = asyncio.run(call("x_heavy"))  # no spelling but the declared one reaches a handler
    assert unknown["error"]["code"] == "VALIDATION_ERROR"
