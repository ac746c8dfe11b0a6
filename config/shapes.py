"""One declaration per wire shape: its JSON Schema beside the one function that builds it; and
an input's JSON Schema read from its one declaration, the DRF serializer (``input_schema``).

A shape serves every door. Socket events put ``shape.schema`` in the event catalogue
(and so in the AsyncAPI document, and under ``EMIT_VALIDATION``); REST views take
``shape.serializer``, a read-only DRF serializer whose representation is the builder and
whose OpenAPI schema is the same JSON Schema (``ShapeSchema``). Adding a field is one edit
to the builder and one to the schema beside it; a test validates what the builder makes
against the schema.

Why not DRF fields: a declared serializer deep-copies its fields per instance (about
2.5 ms a booking on these machines), and the events path builds a booking several times
per transition; the plain builder takes microseconds.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ComponentRegistry
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from config.realtime.catalogue import Schema


@dataclass(frozen=True)
class Shape:
    name: str
    schema: Schema
    build: Callable[..., dict[str, Any]]

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.build(*args, **kwargs)

    @functools.cached_property
    def serializer(self) -> type[serializers.Serializer]:
        return type(f"{self.name}Serializer", (ShapedSerializer,), {"shape": self})


_shapes: dict[str, Shape] = {}


def shape(name: str, schema: Schema) -> Callable[[Callable[..., dict[str, Any]]], Shape]:
    """Declare the builder below as the shape ``name`` (the OpenAPI component's name) with ``schema``."""

    def declare(build: Callable[..., dict[str, Any]]) -> Shape:
        _shapes[name] = Shape(name, schema, build)
        return _shapes[name]

    return declare


def shapes() -> list[Shape]:
    """Every shape declared so far (the TypeScript package names a type after each)."""
    return list(_shapes.values())


class ShapedSerializer(serializers.Serializer):
    """Read-only: what the shape's builder makes of the instance."""

    shape: Shape

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.shape.build(instance)


class ShapeSchema(OpenApiSerializerExtension):
    """drf-spectacular reads a shaped serializer's schema from its shape."""

    target_class = "config.shapes.ShapedSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> Schema:
        return openapi_dialect(self.target.shape.schema)


def openapi_dialect(schema: Any) -> Any:
    """The JSON Schema in OpenAPI 3.0's words: ``oneOf: [X, {type: null}]`` becomes ``X`` with
    ``nullable: true`` (and ``null`` among an enum's values, which 3.0 asks for)."""
    if isinstance(schema, list):
        return [openapi_dialect(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    options = schema.get("oneOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        (inner,) = [option for option in options if option != {"type": "null"}]
        converted = {**openapi_dialect(inner), "nullable": True}
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        return converted
    return {key: openapi_dialect(value) for key, value in schema.items()}


def input_schema(serializer_class: type[serializers.Serializer]) -> Schema:
    """The JSON Schema of an input serializer, as drf-spectacular writes it for OpenAPI.

    A body that a REST view and a socket handler both take (a cancellation's reason) is
    declared once, as the serializer both validate with; the event catalogue (and so the
    AsyncAPI document, and the check every socket payload gets) takes this.
    """
    inspector = AutoSchema()
    inspector.registry, inspector.method, inspector.path = ComponentRegistry(), "POST", "/"
    view = GenericAPIView()
    view.request = view.format_kwarg = None
    inspector.view = view
    return json_schema_dialect(inspector._map_serializer(serializer_class(), "request"))


def json_schema_dialect(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` in JSON Schema's words (``oneOf`` with ``null``)."""
    if isinstance(schema, list):
        return [json_schema_dialect(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema_dialect(value) for key, value in schema.items() if key != "nullable"}
    return {"oneOf": [converted, {"type": "null"}]} if schema.get("nullable") else converted
