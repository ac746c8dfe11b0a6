from django.urls import path

from partners import apis

urlpatterns = [
    path("auth/register/", apis.SignUpApi.as_view(role="customer"), name="register"),
    path("partners/register/", apis.SignUpApi.as_view(role="partner"), name="partner-register"),
    path("partners/me/kyc/", apis.KycApi.as_view(), name="partner-kyc"),
    path("partners/me/earnings/", apis.EarningsApi.as_view(), name="partner-earnings"),
    path("partners/<int:user_id>/suspend/", apis.PartnerSuspendApi.as_view(), name="partner-suspend"),
]
