"""The ops cockpit: a live page inside the Django admin (staff only), fed by the ``/admin`` namespace."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework_simplejwt.tokens import AccessToken


def _token(request: HttpRequest) -> str:
    """An access token for the signed-in staff member: the page connects to ``/admin`` with it."""
    return str(AccessToken.for_user(request.user))


@staff_member_required
def cockpit(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Live dashboard",
        "token": _token(request),
        "token_seconds": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }
    return render(request, "dashboard/cockpit.html", context)


@staff_member_required
def cockpit_token(request: HttpRequest) -> JsonResponse:
    """A fresh token before the page's expires (the page sends it as ``auth:refresh``)."""
    return JsonResponse({"token": _token(request)})
