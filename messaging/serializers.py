"""Message and notification representations for REST (same fields as the events)."""

from rest_framework import serializers

from config.fields import StrictUUIDField
from config.parsing import parse_user_id


class MessageSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    senderId = serializers.CharField(source="sender_id")
    recipientId = serializers.CharField(source="recipient_id")
    bookingId = serializers.CharField(source="booking_id", allow_null=True)
    message = serializers.CharField(source="body")
    clientMessageId = serializers.CharField(source="client_message_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    readAt = serializers.DateTimeField(source="read_at", allow_null=True)


class NotificationSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    type = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    data = serializers.JSONField()
    createdAt = serializers.DateTimeField(source="created_at")
    readAt = serializers.DateTimeField(source="read_at", allow_null=True)


class ConversationReadInput(serializers.Serializer):
    # "with" is a Python keyword; the field is renamed in to_internal_value.
    bookingId = StrictUUIDField(required=False, allow_null=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        value["with"] = parse_user_id(data.get("with"), field="with")
        return value


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many were marked read")
