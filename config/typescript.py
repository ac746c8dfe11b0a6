"""The TypeScript package for client developers (``sdk/typescript/``), generated from the event catalogue.

Contract 10.4: per namespace ``<Namespace>ServerToClientEvents`` / ``<Namespace>ClientToServerEvents``
for socket.io-client's ``Socket<Listen, Emit>``, every payload, ack and shape as a type, the error
codes as a union, and a small ``connect()``. It reads what the AsyncAPI document reads (the
catalogue, the shapes, the error codes), so an event declared tomorrow is in the package on the
next ``make sdk``; ``tests/sdk/test_typescript.py`` fails while the committed package differs.

    python -m config.typescript   # rewrites sdk/typescript/index.d.ts and index.js (make sdk)
"""

import json
import os
import re
from pathlib import Path
from typing import Any

import django
from django.urls import get_resolver

from config.realtime import catalogue

PACKAGE = Path(__file__).resolve().parent.parent / "sdk" / "typescript"
HEADER = "// Generated from the event catalogue by `make sdk` (config/typescript.py). Do not edit.\n"
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Keywords that say nothing about a value's TypeScript type.
_ANNOTATIONS = {"description", "title", "format", "pattern", "minimum", "maximum", "minLength", "maxLength"}
_PRIMITIVES = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean", "null": "null"}


def pascal(name: str) -> str:
    """``booking:status_updated`` -> ``BookingStatusUpdated``; ``/customer`` -> ``Customer``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def takes_nothing(schema: catalogue.Schema) -> bool:
    """A client event without a payload (``catalogue.NOTHING``): its signature is the ack alone."""
    return not set(schema) - _ANNOTATIONS


class Types:
    """TypeScript declarations for JSON Schemas; a schema equal to a declared one is written by its name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.declared: dict[str, str] = {}  # name -> the schema it stands for
        self.text: list[str] = []

    def declare(self, name: str, schema: catalogue.Schema, doc: str = "") -> str:
        key = _key(schema)
        if name in self.declared:
            if self.declared[name] != key:
                raise ValueError(f"two different schemas want the TypeScript name {name}")
            return name
        # An event whose payload is a shape (booking:created) says so: ``= Booking``.
        body = self.names.get(key) or self.type(schema, top=True)
        self.text.append(f"{_doc(doc)}export type {name} = {body};\n")
        self.declared[name] = key
        self.names.setdefault(key, name)
        return name

    def type(self, schema: Any, indent: str = "", top: bool = False) -> str:
        if not isinstance(schema, dict):
            return "unknown"
        if not top and _key(schema) in self.names:
            return self.names[_key(schema)]
        if "const" in schema:
            return json.dumps(schema["const"])
        if "enum" in schema:
            return " | ".join(json.dumps(value) for value in schema["enum"])
        for combinator, glue in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")):
            if combinator in schema:
                return glue.join(_group(self.type(option, indent)) for option in schema[combinator])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(_group(self.type({**schema, "type": each}, indent)) for each in kind)
        if kind == "array":
            return f"{_group(self.type(schema.get('items', {}), indent))}[]"
        if kind == "object" or "properties" in schema:
            return self._object(schema, indent)
        return _PRIMITIVES.get(kind, "unknown")

    def _object(self, schema: catalogue.Schema, indent: str) -> str:
        properties = schema.get("properties") or {}
        if not properties:
            return "Record<string, unknown>"
        required = set(schema.get("required") or ())
        inner = indent + "  "
        fields = []
        for name, field in properties.items():
            key = name if _IDENTIFIER.match(name) else json.dumps(name)
            optional = "" if name in required else "?"
            described = _doc(field.get("description", ""), inner) if isinstance(field, dict) else ""
            fields.append(f"{described}{inner}{key}{optional}: {self.type(field, inner)};")
        return "{\n" + "\n".join(fields) + f"\n{indent}}}"


def _key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True)


def _group(text: str) -> str:
    """Parenthesised where a union sits inside another type: ``(A | B)[]``."""
    return f"({text})" if (" | " in text or " & " in text) and not text.startswith("{") else text


def _doc(text: str, indent: str = "") -> str:
    return f"{indent}/** {' '.join(text.split()).replace('*/', '* /')} */\n" if text else ""


def _event_types(
    types: Types, specs: list[catalogue.EventSpec], suffix: str, schema_of: Any
) -> dict[tuple[str, str], str]:
    """One type per event and role (``BookingTrackRequest``), prefixed by its namespace
    (``AdminFooPayload``) only where namespaces disagree on the event's schema."""
    names: dict[tuple[str, str], str] = {}
    for name in sorted({spec.name for spec in specs}):
        same = [spec for spec in specs if spec.name == name]
        shared = len({_key(schema_of(spec)) for spec in same}) == 1
        for spec in same:
            prefix = "" if shared else pascal(spec.namespaces[0])
            names[_id(spec)] = types.declare(prefix + pascal(name) + suffix, schema_of(spec), spec.summary)
    return names


def _id(spec: catalogue.EventSpec) -> tuple[str, str]:
    return spec.namespaces[0], spec.name


def _interface(name: str, doc: str, members: list[tuple[catalogue.EventSpec, str]]) -> str:
    lines = [f"{_doc(spec.summary, '  ')}  {json.dumps(spec.name)}: {signature};" for spec, signature in members]
    return f"{_doc(doc)}export interface {name} {{\n" + "\n".join(lines) + "\n}\n"


def declarations() -> str:
    """``index.d.ts``: every type, the namespaces' event maps and ``connect``."""
    from config.asyncapi import ERROR  # the ack's error, as the AsyncAPI document declares it
    from config.errors import ERROR_CODES
    from config.realtime.server import documented_namespaces
    from config.shapes import shapes

    namespaces = documented_namespaces()
    specs = [spec for spec in catalogue.events() if spec.namespaces[0] in namespaces]
    server = [spec for spec in specs if spec.direction == "server"]
    client = [spec for spec in specs if spec.direction == "client"]

    # Every shape, whatever this process imported so far: the URLconf imports every REST view's
    # module (the trace's shape is declared only there), so the package is the same in any process.
    _ = get_resolver().url_patterns
    types = Types()
    types.declare("ErrorCode", catalogue.enum(ERROR_CODES), "Every error code the server answers with.")
    types.declare("ErrorBody", ERROR, "A refusal: in a failed ack, an `error` event, a connect_error's `data`.")
    # Smallest first: a shape inside another (PartnerSummary in Booking) is named there.
    for declared in sorted(shapes(), key=lambda shape: (len(_key(shape.schema)), shape.name)):
        types.declare(declared.name, declared.schema, (declared.build.__doc__ or "").split("\n\n")[0])
    payloads = _event_types(types, server, "Payload", lambda spec: spec.payload)
    requests = _event_types(types, [s for s in client if not takes_nothing(s.payload)], "Request", lambda s: s.payload)
    replies = _event_types(types, [s for s in client if s.ack], "Reply", lambda spec: spec.ack)

    def emits(spec: catalogue.EventSpec) -> str:
        reply = f"Ack<{replies[_id(spec)]}>" if _id(spec) in replies else "Ack"
        payload = f"payload: {requests[_id(spec)]}, " if _id(spec) in requests else ""
        return f"({payload}ack: (res: {reply}) => void) => void"

    parts = [HEADER, 'import type { ManagerOptions, Socket, SocketOptions } from "socket.io-client";\n', *types.text]
    parts.append(
        "/** Every client event's ack: `{ok: true, ...reply}` or `{ok: false, error}` (an event sent without an"
        " ack is refused with the `error` event instead). */\n"
        "export type Ack<Reply extends object = {}> = ({ ok: true } & Reply) | { ok: false; error: ErrorBody };\n"
    )
    sockets = []
    for namespace in namespaces:
        prefix = pascal(namespace)
        listens = sorted((s for s in server if s.namespaces[0] == namespace), key=lambda s: s.name)
        sends = sorted((s for s in client if s.namespaces[0] == namespace), key=lambda s: s.name)
        parts.append(
            _interface(
                f"{prefix}ServerToClientEvents",
                f"What the server sends on {namespace}.",
                [(spec, f"(payload: {payloads[_id(spec)]}) => void") for spec in listens],
            )
        )
        parts.append(
            _interface(
                f"{prefix}ClientToServerEvents",
                f"What a client may send on {namespace}; every event takes an ack.",
                [(spec, emits(spec)) for spec in sends],
            )
        )
        parts.append(
            f"export type {prefix}Socket = Socket<{prefix}ServerToClientEvents, {prefix}ClientToServerEvents>;\n"
        )
        sockets.append(f"  {json.dumps(namespace)}: {prefix}Socket;")
    parts.append("/** The socket of each namespace. */\nexport interface Sockets {\n" + "\n".join(sockets) + "\n}\n")
    parts.append(_CONNECT_DECLARATIONS)
    return "\n".join(parts)


_CONNECT_DECLARATIONS = """export type Namespace = keyof Sockets;
export declare const NAMESPACES: readonly Namespace[];
/** An access token, or a function asked for a fresh one on every (re)connect. */
export type Token = string | (() => string | Promise<string>);
/** A refused connect: socket.io-client's `connect_error`, the server's reason in `data`. */
export type ConnectError = Error & { data?: ErrorBody };
/**
 * A typed socket on `namespace` of the server at `url` (the page's own origin when omitted),
 * authenticated with `token`. Other socket.io-client options pass through.
 */
export declare function connect<N extends Namespace>(
  namespace: N,
  token: Token,
  url?: string,
  options?: Partial<ManagerOptions & SocketOptions>,
): Sockets[N];
"""


def runtime() -> str:
    """``index.js``: ``connect`` over socket.io-client, the package's only code."""
    from config.realtime.server import documented_namespaces

    return f"""{HEADER}import {{ io }} from "socket.io-client";

export const NAMESPACES = Object.freeze({json.dumps(documented_namespaces())});

export function connect(namespace, token, url = "", options = {{}}) {{
  if (!NAMESPACES.includes(namespace)) throw new TypeError(`unknown namespace: ${{namespace}}`);
  // A function is asked again on every reconnect, so a refreshed token is used; one that
  // fails connects without a token, and the server answers connect_error AUTH_REQUIRED.
  const auth =
    typeof token === "function"
      ? (send) => Promise.resolve().then(token).then((fresh) => send({{ token: fresh }}), () => send({{}}))
      : {{ token }};
  return io(url.replace(/\\/+$/, "") + namespace, {{ ...options, auth }});
}}
"""


def package() -> dict[str, str]:
    """The generated files of ``sdk/typescript/``, by name."""
    return {"index.d.ts": declarations(), "index.js": runtime()}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    for name, text in package().items():
        (PACKAGE / name).write_text(text)
        print(f"wrote {PACKAGE / name}")


if __name__ == "__main__":
    main()
