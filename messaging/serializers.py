"""Messaging inputs for REST, and the mark-read count (a message and a notification are
``messaging.shapes``)."""

from rest_framework import serializers

from config.fields import StrictUUIDField
from config.parsing import parse_user_id


class ConversationReadInput(serializers.Serializer):
    # "with" is a Python keyword; the field is renamed in to_internal_value.
    bookingId = StrictUUIDField(required=False, allow_null=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        value["with"] = parse_user_id(data.get("with"), field="with")
        return value


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many were marked read")
