"""JSON codecs (orjson): Engine.IO's, Socket.IO packets', and the emit entry point's."""

from typing import Any

import orjson

from config.realtime.inbound import decode_fallback


class OrjsonCodec:
    """stdlib-json-compatible shim: python-socketio passes ``separators=`` etc.

    ``loads`` raises ``ValueError`` on what is not JSON, as the standard library does:
    Engine.IO relies on it (a ``2probe`` packet's ``probe`` is text, not JSON).
    """

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(s: str | bytes, *args: Any, **kwargs: Any) -> Any:
        return orjson.loads(s)


class PacketCodec(OrjsonCodec):
    """For Socket.IO packets only: what orjson refuses becomes an answered refusal (``inbound``)."""

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
