"""REST: the dashboard figures for staff (the same object as ``dashboard:stats_update``)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IsStaff
from dashboard.selectors import cockpit_map, cockpit_timeline, current_stats
from dashboard.traces import booking_trace, trace_data


class StatsApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(current_stats())


class CockpitMapApi(APIView):
    """The cockpit's map: partners' last positions and open bookings (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(cockpit_map())


class CockpitTimelineApi(APIView):
    """The cockpit's chart: bookings entering each status per 5 minutes, last hour (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(cockpit_timeline())


class BookingTraceApi(APIView):
    """A job's route and timeline (contract 10.3): staff always; the booking's customer and partner
    once it has ended (403 ``FORBIDDEN`` before)."""

    @extend_schema(responses={200: trace_data.serializer})
    def get(self, request: Request, booking_id: str) -> Response:
        return Response(trace_data(booking_trace(booking_id=booking_id, user=request.user)))
