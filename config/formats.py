"""Wire formats shared by every payload builder."""

from datetime import UTC, datetime

# The last second spelled (its fields, its text): a relayed position's timestamp is formatted on every
# update, and thousands a second share their second. One tuple, read and replaced whole: threads
# (the ORM's) format too.
_second: tuple[tuple[int, ...], str] = ((), "")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, spelled as DRF spells it (``...Z``, no fraction when there is none)."""
    global _second
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    fields = (value.second, value.minute, value.hour, value.day, value.month, value.year)
    seen, text = _second
    if fields != seen:
        text = value.isoformat(timespec="seconds").removesuffix("+00:00")
        _second = (fields, text)
    micro = value.microsecond
    return f"{text}.{micro:06d}Z" if micro else text + "Z"
