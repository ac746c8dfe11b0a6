"""Accounts: users, the two sign-ups, deactivation.

Their home is the lowest app, so every app above may create or read an account and
none is needed below it. Who a socket belongs to and what ends a session are beside
this, in ``partners.access``.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from config import rooms
from config.errors import Conflict, Forbidden, NotFound
from config.realtime.emit import emit
from partners import events
from partners.models import CustomerProfile, Partner
from partners.signals import partner_withdrawn


def user_create(*, username: str, password_hash: str, **fields: Any) -> AbstractBaseUser:
    """A new account with a password hashed already (``make_password``, before the transaction:
    a hash waits for the hashing pool and costs a large part of a CPU-second, and no pooled
    database connection may be held meanwhile). A taken username (whatever its case) is
    ``CONFLICT``. Caller holds a transaction."""
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        raise Conflict("this username is taken", details={"username": ["taken"]})
    if "email" in fields:
        fields["email"] = users.normalize_email(fields["email"])
    try:
        with transaction.atomic():
            return users.create(username=users.model.normalize_username(username), password=password_hash, **fields)
    except IntegrityError as exc:  # two sign-ups racing for one name
        raise Conflict("this username is taken", details={"username": ["taken"]}) from exc


def customer_register(*, username: str, password: str, email: str, name: str, phone: str) -> AbstractBaseUser:
    """A customer's account: the user (name on it) and the profile with the phone."""
    password_hash = make_password(password)
    with transaction.atomic():
        user = user_create(username=username, password_hash=password_hash, email=email, first_name=name[:150])
        CustomerProfile.objects.create(user=user, phone=phone)
    return user


def partner_register(*, username: str, password: str, name: str, phone: str, services: list[Any]) -> Partner:
    """A partner's account: the user and the profile with the services offered; staff hear ``partner:registered``."""
    password_hash = make_password(password)
    with transaction.atomic():
        user = user_create(username=username, password_hash=password_hash, first_name=name[:150])
        partner = Partner.objects.create(user=user, name=name, phone=phone)
        partner.services.set(services)
        emit("partner:registered", events.partner_registered(partner), namespace=rooms.ADMIN, room=rooms.ADMINS)
    return partner


def user_deactivate(*, user_id: int, actor: AbstractBaseUser) -> None:
    """Deactivate an account; its sockets are disconnected on every process (``partners.access``), and a
    partner's jobs not started yet go back to dispatch (``partner_withdrawn``).

    Staff only (the admin action also needs ``change_user``); only a superuser deactivates a
    superuser, and nobody deactivates themselves (contract 10.2)."""
    if not actor.is_staff:
        raise Forbidden("only staff can deactivate users")
    if str(user_id) == str(actor.pk):
        raise Forbidden("nobody deactivates themselves: ask another staff member")
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound("no such user")
        if user.is_superuser and not actor.is_superuser:
            raise Forbidden("only a superuser deactivates a superuser")
        user.is_active = False
        user.save(update_fields=["is_active"])
        if Partner.objects.select_for_update().filter(pk=user_id).exists():  # a partner's jobs go with them
            partner_withdrawn.send(sender=Partner, partner_id=user_id, actor=actor)
