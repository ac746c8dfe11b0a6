"""Accounts' and partners' inputs, and the representations only REST sends (shapes that events
send too are in ``partners.shapes``)."""

from typing import Any

from rest_framework import serializers

from config.fields import PasswordField, ReferenceListField, StrictBooleanField, StrictCharField
from partners.models import DocumentType, Partner
from partners.shapes import display_name

# The service catalogue belongs to bookings, above this app: reached through the relation.
Service = Partner._meta.get_field("services").related_model


# The most services one partner offers at sign-up (a catalogue has a few dozen at most).
MAX_SERVICES = 50


class PartnerRegisterInput(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = PasswordField()
    name = StrictCharField(max_length=120)
    phone = StrictCharField(max_length=32)
    services = ReferenceListField(queryset=Service.objects.filter(is_active=True), max_length=MAX_SERVICES)


class PartnerSuspendInput(serializers.Serializer):
    suspended = StrictBooleanField()
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class KycInput(serializers.Serializer):
    documentType = serializers.ChoiceField(choices=DocumentType.choices)
    documentNumber = StrictCharField(max_length=64)


class KycSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    documentType = serializers.CharField(source="document_type")
    documentNumber = serializers.CharField(source="document_number")
    status = serializers.CharField()
    submittedAt = serializers.DateTimeField(source="submitted_at")
    reviewedAt = serializers.DateTimeField(source="reviewed_at", allow_null=True)
    reviewNote = serializers.CharField(source="review_note")


class EarningSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    bookingId = serializers.CharField(source="booking_id")
    amount = serializers.FloatField()
    currency = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class AvailabilityInput(serializers.Serializer):
    available = StrictBooleanField()


class CustomerRegisterInput(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = PasswordField()
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    name = StrictCharField(max_length=120)
    phone = StrictCharField(max_length=32, required=False, allow_blank=True, default="")


class UserSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    username = serializers.CharField()
    name = serializers.SerializerMethodField()
    email = serializers.CharField()
    phone = serializers.SerializerMethodField()

    def get_name(self, user: Any) -> str:
        return display_name(user)

    def get_phone(self, user: Any) -> str:
        profile = getattr(user, "customer_profile", None)
        return profile.phone if profile else ""
