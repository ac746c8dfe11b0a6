"""Booking and service inputs, and the service list (REST only). The booking itself, which
REST and events both send, is ``bookings.shapes``."""

from rest_framework import serializers

from bookings.models import PARTNER_PROGRESS, Service
from config.fields import StrictCharField, StrictFloatField, StrictIntegerField, StrictUUIDField, id_field
from config.parsing import MAX_ID


class ServiceSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.FloatField()
    currency = serializers.CharField()
    durationMinutes = serializers.IntegerField(source="duration_minutes")


class ServiceRefSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    name = serializers.CharField()


class BookingCreateInput(serializers.Serializer):
    serviceId = id_field(Service.objects.filter(is_active=True))
    scheduledAt = serializers.DateTimeField()
    address = StrictCharField(max_length=300)
    latitude = StrictFloatField(min_value=-90, max_value=90)
    longitude = StrictFloatField(min_value=-180, max_value=180)
    notes = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")


class BookingIdInput(serializers.Serializer):
    bookingId = StrictUUIDField()


class BookingCancelInput(BookingIdInput):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class BookingCompleteInput(serializers.Serializer):
    note = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class BookingStatusInput(BookingIdInput):
    status = serializers.ChoiceField(choices=[(status.value, status.label) for status in PARTNER_PROGRESS])


class BookingAssignInput(serializers.Serializer):
    partnerId = StrictIntegerField(min_value=0, max_value=MAX_ID)
