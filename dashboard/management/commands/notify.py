"""Send a notification to a user from the command line (it reaches their connected sockets)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from messaging.notify import notification_create


class Command(BaseCommand):
    help = "Notify a user: stored, and pushed as notification:new to every socket they have open."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("title")
        parser.add_argument("--body", default="")
        parser.add_argument("--type", default="ops")

    def handle(self, *args: Any, username: str, title: str, body: str, type: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        with transaction.atomic():
            notification = notification_create(user_id=user.pk, type=type, title=title, body=body)
        self.stdout.write(self.style.SUCCESS(f"notification {notification.pk} sent to {username}"))
