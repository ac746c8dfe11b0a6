"""REST: both sign-ups, KYC, earnings and suspension (contract 6)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import IsStaff, validated
from config.errors import Forbidden
from config.throttling import AuthRateThrottle, WriteRateThrottle
from partners import accounts, services
from partners.models import Partner
from partners.serializers import (
    CustomerRegisterInput,
    EarningSerializer,
    KycInput,
    KycSerializer,
    PartnerRegisterInput,
    PartnerSuspendInput,
    UserSerializer,
)
from partners.shapes import partner_profile


def partner_of(request: Request) -> Partner:
    partner = Partner.objects.filter(pk=request.user.pk).first()
    if partner is None:
        raise Forbidden("This account is not a partner")
    return partner


@dataclass(frozen=True)
class SignUp:
    form: type[serializers.Serializer]
    create: Callable[..., Any]
    answer: type[serializers.Serializer]


SIGN_UPS = {
    "customer": SignUp(CustomerRegisterInput, accounts.customer_register, UserSerializer),
    "partner": SignUp(PartnerRegisterInput, accounts.partner_register, partner_profile.serializer),
}


class SignUpSchema(AutoSchema):
    """The OpenAPI operation of the sign-up its URL names (``SignUpApi.as_view(role=...)``)."""

    def get_request_serializer(self) -> type[serializers.Serializer]:
        return SIGN_UPS[self.view.role].form

    def get_response_serializers(self) -> dict[int, type[serializers.Serializer]]:
        return {201: SIGN_UPS[self.view.role].answer}

    def get_auth(self) -> list:
        return []


class SignUpApi(APIView):
    """Sign up: a customer at ``auth/register/``, a partner at ``partners/register/`` (the URL gives ``role``)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthRateThrottle, WriteRateThrottle]
    schema = SignUpSchema()
    role = "customer"

    def post(self, request: Request) -> Response:
        sign_up = SIGN_UPS[self.role]
        account = sign_up.create(**validated(sign_up.form, request.data))
        return Response(sign_up.answer(account).data, status=status.HTTP_201_CREATED)


class KycApi(generics.ListAPIView):
    serializer_class = KycSerializer

    def get_queryset(self):
        return partner_of(self.request).kyc_submissions.all()

    @extend_schema(request=KycInput, responses={201: KycSerializer})
    def post(self, request: Request) -> Response:
        data = validated(KycInput, request.data)
        submission = services.kyc_submit(
            partner=partner_of(request), document_type=data["documentType"], document_number=data["documentNumber"]
        )
        return Response(KycSerializer(submission).data, status=status.HTTP_201_CREATED)


class EarningsApi(generics.ListAPIView):
    serializer_class = EarningSerializer

    def get_queryset(self):
        return partner_of(self.request).earnings.all()

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        response = super().list(request, *args, **kwargs)
        totals = services.earnings_totals(partner_id=request.user.pk)
        response.data["todayEarnings"] = float(totals["today"])
        response.data["totalEarnings"] = float(totals["total"])
        return response


class PartnerSuspendApi(APIView):
    """Staff suspend or reinstate a partner (contract 9.3): jobs not started go back to dispatch."""

    permission_classes = [IsStaff]

    @extend_schema(request=PartnerSuspendInput, responses=partner_profile.serializer)
    def post(self, request: Request, user_id: int) -> Response:
        data = validated(PartnerSuspendInput, request.data)
        partner = services.partner_suspend(partner_id=user_id, actor=request.user, suspended=data["suspended"])
        verb = "Suspended" if data["suspended"] else "Reinstated"
        LogEntry.objects.log_actions(  # in the partner's admin history, like the admin's own actions
            user_id=request.user.pk,
            queryset=[partner],
            action_flag=CHANGE,
            change_message=f"{verb} (REST){': ' + data['reason'] if data['reason'] else ''}",
            single_object=True,
        )
        return Response(partner_profile(partner))
