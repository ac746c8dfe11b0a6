"""Each wire shape is declared once (``config.shapes``): what its builder makes validates against
its schema, and the OpenAPI document and the event catalogue carry that same schema."""

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from bookings.models import BookingStatus as S
from bookings.shapes import booking_data
from config.realtime import catalogue
from config.shapes import input_schema, openapi_dialect
from messaging import shapes as messaging_shapes
from messaging.models import Message, Notification
from partners.shapes import partner_profile, partner_summary
from tests.factories import BookingFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def valid(shape, instance) -> dict:
    data = shape(instance)
    jsonschema.Draft7Validator(shape.schema).validate(data)
    return data


def test_a_booking_in_every_state_fits_its_schema(customer, partner, service):
    bookings = [
        BookingFactory(customer=customer, service=service),
        BookingFactory(customer=customer, service=service, partner=partner, status=S.IN_PROGRESS),
        BookingFactory(customer=customer, service=service, status=S.CANCELLED, cancelled_by=customer),
    ]
    seen = [valid(booking_data, booking) for booking in bookings]
    assert [data["partner"] is None for data in seen] == [True, False, True]
    assert seen[2]["cancelledBy"] == "customer"


def test_partners_fit_their_schemas(partner):
    assert valid(partner_summary, partner)["id"] == str(partner.pk)
    assert valid(partner_profile, PartnerFactory(last_latitude=None, last_longitude=None))["services"] == []


def test_messages_and_notifications_fit_their_schemas(customer, partner):
    message = Message.objects.create(sender=customer, recipient=partner.user, body="hi")
    assert valid(messaging_shapes.message_data, message)["bookingId"] is None
    note = Notification.objects.create(user=customer, type="t", title="T", data={"a": 1})
    assert valid(messaging_shapes.notification, note)["readAt"] is None


def test_a_schema_that_misses_a_field_fails():
    """The check above can fail: a builder's extra field is refused by the schema."""
    schema = {**booking_data.schema, "properties": dict(booking_data.schema["properties"])}
    del schema["properties"]["notes"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate({**{k: None for k in schema["required"]}, "notes": ""})


def skeleton(schema: dict, components: dict) -> object:
    """Fields, required fields, nullability and enum values, with ``$ref`` followed (the OpenAPI
    document moves enums into components of their own)."""
    if "$ref" in schema:
        return skeleton(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "oneOf" in schema:  # a nullable enum: [its component, NullEnum]
        resolved = [components[o["$ref"].rsplit("/", 1)[1]] if "$ref" in o else o for o in schema["oneOf"]]
        (kept,) = [option for option in resolved if option.get("enum") != [None]]
        return {**skeleton(kept, components), "nullable": True}
    return {
        "nullable": schema.get("nullable", False),
        "enum": sorted(str(value) for value in schema.get("enum", []) if value is not None),
        "required": sorted(schema.get("required", [])),
        "properties": {name: skeleton(sub, components) for name, sub in schema.get("properties", {}).items()},
    }


def test_openapi_and_the_catalogue_carry_the_one_schema():
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    shapes = [booking_data, partner_profile, messaging_shapes.message_data, messaging_shapes.notification]
    for name, declared in ((shape.name, shape) for shape in shapes):
        assert skeleton(components[name], components) == skeleton(openapi_dialect(declared.schema), {})
    created = catalogue.spec("server", "/admin", "booking:created")
    assert created.payload is booking_data.schema


def test_an_input_is_declared_once_for_rest_and_sockets():
    """The cancellation body is the serializer REST validates with; the socket event's schema
    (AsyncAPI, and the check every payload gets) is read from it."""
    import config.asgi  # noqa: F401 - registers the namespaces, and so the customer's events
    from bookings.serializers import BookingCancelInput

    schema = input_schema(BookingCancelInput)
    assert schema["required"] == ["bookingId"]
    assert schema["properties"]["reason"]["maxLength"] == 500
    assert catalogue.spec("client", "/customer", "booking:cancel").payload == schema
    assert catalogue.payload_problem("/customer", "booking:cancel", {"bookingId": "x", "reason": "r" * 501}) == (
        "reason",
        "maxLength",
    )


def test_the_openapi_dialect_spells_null_the_3_0_way():
    schema = {"oneOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}
    assert openapi_dialect({"properties": {"x": schema}}) == {
        "properties": {"x": {"type": "string", "enum": ["a", None], "nullable": True}}
    }
