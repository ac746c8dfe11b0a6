"""Who a socket belongs to, and telling every process when that changes.

A change that ends a session's right to exist (a new password, deactivation, a suspension)
also revokes every refresh token of the user (``tokens_revoke_all``), whichever door it
came through.

``socket_identities`` is the identity loader the composition root gives
``config.realtime`` (the user and their partner profile in one raw query).
Every change that can take a right away (activity, staff status, a partner
profile saved or deleted) sends the ``access_changed`` control after commit; each
process then re-checks that user's local sockets and disconnects those that no
longer qualify. The receivers catch every door (services, the admin's forms, a
shell), which is why this is a signal and not a call in each service.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from config.realtime.emit import control
from partners.models import Partner

# Saves that touch only these fields change nobody's rights.
_HARMLESS_FIELDS = frozenset({"last_login", "password", "online_until", "is_available", "kyc_status"})
_HARMLESS_FIELDS |= {"last_latitude", "last_longitude", "last_location_at", "rating", "name", "phone"}


def socket_identities(user_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The users and their partner profiles in one query: ``{user_id: identity}``.

    Every connect (and every reconnect storm after a deploy) runs this for one user, and
    the periodic recheck for hundreds, so it skips the ORM's SQL compilation, which costs
    about 3 ms of CPU per query on the 2-core machines we run on (bench: 2,000 sockets
    connected in 15-18 s with the ORM). The columns read are few and stable.
    """
    if not user_ids:
        return {}
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    partners = connection.ops.quote_name(Partner._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT u.id, u.username, u.first_name, u.last_name, u.is_active, u.is_staff, "
            f"p.user_id, p.is_suspended FROM {users} u LEFT JOIN {partners} p ON p.user_id = u.id "
            f"WHERE u.id IN ({', '.join(['%s'] * len(user_ids))})",
            list(user_ids),
        )
        rows = cursor.fetchall()
    return {
        pk: {
            "uid": pk,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "is_active": bool(is_active),
            "is_staff": bool(is_staff),
            "is_partner": partner_id is not None,
            "is_suspended": bool(suspended),
        }
        for pk, username, first_name, last_name, is_active, is_staff, partner_id, suspended in rows
    }


def access_changed(*, user_id: Any) -> None:
    """Recheck the user's sockets on every process once the current transaction commits."""
    control("access_changed", user_id=str(user_id))


def tokens_revoke_all(*, user_id: Any) -> int:
    """Revoke every unexpired refresh token of the user (one query to read, one to write)."""
    live = OutstandingToken.objects.filter(user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken=None)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in live.values_list("pk", flat=True)], ignore_conflicts=True
    )
    return len(revoked)


# Saves after which the user must sign in again: a field's old value -> whether its new one ends
# the user's sessions.
_SESSION_ENDING = {
    "user": {"is_active": lambda old, new: old and not new},
    "partner": {"is_suspended": lambda old, new: new and not old},
}


def _ends_sessions(kind: str, instance: Any, update_fields: Any) -> bool:
    fields = _SESSION_ENDING[kind]
    watched = [name for name in fields if update_fields is None or name in update_fields]
    if instance.pk is None or not watched:
        return False
    old = type(instance)._base_manager.filter(pk=instance.pk).values(*watched).first()
    return old is not None and any(fields[name](old[name], getattr(instance, name)) for name in watched)


def _password_set(instance: Any, update_fields: Any) -> bool:
    """``set_password`` ran since the last save: Django keeps the raw password until the save.

    A hasher upgrade at login re-hashes the same password and clears that first, so it
    revokes nothing; comparing hashes could not tell the two apart.
    """
    return getattr(instance, "_password", None) is not None and (update_fields is None or "password" in update_fields)


def _before_user_save(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    changed = instance.pk is not None and _password_set(instance, update_fields)
    instance._ends_sessions = changed or _ends_sessions("user", instance, update_fields)


def _before_partner_save(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    instance._ends_sessions = _ends_sessions("partner", instance, update_fields)


def _saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if getattr(instance, "_ends_sessions", False):
        instance._ends_sessions = False
        tokens_revoke_all(user_id=instance.pk)
    if created:
        return  # a new user or profile takes no right away
    if update_fields is not None and set(update_fields) <= _HARMLESS_FIELDS:
        return
    access_changed(user_id=instance.pk)


def _deleting_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Before the tokens lose their user (``SET_NULL``): a deleted user's refresh token would
    otherwise reach simplejwt's refresh, which fails on the missing user with a 500."""
    tokens_revoke_all(user_id=instance.pk)


def _deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    access_changed(user_id=instance.pk)


def connect_receivers() -> None:
    pre_save.connect(_before_user_save, sender=get_user_model(), dispatch_uid="access-user-saving")
    pre_save.connect(_before_partner_save, sender=Partner, dispatch_uid="access-partner-saving")
    post_save.connect(_saved, sender=get_user_model(), dispatch_uid="access-user-saved")
    pre_delete.connect(_deleting_user, sender=get_user_model(), dispatch_uid="access-user-deleting")
    post_delete.connect(_deleted, sender=get_user_model(), dispatch_uid="access-user-deleted")
    post_save.connect(_saved, sender=Partner, dispatch_uid="access-partner-saved")
    post_delete.connect(_deleted, sender=Partner, dispatch_uid="access-partner-deleted")
