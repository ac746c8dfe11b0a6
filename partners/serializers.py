"""Accounts' and partners' representations (output) and inputs."""

from typing import Any

from rest_framework import serializers

from config.fields import ReferenceListField, StrictBooleanField, StrictCharField
from partners.models import DocumentType, Partner

# The service catalogue belongs to bookings, above this app: reached through the relation.
Service = Partner._meta.get_field("services").related_model


def display_name(user: Any) -> str:
    return user.get_full_name() or user.username


def partner_summary(partner: Partner) -> dict[str, Any]:
    """How a partner appears inside a booking and in ``partner:assigned``."""
    return {"id": str(partner.pk), "name": partner.name, "phone": partner.phone, "rating": float(partner.rating)}


class PartnerSummarySerializer(serializers.Serializer):
    """Schema of ``partner_summary`` (the representation itself is that function)."""

    id = serializers.CharField(source="pk")
    name = serializers.CharField()
    phone = serializers.CharField()
    rating = serializers.FloatField()

    def to_representation(self, instance: Partner) -> dict[str, Any]:
        return partner_summary(instance)


def partner_location(partner: Partner) -> dict[str, float] | None:
    if partner.last_latitude is None or partner.last_longitude is None:
        return None
    return {"latitude": partner.last_latitude, "longitude": partner.last_longitude}


class PartnerSerializer(PartnerSummarySerializer):
    services = serializers.SerializerMethodField()
    isAvailable = serializers.BooleanField(source="is_available")
    isSuspended = serializers.BooleanField(source="is_suspended")
    kycStatus = serializers.CharField(source="kyc_status")
    createdAt = serializers.DateTimeField(source="created_at")

    def get_services(self, partner: Partner) -> list[str]:
        return [str(pk) for pk in partner.services.values_list("pk", flat=True)]

    def to_representation(self, instance: Partner) -> dict[str, Any]:
        # All declared fields, not just the summary the parent class returns.
        return serializers.Serializer.to_representation(self, instance)


# The most services one partner offers at sign-up (a catalogue has a few dozen at most).
MAX_SERVICES = 50


class PartnerRegisterInput(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(min_length=8, max_length=128, write_only=True)
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
    password = StrictCharField(min_length=8, max_length=128, write_only=True)
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
