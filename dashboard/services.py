"""Ops interventions that belong to no single app."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from bookings.services import partner_jobs_release
from config.errors import Forbidden, NotFound
from partners.models import Partner


def user_deactivate(*, user_id: int, actor: AbstractBaseUser) -> None:
    """Deactivate an account; its sockets are disconnected on every process (``partners.access``), and a
    partner's jobs not started yet go back to dispatch (``partner_jobs_release``)."""
    if not actor.is_staff:
        raise Forbidden("only staff can deactivate users")
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound("no such user")
        user.is_active = False
        user.save(update_fields=["is_active"])
        if Partner.objects.select_for_update().filter(pk=user_id).exists():  # a partner's jobs go with them
            # Contract 9.3 gives suspension and deactivation one reason: partner_suspended.
            partner_jobs_release(partner_id=user_id, actor=actor)
