"""drf-spectacular hook: every operation documents the contract's error responses, and request text its rules.

Any operation can answer 401 (no valid credentials), 403, 404, 400 ``VALIDATION_ERROR``,
409, 429 ``RATE_LIMITED`` and 503 ``UNAVAILABLE``, always with the body
``{code, message, details?}``; writing them on each view would only let them drift.
"""

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "example": "VALIDATION_ERROR"},
        "message": {"type": "string"},
        "details": {},
        "retryAfter": {"type": "integer", "description": "seconds (RATE_LIMITED only)"},
    },
    "required": ["code", "message"],
}
ERRORS = {
    "400": "Invalid input (VALIDATION_ERROR, details per field)",
    "401": "No valid credentials (AUTH_REQUIRED, TOKEN_INVALID, TOKEN_EXPIRED)",
    "403": "Not allowed for this user (FORBIDDEN)",
    "404": "No such object, or a page past the last (NOT_FOUND)",
    "405": "Method not allowed",
    "409": "Not allowed in the object's current state (INVALID_TRANSITION, CONFLICT)",
    "413": "Request body too large",
    "415": "Unsupported media type",
    "429": "Too many requests (RATE_LIMITED, with retryAfter)",
    "500": "Unexpected error (INTERNAL_ERROR)",
    "503": "A dependency is down or the process is stopping (UNAVAILABLE)",
}


# DRF refuses NUL characters in text (PostgreSQL cannot store them) and we refuse lone surrogates.
NO_NUL = "^[^\\u0000\\ud800-\\udfff]*$"


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request"):
            _refuse_nul(schema)
    schemas["Error"] = ERROR_SCHEMA
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result


def _refuse_nul(schema: Any) -> None:
    """Text in request bodies: say that NUL characters are refused (it is part of the rules)."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "format", "enum"} & schema.keys():
            schema["pattern"] = NO_NUL
        for value in schema.values():
            _refuse_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _refuse_nul(value)
