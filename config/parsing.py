"""One parser per id kind, one answer per kind of wrong: an id that is malformed is
``VALIDATION_ERROR`` (the client has a bug); a well-formed id that names nothing the caller
may see is ``NOT_FOUND``, from whoever looks it up. Integer ids (users, messages,
notifications) are ``parse_id``; UUIDs (bookings) are ``parse_uuid``; an instant a client
recorded (a fix's ``recordedAt``) is ``parse_instant``. Socket handlers, services and the
serializer fields (``config.fields``) all call these."""

import uuid
from datetime import UTC, datetime
from typing import Any

from config.errors import ValidationError

MAX_ID = 2**63 - 1  # PostgreSQL bigint: a larger id would be a database error, not "not found"
MAX_ID_DIGITS = 32  # a longer string of digits is refused before int() reads it


def parse_id(value: Any, *, field: str) -> int:
    """A non-negative integer id within bigint, sent as a JSON number or as a string of ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS:
        number = int(value)  # every bigint, leading zeros or not; int() of a bounded string is cheap
    else:
        raise ValidationError(f"{field} must be an id", details={field: ["not an id"]})
    if not 0 <= number <= MAX_ID:  # 0 is well-formed; no row has it, so it is simply not found
        raise ValidationError(f"{field} must be an id", details={field: ["out of range"]})
    return number


def parse_uuid(value: Any, *, field: str) -> uuid.UUID:
    """A UUID sent as a string, in any spelling ``uuid.UUID`` reads (hyphens or not, braces, ``urn:uuid:``)."""
    if isinstance(value, uuid.UUID):
        return value  # from a URL's <uuid:...> converter
    if isinstance(value, str) and len(value) <= 45:  # the longest spelling: urn:uuid: and 36
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationError(f"{field} must be a UUID", details={field: ["not a uuid"]})


MAX_INSTANT_CHARS = 40  # "2026-12-06T10:00:00.123456+05:30" is 32: a longer string is refused unread


def parse_instant(value: Any, *, field: str) -> datetime:
    """An instant sent as an ISO 8601 date and time with its UTC offset (``Z`` or ``+05:30``), in UTC.

    A time without an offset names no instant (whose clock?), so it is refused like any other
    malformed value; whether the instant is acceptable (not in the future...) is the caller's rule.
    """
    if isinstance(value, str) and len(value) <= MAX_INSTANT_CHARS and value.isascii() and "T" in value.upper():
        try:
            at = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
            if at.tzinfo is not None and at.utcoffset() is not None:
                return at.astimezone(UTC)
        except (ValueError, OverflowError):  # OverflowError: year 1 with a positive offset
            pass
    raise ValidationError(
        f"{field} must be a date and time with an offset", details={field: ["not a date and time with an offset"]}
    )


def parse_user_id(value: Any, *, field: str = "userId") -> int:
    return parse_id(value, field=field)


def is_valid_text(value: Any) -> bool:
    """No string anywhere in ``value`` (dict keys included) holds a lone UTF-16 surrogate.

    JSON may spell one (``"\\ud800"``, what JavaScript sends for a truncated emoji),
    but it is not Unicode text: no database column or UTF-8 encoder takes it.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
