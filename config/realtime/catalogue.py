"""The event catalogue: every Socket.IO event with its direction, namespaces and payload schema.

Apps declare their events next to the code that builds or handles them
(``<app>/events.py`` for server events, ``<app>/sockets.py`` for client events);
``config/asyncapi.py`` turns the catalogue into the AsyncAPI document. The test suite
keeps it honest: every handler and every emitted event name must be declared, and every
payload the services emit during the tests must validate against its schema. Every
payload a client sends is checked against its event's schema before the handler runs.
"""

import functools
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

Schema = dict[str, Any]


@dataclass(frozen=True)
class EventSpec:
    name: str
    direction: str  # "client" (client -> server) or "server" (server -> client)
    namespaces: tuple[str, ...]
    payload: Schema
    summary: str
    ack: Schema | None = None  # client events: the extra fields of a successful ack
    # Server events the next one supersedes (positions, typing, figures): never logged for
    # connection state recovery, never replayed (``recovery``).
    volatile: bool = False
    # Server events a person's safety waits on (an SOS): their recovery-log write is bounded by
    # ``recovery.URGENT_STORE_TIMEOUT``, not ``STORE_TIMEOUT``, so a broker that does not answer
    # delays them by a blink, and they go out unlogged (``config.realtime.manager._log``).
    urgent: bool = False


_catalogue: dict[tuple[str, str, str], EventSpec] = {}


def client_event(
    name: str, *, namespaces: tuple[str, ...], payload: Schema, summary: str, ack: Schema | None = None
) -> None:
    """Declare what a client may send. Fields the schema does not name are ignored, not refused:
    an app a version ahead of the server keeps working (the declared ones are checked)."""
    payload = _open(payload)
    for namespace in namespaces:
        _catalogue[("client", namespace, name)] = EventSpec(name, "client", (namespace,), payload, summary, ack)


def server_event(
    name: str,
    *,
    namespaces: tuple[str, ...],
    payload: Schema,
    summary: str,
    volatile: bool = False,
    urgent: bool = False,
) -> None:
    for namespace in namespaces:
        spec = EventSpec(name, "server", (namespace,), payload, summary, volatile=volatile, urgent=urgent)
        _catalogue[("server", namespace, name)] = spec
        if volatile:
            _volatile.add((namespace, name))
        if urgent:
            _urgent.add((namespace, name))


_volatile: set[tuple[str, str]] = set()
_urgent: set[tuple[str, str]] = set()


def _open(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_open(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {key: _open(value) for key, value in schema.items() if (key, value) != ("additionalProperties", False)}


def is_volatile(namespace: str, name: str) -> bool:
    return (namespace, name) in _volatile


def is_urgent(namespace: str, name: str) -> bool:
    return (namespace, name) in _urgent


def events() -> list[EventSpec]:
    return list(_catalogue.values())


def spec(direction: str, namespace: str, name: str) -> EventSpec | None:
    return _catalogue.get((direction, namespace, name))


def violations(message: dict[str, Any]) -> list[str]:
    """What is wrong with an emitted message's payload against its declared schema (none: it conforms).

    For the test suite (its own emits, and every server process it starts, with
    ``EMIT_VALIDATION``): a JSON Schema check costs far more than the delivery it checks.
    """
    declared = spec("server", message["namespace"], message["event"])
    if declared is None:
        return [f"{message['namespace']} {message['event']}: not in the catalogue"]
    return [
        f"{message['namespace']} {message['event']} {list(error.path)}: {error.message}"
        for error in _validator(message["namespace"], message["event"]).iter_errors(message["data"][0])
    ]


def payload_problem(namespace: str, name: str, payload: Any) -> tuple[str, str] | None:
    """Where a client's payload breaks its event's declared schema, and which rule: ``(path, keyword)``.

    Every client event is checked before its handler runs (``BaseNamespace.trigger_event``), with
    jsonschema-rs: ``is_valid`` first, about half the cost of asking for the first error, which is
    looked for only in a payload that breaks the schema. The answer names the field and the rule,
    never the value (it may be large, or personal).
    """
    validator = _client_validator(namespace, name)
    try:
        if validator.is_valid(payload):
            return None
        error = next(validator.iter_errors(payload), None)
    except ValueError:  # nested deeper than the validator recurses: no payload of ours is
        return "payload", "depth"
    if error is None:
        return None
    path = ".".join(str(part) for part in error.instance_path) or "payload"
    keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
    return path, keyword


@functools.cache
def _client_validator(namespace: str, name: str) -> Any:
    return jsonschema_rs.validator_for(_catalogue[("client", namespace, name)].payload)


@functools.cache
def _validator(namespace: str, name: str) -> Any:
    import jsonschema  # drf-spectacular's dependency; loaded only where payloads are checked

    return jsonschema.Draft7Validator(_catalogue[("server", namespace, name)].payload)


# ---------------------------------------------------------------- schema helpers
STRING: Schema = {"type": "string"}
ID: Schema = {"type": "string", "pattern": "^[0-9]+$", "description": "an id, as a string of digits"}
UUID: Schema = {"type": "string", "format": "uuid"}
TIME: Schema = {"type": "string", "format": "date-time"}
NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
BOOLEAN: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
NOTHING: Schema = {"description": "no payload (anything sent is ignored)"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def enum(values: list[str] | tuple[str, ...]) -> Schema:
    return {"type": "string", "enum": list(values)}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with exactly these fields (``optional`` may be absent)."""
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def one_of(*schemas: Schema) -> Schema:
    return {"oneOf": list(schemas)}


LOCATION = obj({"latitude": NUMBER, "longitude": NUMBER})
PERSON = obj({"id": ID, "name": STRING})
