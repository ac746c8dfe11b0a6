"""Ops interventions that belong to no single app."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from config.errors import Forbidden, NotFound
from config.realtime import rooms
from config.realtime.emit import control


def user_deactivate(*, user_id: int, actor: AbstractBaseUser) -> None:
    """Deactivate an account; its sockets are disconnected on every process."""
    if not actor.is_staff:
        raise Forbidden("only staff can deactivate users")
    with transaction.atomic():
        updated = get_user_model().objects.filter(pk=user_id).update(is_active=False)
        if not updated:
            raise NotFound("no such user")
        user_sockets_disconnect(user_id=user_id, reason="account deactivated")


def user_sockets_disconnect(*, user_id: int, reason: str) -> None:
    control("disconnect_user", user_id=str(user_id), namespaces=list(rooms.NAMESPACES), reason=reason)
