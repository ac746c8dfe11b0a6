"""The AsyncAPI 3 document of every Socket.IO event, built from the event catalogue.

Served at ``/api/asyncapi.json`` and ``/api/asyncapi.yaml``. One channel per namespace;
client events are operations the server *receives* (each with its ack as the reply),
server events operations it *sends*. The catalogue is declared next to the payload
builders and handlers and kept true by the test suite (``tests/config/test_asyncapi.py``).
"""

from functools import cache
from typing import Any

import yaml
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.errors import ERROR_CODES
from config.realtime import catalogue
from config.realtime.server import documented_namespaces

ERROR = catalogue.obj(
    {"code": catalogue.enum(ERROR_CODES), "message": catalogue.STRING},
    {"retryAfter": catalogue.INTEGER, "details": {}},
)


def _key(name: str) -> str:
    """AsyncAPI keys allow no ':' (``booking:track`` -> ``booking_track``)."""
    return name.replace(":", "_")


def _ack(spec: catalogue.EventSpec) -> dict[str, Any]:
    ok = {"ok": {"const": True}, **((spec.ack or {}).get("properties") or {})}
    return {
        "oneOf": [
            {"type": "object", "properties": ok, "required": ["ok", *((spec.ack or {}).get("required") or [])]},
            catalogue.obj({"ok": {"const": False}, "error": ERROR}),
        ]
    }


@cache
def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for namespace in documented_namespaces():
        channel_id = namespace.strip("/") or "root"
        messages: dict[str, Any] = {}
        for spec in sorted(
            (e for e in catalogue.events() if namespace in e.namespaces), key=lambda e: (e.direction, e.name)
        ):
            key = _key(spec.name)
            messages[key] = {"name": spec.name, "summary": spec.summary, "payload": spec.payload}
            operation: dict[str, Any] = {
                "action": "receive" if spec.direction == "client" else "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": spec.summary,
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{key}"}],
            }
            if spec.direction == "client":
                messages[key + "_ack"] = {
                    "name": f"{spec.name} ack",
                    "summary": "The answer to the optional ack callback",
                    "payload": _ack(spec),
                }
                operation["reply"] = {"messages": [{"$ref": f"#/channels/{channel_id}/messages/{key}_ack"}]}
            operations[f"{channel_id}_{key}_{operation['action']}"] = operation
        channels[channel_id] = {"address": namespace, "title": f"The {namespace} namespace", "messages": messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Home services real-time backend: Socket.IO events",
            "version": "1.0.0",
            "description": (
                "Socket.IO 4 (Engine.IO v4) namespaces /customer, /partner and /admin. Every client event takes "
                "an optional ack answered {ok: true, ...} or {ok: false, error: {code, message}}; a failure of an "
                "event sent without an ack is emitted as `error` instead (one answer each). Connect with auth: "
                "{token: <access JWT>} (or an Authorization: Bearer "
                "header); a refused connect is connect_error with data.code AUTH_REQUIRED, TOKEN_INVALID, "
                "TOKEN_EXPIRED, FORBIDDEN or UNAVAILABLE. REST: /api/schema/."
            ),
        },
        "servers": {
            "production": {
                "host": (settings.ALLOWED_HOSTS or ["localhost"])[0].replace("*", "localhost"),
                "protocol": "wss",
                "pathname": "/socket.io/",
                "description": "Socket.IO over websocket (or HTTP long-polling first, then the upgrade)",
                "security": [{"$ref": "#/components/securitySchemes/accessToken"}],
            }
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "securitySchemes": {
                "accessToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "POST /api/auth/token/ -> access; sent as auth.token in the CONNECT packet",
                }
            }
        },
    }


def asyncapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document())


def asyncapi_yaml(request: HttpRequest) -> HttpResponse:
    return HttpResponse(yaml.safe_dump(document(), sort_keys=False), content_type="application/yaml")
