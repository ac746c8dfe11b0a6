"""REST: message history, read receipts and notifications (contract 6)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IsStaff, validated
from config.fields import StrictUUIDField
from config.parsing import MAX_ID
from messaging import safety, selectors, services, shapes
from messaging.serializers import ConversationReadInput, MarkedSerializer

ID_PARAMETER = {"type": "integer", "minimum": 0, "maximum": MAX_ID}


@extend_schema(
    parameters=[
        OpenApiParameter("with", ID_PARAMETER, description="the other person's user id"),
        OpenApiParameter("booking", OpenApiTypes.UUID, description="booking id"),
        OpenApiParameter(
            "after", ID_PARAMETER, description="only messages after this id, oldest first (catch-up cursor)"
        ),
    ]
)
class MessageListApi(generics.ListAPIView):
    serializer_class = shapes.message_data.serializer

    def get_queryset(self):
        params = self.request.query_params
        return selectors.conversation(
            user=self.request.user,
            other_id=params.get("with"),
            booking_id=params.get("booking"),
            after=params.get("after"),
        )


class ConversationReadApi(APIView):
    @extend_schema(
        # "with" is a Python keyword: the input serializer adds it by hand, so its schema is spelled here.
        request=inline_serializer(
            "ConversationReadRequest",
            fields={
                "with": serializers.IntegerField(min_value=0, max_value=MAX_ID, help_text="the other person's user id"),
                "bookingId": StrictUUIDField(required=False, allow_null=True),
            },
        ),
        responses={200: MarkedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(ConversationReadInput, request.data)
        count = services.conversation_mark_read(
            reader=request.user, other_id=data["with"], booking_id=data.get("bookingId")
        )
        return Response({"marked": count})


class NotificationListApi(generics.ListAPIView):
    serializer_class = shapes.notification.serializer

    def get_queryset(self):
        unread = self.request.query_params.get("unread") in ("1", "true")
        return selectors.notifications_for(self.request.user, unread=unread)

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        response = super().list(request, *args, **kwargs)
        response.data["unreadCount"] = selectors.notifications_for(request.user, unread=True).count()
        return response


class NotificationReadApi(APIView):
    @extend_schema(
        request=None,
        responses=shapes.notification.serializer,
        parameters=[OpenApiParameter("notification_id", ID_PARAMETER, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, notification_id: int) -> Response:
        notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(shapes.notification(notification))


class NotificationReadAllApi(APIView):
    @extend_schema(request=None, responses={200: MarkedSerializer})
    def post(self, request: Request) -> Response:
        count = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": count})


class SafetyAlertListApi(generics.ListAPIView):
    """Open safety alerts (staff), oldest first: what the live dashboard shows on top."""

    permission_classes = [IsStaff]
    serializer_class = shapes.safety_alert.serializer
    pagination_class = None  # the newest OPEN_ALERTS_MAX (``selectors.open_safety_alerts``): one page

    def get_queryset(self):
        return selectors.open_safety_alerts()


class SafetyAlertAcknowledgeApi(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        request=None,
        responses=shapes.safety_acknowledged.serializer,
        parameters=[OpenApiParameter("alert_id", ID_PARAMETER, OpenApiParameter.PATH)],
        description="Acknowledge a safety alert (staff): escalation stops; 409 CONFLICT if it was acknowledged already",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        alert = safety.safety_alert_acknowledge(staff=request.user, alert_id=alert_id)
        return Response(shapes.safety_acknowledged(alert))
