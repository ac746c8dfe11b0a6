"""Helper for admin actions: run a service per selected object, report outcomes."""

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
