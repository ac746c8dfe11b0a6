"""REST: the dashboard figures for staff (the same object as ``dashboard:stats_update``)."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IsStaff
from dashboard.selectors import current_stats


class StatsApi(APIView):
    permission_classes = [IsStaff]

    def get(self, request: Request) -> Response:
        return Response(current_stats())
