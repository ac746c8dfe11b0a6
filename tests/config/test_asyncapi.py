"""The AsyncAPI document: valid AsyncAPI 3, served, and true to the code.

Every handler a namespace has and every event name the code emits is in it; every payload
the services emit while the suite runs is checked against it (``tests/conftest.py``).
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import config.asgi  # noqa: F401 - the composition root registers the namespaces, and so their events
from config.asyncapi import document
from config.realtime import catalogue
from config.realtime.server import documented_namespaces, sio

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "js" / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
CODE = [ROOT / d for d in ("bookings", "partners", "messaging", "dashboard", "config")]


def handled(namespace: str) -> set[str]:
    """Client events the registered namespace dispatches: its parts' declarations."""
    return set(sio.namespace_handlers[namespace].client_events)


def emitted_in_code() -> set[str]:
    """Event names passed as a literal to ``emit``/``emit_now`` anywhere in the product, or written
    in a row of the lifecycle's table of announcements (``Tell``)."""
    names: set[str] = set()
    for folder in CODE:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("emit", "emit_now", "Tell")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    names.add(node.args[0].value)
    return names


def test_the_document_is_valid_asyncapi_3():
    if not SPEC.exists():
        pytest.skip("the AsyncAPI JSON schema comes with tests/js (npm ci)")
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document())]
    assert not errors, errors[:5]
    broken = {**document(), "operations": {"x": {"action": "shout"}}}
    assert list(validator.iter_errors(broken))  # the check can fail


def test_every_handled_event_is_declared_and_every_declared_one_handled():
    for namespace in documented_namespaces():
        declared = {e.name for e in catalogue.events() if e.direction == "client" and namespace in e.namespaces}
        assert handled(namespace) == declared, namespace


def test_every_emitted_event_is_declared():
    declared = {e.name for e in catalogue.events() if e.direction == "server"}
    in_code = emitted_in_code()
    assert in_code, "the scan found no emit calls"
    assert in_code <= declared, in_code - declared
    assert declared <= in_code | {"booking:created", "booking:updated"}, declared - in_code


def test_served_as_json_and_yaml(client):
    as_json = client.get("/api/asyncapi.json")
    assert as_json.status_code == 200 and as_json.json()["asyncapi"] == "3.0.0"
    as_yaml = client.get("/api/asyncapi.yaml")
    assert as_yaml.status_code == 200 and yaml.safe_load(as_yaml.content)["channels"].keys() == {
        "customer",
        "partner",
        "admin",
    }
    docs = client.get("/api/schema/").content.decode()
    assert "/api/asyncapi.json" in docs  # linked from the REST docs


def test_a_process_that_never_served_sockets_documents_every_namespace():
    """WSGI, a shell, the generator: nothing imported the composition root before the document
    was asked for, and it still has every namespace's channel."""
    code = "import django; django.setup(); from config.asyncapi import document; print(sorted(document()['channels']))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[-2] == str(sorted(ns.strip("/") for ns in documented_namespaces())), out.stdout
