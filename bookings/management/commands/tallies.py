"""Check the dashboard's running tallies against a recount of every booking, or rebuild them.

    python manage.py tallies            # exit 1 and list the figures that differ
    python manage.py tallies --rebuild  # replace them by the recount (while bookings are not written)

Only a write behind the services' back (SQL by hand, a restored backup) can make them drift.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bookings import tallies


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="replace every tally by the recount")

    def handle(self, *args: Any, rebuild: bool, **options: Any) -> None:
        if rebuild:
            self.stdout.write(f"rebuilt {tallies.rebuild()} tallies")
            return
        drift = tallies.drift()
        for key, (kept, counted) in sorted(drift.items()):
            self.stdout.write(f"{key}: kept {kept}, counted {counted}")
        if drift:
            raise CommandError(f"{len(drift)} tallies differ from the bookings: run with --rebuild")
        self.stdout.write("every tally matches the bookings")
