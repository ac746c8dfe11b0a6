"""REST: services and bookings (contract 6). Thin: validate, call the service, answer."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bookings import selectors, services
from bookings.models import BookingStatus, Service
from bookings.serializers import (
    BookingAssignInput,
    BookingCancelInput,
    BookingCompleteInput,
    BookingCreateInput,
    ServiceSerializer,
)
from bookings.shapes import booking_data
from config.api import IsStaff, ViewerPagination, validated
from config.errors import ValidationError
from config.fields import StrictCharField


class ServiceListApi(generics.ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = ServiceSerializer
    queryset = Service.objects.filter(is_active=True)


class BookingListCreateApi(generics.ListAPIView):
    """Own bookings in numbered pages; staff page through every booking by cursor (``ViewerPagination``)."""

    serializer_class = booking_data.serializer
    pagination_class = ViewerPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=BookingStatus.values, description="Only bookings in this status."),
            OpenApiParameter(
                "search", str, description="A booking number, or the username of its customer or partner (exact)."
            ),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = selectors.bookings_for(self.request.user)
        status_filter = self.request.query_params.get("status")
        if status_filter is not None:
            if status_filter not in BookingStatus.values:
                raise ValidationError("status is not a booking status", details={"status": ["invalid"]})
            qs = qs.filter(status=status_filter)
        return selectors.bookings_matching(qs, self.request.query_params.get("search", ""))

    @extend_schema(request=BookingCreateInput, responses={201: booking_data.serializer})
    def post(self, request: Request) -> Response:
        data = validated(BookingCreateInput, request.data)
        booking = services.booking_create(
            customer=request.user,
            service=data["serviceId"],
            scheduled_at=data["scheduledAt"],
            address=data["address"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            notes=data["notes"],
        )
        return Response(booking_data(booking), status=status.HTTP_201_CREATED)


def optional_body(request: Request, serializer_class: type, **path: Any) -> dict[str, Any]:
    """A body that may be empty or an object, validated together with the values the path gives."""
    if not isinstance(request.data, dict):
        raise ValidationError("the body must be an object (or empty)")
    return validated(serializer_class, {**request.data, **path})


class BookingDetailApi(APIView):
    @extend_schema(responses=booking_data.serializer)
    def get(self, request: Request, booking_id: str) -> Response:
        return Response(booking_data(selectors.booking_for_viewer(booking_id=booking_id, user=request.user)))


class BookingCancelApi(APIView):
    @extend_schema(
        # The booking is the one in the path; the body only says why.
        request=inline_serializer(
            "BookingCancelRequest",
            fields={"reason": StrictCharField(max_length=500, required=False, allow_blank=True)},
        ),
        responses=booking_data.serializer,
    )
    def post(self, request: Request, booking_id: str) -> Response:
        data = optional_body(request, BookingCancelInput, bookingId=booking_id)
        booking = services.booking_cancel(booking_id=data["bookingId"], actor=request.user, reason=data["reason"])
        return Response(booking_data(booking))


class BookingAssignApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=BookingAssignInput, responses=booking_data.serializer)
    def post(self, request: Request, booking_id: str) -> Response:
        data = validated(BookingAssignInput, request.data)
        booking = services.booking_assign(booking_id=booking_id, partner_id=data["partnerId"], actor=request.user)
        return Response(booking_data(booking))


class BookingCompleteApi(APIView):
    """Staff complete a job on the partner's behalf (PARTNER_ARRIVED or IN_PROGRESS); the partner earns as usual."""

    permission_classes = [IsStaff]

    @extend_schema(request=BookingCompleteInput, responses=booking_data.serializer)
    def post(self, request: Request, booking_id: str) -> Response:
        note = optional_body(request, BookingCompleteInput)["note"]
        booking = services.booking_complete(booking_id=booking_id, actor=request.user, note=note)
        return Response(booking_data(booking))
