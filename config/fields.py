"""Strict serializer fields, shared by REST inputs and socket payloads (contract 8.1).

DRF's own fields coerce: ``true`` is a valid float and integer, ``1`` and ``"yes"``
valid booleans. The contract says booleans are never numbers and numbers never
booleans, so inputs use these instead.
"""

from typing import Any

from rest_framework import serializers

from config.parsing import MAX_ID


class StrictFloatField(serializers.FloatField):
    """A JSON number; ``true`` is not 1.0 and ``"12.5"`` is not a number."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (or a string of ASCII digits, as ids travel); never a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 19)
        ):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: neither 1 nor ``"true"``."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def id_field(queryset: Any, **kwargs: Any) -> serializers.PrimaryKeyRelatedField:
    """A reference by integer id (a boolean is not an id; an id past bigint is not found)."""
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, pk_field=StrictIntegerField(min_value=1, max_value=MAX_ID), **kwargs
    )
