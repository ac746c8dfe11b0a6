"""Who a socket belongs to: the identity loader the composition root gives, the session's
user, and the memory of recent access changes.

Knows no app: an identity is a dict from the loader (``partners.access.socket_identities``).
"""

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from config.realtime.orm import Batched

Session = dict[str, Any]


def user_room(user_id: object) -> str:
    """The room every socket of a user joins, in its namespace (the one room this package names)."""
    return f"user:{user_id}"


def session_user(session: Session) -> Any:
    """The socket's user as checked at connect, without a query.

    An unsaved ``User`` carrying the fields the services read (pk, names,
    ``is_staff``) plus ``person_role`` (customer, partner or staff: the role
    this socket acts in). Deactivation disconnects the socket, so the
    snapshot cannot outlive the account. Built once per session and kept while those
    fields stay the same (a rights change that updates the session builds a new one):
    building a ``User`` runs every field's default, a tenth of a chat message's CPU
    (issue 34). Services read it and never change it.
    """
    fields = tuple(session[name] for name in _USER_FIELDS)
    kept = session.get(_KEPT_USER)
    if kept is not None and kept[0] == fields:
        return kept[1]
    uid, username, first_name, last_name, is_staff, role = fields
    user = get_user_model()(
        pk=uid, username=username, first_name=first_name, last_name=last_name, is_staff=is_staff, is_active=True
    )
    user.person_role = "staff" if is_staff or role == "admin" else role
    session[_KEPT_USER] = (fields, user)
    return user


_USER_FIELDS = ("uid", "username", "first_name", "last_name", "is_staff", "role")
_KEPT_USER = "_user"


IdentityLoader = Callable[[list[int]], "dict[int, dict[str, Any]]"]
_identity: list[IdentityLoader] = []


def set_identity_loader(loader: IdentityLoader) -> None:
    """Register how user ids become identities (the composition root calls this once).

    The loader runs in a DB thread and returns ``{user_id: identity}`` for the users that
    exist (one query for many: the periodic recheck reads a process's users in batches);
    an identity is a dict with at least ``uid``, ``username``, ``first_name``,
    ``last_name``, ``is_active`` and ``is_staff``; namespaces read whatever else they need.
    """
    _identity[:] = [loader]


def load_identity(user_id: int) -> dict[str, Any] | None:
    return _identity[0]([user_id]).get(user_id)


def load_identities(user_ids: list[int]) -> dict[int, dict[str, Any]]:
    return _identity[0](user_ids)


# A user's identity read from the loop: the reads of one moment (a reconnect storm's connects)
# share one query and one DB thread hand-off.
identities = Batched(load_identities)


# Users whose access changed lately (monotonic time): a connect that read the user
# before such a change re-reads after joining the user room (``BaseNamespace._connect``).
_access_changed: dict[int, float] = {}
ACCESS_CHANGE_MEMORY = 60.0


def note_access_change(user_id: int) -> None:
    now = time.monotonic()
    for uid, at in list(_access_changed.items()):
        if now - at > ACCESS_CHANGE_MEMORY:
            del _access_changed[uid]
    _access_changed[user_id] = now


def access_changed_since(user_id: int, moment: float) -> bool:
    """Whether the user's access changed at or after ``moment`` (``time.monotonic()``)."""
    return _access_changed.get(user_id, -1.0) >= moment
