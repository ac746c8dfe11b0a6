"""The booking (contract 5.4), services and booking inputs.

``BookingSerializer`` is the one representation of a booking: REST responses,
``booking:created`` / ``booking:updated`` and acks all use it.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, DispatchState, Service
from config.fields import StrictCharField, StrictFloatField, StrictIntegerField, StrictUUIDField, id_field
from config.formats import iso
from config.parsing import MAX_ID
from partners.serializers import PartnerSummarySerializer, display_name, partner_summary


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


class PersonSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    name = serializers.SerializerMethodField()

    def get_name(self, user: Any) -> str:
        return display_name(user)


class DispatchSerializer(serializers.Serializer):
    attempts = serializers.IntegerField(source="dispatch_attempts")
    state = serializers.ChoiceField(source="dispatch_state", choices=DispatchState.choices)


class BookingSerializer(serializers.Serializer):
    """The booking's schema for OpenAPI; its representation is ``booking_data``.

    DRF deep-copies every declared field per serializer instance (about 2.5 ms
    per booking on our machines); the events path serialises a booking several
    times per transition, so both doors share one plain function instead.
    """

    id = serializers.CharField()
    bookingNumber = serializers.CharField(source="number")
    status = serializers.CharField()
    service = ServiceRefSerializer()
    scheduledAt = serializers.DateTimeField(source="scheduled_at")
    address = serializers.CharField()
    location = serializers.SerializerMethodField()
    amount = serializers.FloatField()
    currency = serializers.CharField()
    notes = serializers.CharField()
    customer = PersonSerializer()
    partner = PartnerSummarySerializer(allow_null=True)
    cancelReason = serializers.CharField(source="cancel_reason")
    cancelledBy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    dispatch = DispatchSerializer(source="*")
    attention = serializers.ChoiceField(
        choices=["unassigned", "partner_suspended", "stale"],
        allow_null=True,
        help_text="what the booking needs from staff",
    )

    def get_location(self, booking: Booking) -> dict[str, float]:
        return {"latitude": booking.latitude, "longitude": booking.longitude}

    def get_cancelledBy(self, booking: Booking) -> str | None:  # noqa: N802 - contract field name
        return cancelled_by_role(booking)

    def to_representation(self, instance: Booking) -> dict[str, Any]:
        return booking_data(instance)


# The reason dispatch records when it gives up on a booking (contract 9.3).
NO_PARTNER = "no_partner"


def cancelled_by_role(booking: Booking) -> str | None:
    """``customer``, ``staff`` or ``dispatch`` (or ``None`` while not cancelled)."""
    if booking.status != BookingStatus.CANCELLED:
        return None
    if booking.cancelled_by_id is not None and booking.cancelled_by_id == booking.customer_id:
        return "customer"
    if booking.cancelled_by_id is None and booking.cancel_reason == NO_PARTNER:
        return "dispatch"
    return "staff"


def attention(booking: Booking) -> str | None:
    """What a booking needs from staff (contract 9.3): ``unassigned``, ``partner_suspended``, ``stale`` or ``None``.

    Read from what the booking carries (its partner is loaded with it), not kept up to date by
    a sweep: a stale job is one whose last sign of life (the booking's last change, the
    partner's last location) is older than ``JOB_STALE_MINUTES``, which no write announces.
    """
    if booking.status == BookingStatus.PENDING and booking.dispatch_state == DispatchState.UNASSIGNED:
        return "unassigned"
    partner = booking.partner
    if booking.status not in ACTIVE_STATUSES or partner is None:
        return None
    if partner.is_suspended:
        return "partner_suspended"
    last_seen = max(booking.updated_at, partner.last_location_at or booking.updated_at)
    if timezone.now() - last_seen > timedelta(minutes=settings.JOB_STALE_MINUTES):
        return "stale"
    return None


def booking_data(booking: Booking) -> dict[str, Any]:
    """The booking of contract 5.4: REST responses, ``booking:created``/``updated`` and acks."""
    partner = booking.partner
    return {
        "id": str(booking.pk),
        "bookingNumber": booking.number,
        "status": booking.status,
        "service": {"id": str(booking.service_id), "name": booking.service.name},
        "scheduledAt": iso(booking.scheduled_at),
        "address": booking.address,
        "location": {"latitude": booking.latitude, "longitude": booking.longitude},
        "amount": float(booking.amount),
        "currency": booking.currency,
        "notes": booking.notes,
        "customer": {"id": str(booking.customer_id), "name": display_name(booking.customer)},
        "partner": partner_summary(partner) if partner is not None else None,
        "cancelReason": booking.cancel_reason,
        "cancelledBy": cancelled_by_role(booking),
        "createdAt": iso(booking.created_at),
        "updatedAt": iso(booking.updated_at),
        "dispatch": {"attempts": booking.dispatch_attempts, "state": booking.dispatch_state},
        "attention": attention(booking),
    }


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
    status = serializers.ChoiceField(choices=BookingStatus.choices)


class BookingAssignInput(serializers.Serializer):
    partnerId = StrictIntegerField(min_value=0, max_value=MAX_ID)
