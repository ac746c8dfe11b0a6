"""Strict serializer fields, shared by REST inputs and socket payloads (contract 8.1).

DRF's own fields coerce: ``true`` is a valid float and integer, ``1`` and ``"yes"``
valid booleans. The contract says booleans are never numbers and numbers never
booleans, so inputs use these instead.
"""

import uuid
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.errors import NotFound, ValidationError
from config.parsing import MAX_ID, parse_id, parse_uuid


class StrictFloatField(serializers.FloatField):
    """A JSON number; ``true`` is not 1.0 and ``"12.5"`` is not a number."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


# Ids travel as JSON strings (contract 1) and are accepted as integers too.
ID_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        {"type": "string", "pattern": "^[0-9]{1,18}$"},
    ]
}


@extend_schema_field(ID_SCHEMA)
class StrictIntegerField(serializers.IntegerField):
    """An id: a JSON integer, or a string of at most 18 ASCII digits (so always within bigint); never a boolean."""

    def to_internal_value(self, data: Any) -> int:
        try:
            parse_id(data, field=self.field_name or "id")
        except ValidationError:
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: neither 1 nor ``"true"``."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


@extend_schema_field(ID_SCHEMA)
class ReferenceField(serializers.PrimaryKeyRelatedField):
    """A reference by id to an object that must exist: a well-formed id of nothing is ``NOT_FOUND``."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if "does_not_exist" in getattr(exc, "get_codes", lambda: [])():
                raise NotFound(f"no such {self.queryset.model._meta.verbose_name}") from exc
            raise


def id_field(queryset: Any, **kwargs: Any) -> serializers.PrimaryKeyRelatedField:
    """A reference by integer id (a boolean is not an id; an id past bigint is not found)."""
    return ReferenceField(queryset=queryset, pk_field=StrictIntegerField(min_value=0, max_value=MAX_ID), **kwargs)


class ReferenceListField(serializers.ListField):
    """A list of at most ``max_length`` ids of objects that must all exist, looked up in one query.

    DRF's ``PrimaryKeyRelatedField(many=True)`` runs a query per item and takes any length:
    a sign-up with 100,000 ids held a pooled connection for as many queries.
    """

    def __init__(self, *, queryset: Any, max_length: int, **kwargs: Any) -> None:
        self.queryset = queryset
        super().__init__(child=StrictIntegerField(min_value=0, max_value=MAX_ID), max_length=max_length, **kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and len(data) > self.max_length:  # before any item is read
            self.fail("max_length", max_length=self.max_length)
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        found = {obj.pk: obj for obj in self.queryset.filter(pk__in=ids)}
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise NotFound(f"no such {self.queryset.model._meta.verbose_name}: {missing[0]}")
        return [found[pk] for pk in ids]


class StrictCharField(serializers.CharField):
    """Text sent as a JSON string: ``0`` is not ``"0"``; ``max_length`` limits what was sent, as the
    schema says, not what is left once surrounding whitespace is trimmed."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID sent as a string (``config.parsing.parse_uuid``): ``false`` (and any integer) is not ``UUID(int=0)``."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        try:
            return parse_uuid(data, field=self.field_name or "id")
        except ValidationError:
            self.fail("invalid", value=data)


class PasswordField(StrictCharField):
    """A new password, checked by Django's ``AUTH_PASSWORD_VALIDATORS`` (contract 10.1).

    Every door that sets a password uses it (both sign-ups, the password change; the admin's
    forms run the same validators), so none accepts one the others refuse. The similarity
    check compares with the account: the serializer's ``context["user"]`` (a password change),
    else one made up from the input's own ``username``, ``email`` and ``name`` (a sign-up).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 8)  # the schema's floor; the validators may ask more
        kwargs.setdefault("max_length", 128)
        kwargs.setdefault("write_only", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            password_validation.validate_password(value, user=self._account())
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value

    def _account(self) -> Any:
        user = self.context.get("user")
        if user is not None:
            return user
        data = getattr(self.parent, "initial_data", None)
        data = data if isinstance(data, dict) else {}
        text = {key: value for key, value in data.items() if isinstance(value, str)}
        return get_user_model()(
            username=text.get("username", ""), email=text.get("email", ""), first_name=text.get("name", "")
        )
