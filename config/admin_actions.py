"""Admin helpers: run a service per selected object; keep the audit trail out of reach."""

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.db import DatabaseError
from django.http import HttpRequest

from config.admin_lists import HistoryListAdmin
from config.errors import DomainError

logger = logging.getLogger(__name__)


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[Any],
    action: Callable[[Any], Any],
    verb: str,
    detail: str = "",
) -> None:
    """Run a service on each selected object; each success goes in the object's history.

    A refusal (``DomainError``) or a database error (a deadlock with another staff member,
    an outage) is a message on the page for that object, never a 500: the service's own
    transaction has rolled back, and the other objects are still tried.
    """
    done = 0
    for obj in objects:
        try:
            action(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)
            continue
        except DatabaseError as exc:
            logger.warning("admin action %r on %s failed: %s", verb, obj, exc)
            modeladmin.message_user(request, f"{obj}: the database refused this change; try again", messages.ERROR)
            continue
        modeladmin.log_change(request, obj, f"{verb}{f': {detail}' if detail else ''} (admin action)")
        done += 1
    if done:
        modeladmin.message_user(request, f"{verb} {done} item(s).", level=messages.SUCCESS)


class AuditTrailAdmin(HistoryListAdmin):
    """Records the product keeps as its audit trail: viewable, never added, edited or deleted here.

    Their rows are written by the services only (a status change, an earning, a message);
    the admin may look, and act through actions that call the services.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
