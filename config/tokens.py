"""Ending sessions over REST: logout (one refresh token) and a password change (all of them).

Revocation itself is simplejwt's blacklist app: a refresh token is recorded when issued,
and a revoked one is refused at refresh with 401 ``TOKEN_INVALID``. A password change
revokes every refresh token of the user (the receiver in ``partners.access`` sees the new
password, whichever door set it) and hands back a fresh pair for this device.
"""

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from config.api import validated
from config.errors import TokenInvalid, ValidationError
from config.fields import PasswordField, StrictCharField
from config.throttling import AuthRateThrottle, LoginRateThrottle, WriteRateThrottle


class LogoutInput(serializers.Serializer):
    refresh = StrictCharField(max_length=2048)


class PasswordChangeInput(serializers.Serializer):
    oldPassword = StrictCharField(max_length=128, write_only=True)  # noqa: N815 - the contract's name
    newPassword = PasswordField()  # noqa: N815


TokenPair = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})


class LogoutView(APIView):
    """Revoke one refresh token: the device signs out and its token can no longer be refreshed."""

    permission_classes = [AllowAny]  # the refresh token is the credential
    authentication_classes: list[Any] = []
    throttle_classes = [AuthRateThrottle, WriteRateThrottle]

    @extend_schema(request=LogoutInput, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        data = validated(LogoutInput, request.data)
        try:
            RefreshToken(data["refresh"]).blacklist()
        except TokenError as exc:
            raise TokenInvalid(str(exc.args[0])) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    """Change the password: every refresh token of the user is revoked; this device gets a new pair."""

    throttle_classes = [AuthRateThrottle, LoginRateThrottle, WriteRateThrottle]  # it checks the old password

    @extend_schema(request=PasswordChangeInput, responses={200: TokenPair})
    def post(self, request: Request) -> Response:
        data = validated(PasswordChangeInput, request.data, context={"user": request.user})
        refresh = password_change(user=request.user, old=data["oldPassword"], new=data["newPassword"])
        return Response({"access": str(refresh.access_token), "refresh": str(refresh)})


def password_change(*, user: Any, old: str, new: str) -> RefreshToken:
    """A new password for ``user``: every refresh token they hold is revoked (the save's receiver,
    ``partners.access``); the one returned is this device's new one."""
    if not user.check_password(old):
        raise ValidationError("oldPassword is not the current password", details={"oldPassword": ["wrong"]})
    user.set_password(new)  # hashed before the transaction: no pooled connection held meanwhile
    with transaction.atomic():
        user.save(update_fields=["password"])
        return RefreshToken.for_user(user)
