"""JSON codec for python-socketio and for the emit entry point (orjson)."""

from typing import Any

import orjson

from config.realtime.inbound import decode_fallback


class OrjsonCodec:
    """stdlib-json-compatible shim: python-socketio passes ``separators=`` etc."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(s: str | bytes, *args: Any, **kwargs: Any) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            return decode_fallback(s)


def roundtrip(payload: Any) -> Any:
    """Prove a payload is plain JSON now, at the call site.

    A ``datetime`` or ``Decimal`` that slipped into a builder fails here, in the
    service that built it, rather than later inside the channel layer.
    """
    # PASSTHROUGH_DATETIME: builders must format times themselves (ISO 8601).
    return orjson.loads(orjson.dumps(payload, option=orjson.OPT_PASSTHROUGH_DATETIME))
