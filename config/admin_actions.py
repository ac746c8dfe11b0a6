"""Admin helpers: run a service per selected object; keep the audit trail out of reach."""

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from config.errors import DomainError


def run_for_each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, objects: Iterable[Any], action: Callable[[Any], Any], verb: str
) -> None:
    done = 0
    for obj in objects:
        try:
            action(obj)
            done += 1
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} item(s).", level=messages.SUCCESS)


class AuditTrailAdmin(admin.ModelAdmin):
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
