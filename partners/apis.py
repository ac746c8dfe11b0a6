"""REST: partner sign-up, KYC and earnings (contract 6)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import validated
from config.errors import Forbidden
from config.throttling import AuthRateThrottle, WriteRateThrottle
from partners import services
from partners.models import Partner
from partners.serializers import EarningSerializer, KycInput, KycSerializer, PartnerRegisterInput, PartnerSerializer


def partner_of(request: Request) -> Partner:
    partner = Partner.objects.filter(pk=request.user.pk).first()
    if partner is None:
        raise Forbidden("This account is not a partner")
    return partner


class PartnerRegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthRateThrottle, WriteRateThrottle]

    @extend_schema(auth=[], request=PartnerRegisterInput, responses={201: PartnerSerializer})
    def post(self, request: Request) -> Response:
        data = validated(PartnerRegisterInput, request.data)
        partner = services.partner_register(**data)
        return Response(PartnerSerializer(partner).data, status=status.HTTP_201_CREATED)


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
