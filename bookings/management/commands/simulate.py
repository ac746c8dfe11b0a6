"""A city in motion against a running server: partners and customers as real Socket.IO clients.

Partners (python-socketio clients on ``/partner``) stream their position, answer offers
by the given odds (accept, reject, or let them lapse), drive to the booking at
``--speed`` and take it through the lifecycle. Customers book over REST, track their
booking on ``/customer`` and now and then cancel. The bad day too (``--silent``,
``--suspensions``): some partners' phones die mid-job (they stop, their job is left to
staff), ops staff suspend partners who hold jobs, and (``--dead-zones``) partners on the way
lose their network for a while and send the fixes they kept as ``location:batch`` once back.
A progress line shows bookings by status, offers expired and events per second.

The actors are in ``bookings/management/simulation.py``; this command makes the users, runs
the actors and ops staff, and reports. For demos (``make run`` in one terminal, ``python
manage.py simulate`` in another) and as the soak test (``tests/bookings/test_soak.py``). The
users are created in the database the command is configured with (``sim-*`` names), which
must be the server's.
"""

import asyncio
import random
import sys
import time
from datetime import timedelta
from typing import Any

import aiohttp
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count
from rest_framework_simplejwt.tokens import AccessToken

from bookings import services as booking_services
from bookings.management.commands.seed_demo import near_city
from bookings.management.simulation import SimCustomer, SimPartner, Stats
from bookings.models import HELD_STATUSES, OPEN_STATUSES, Booking, BookingStatusChange, Service
from partners.models import KycStatus, Partner
from partners.services import partner_suspend

PASSWORD = "simulate12345"


class Command(BaseCommand):
    help = "Simulate partners and customers as real Socket.IO clients against a running server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", action="append", help="server URL (repeat to spread clients over processes)")
        parser.add_argument("--partners", type=int, default=10)
        parser.add_argument("--customers", type=int, default=10)
        parser.add_argument("--duration", type=float, default=60, help="seconds")
        parser.add_argument("--accept", type=float, default=0.7, help="odds a partner accepts an offer")
        parser.add_argument("--reject", type=float, default=0.1, help="odds a partner rejects (else ignores)")
        parser.add_argument("--cancel", type=float, default=0.05, help="odds a customer cancels, per look")
        parser.add_argument("--speed", type=float, default=12.0, help="partners' speed in m/s (12 = 43 km/h)")
        parser.add_argument("--radius", type=float, default=3.0, help="km around the city centre")
        parser.add_argument("--book-every", type=float, default=8.0, help="mean seconds between a customer's looks")
        parser.add_argument("--work", type=float, default=3.0, help="seconds a job takes on site")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--silent", type=float, default=0.0, help="odds a partner's phone dies on arrival")
        parser.add_argument("--suspensions", type=int, default=0, help="partners staff suspend while they hold a job")
        parser.add_argument(
            "--dead-zones", type=float, default=0.0, help="odds a partner loses its network on the way to a job"
        )
        parser.add_argument("--dead-zone-seconds", type=float, default=20.0, help="how long a dead zone lasts")

    def handle(self, *args: Any, **opts: Any) -> None:
        urls = opts["url"] or ["http://127.0.0.1:8000"]
        asyncio.run(self._simulate(urls, opts))

    async def _simulate(self, urls: list[str], opts: dict[str, Any]) -> None:
        from asgiref.sync import sync_to_async

        rng = random.Random(opts["seed"])
        tokens, services = await sync_to_async(self._users)(opts, rng)
        stats = Stats()
        start = time.monotonic()
        until = start + opts["duration"]
        partners = [
            SimPartner(urls[i % len(urls)], token, near_city(rng, opts["radius"]), opts, stats)
            for i, token in enumerate(tokens["partner"])
        ]
        customers = [
            SimCustomer(urls[(i + 1) % len(urls)], token, services, opts, stats)
            for i, token in enumerate(tokens["customer"])
        ]
        # Phones die in the first half only: by the end, staff can see every abandoned job as stale.
        opts["silent_until"] = start + opts["duration"] / 2
        async with aiohttp.ClientSession() as http:
            runners = [p.run(until) for p in partners] + [c.run(until, http) for c in customers]
            runners.append(self._ops(opts["suspensions"], until, stats))
            progress = asyncio.ensure_future(self._progress(stats, start))
            results = await asyncio.gather(*runners, return_exceptions=True)
            progress.cancel()
        failed = [r for r in results if isinstance(r, BaseException)]
        line = await sync_to_async(self._line)(stats, start)
        self.stdout.write(f"\n{line}")
        self.stdout.write(f"silent: {','.join(stats.silent)}; suspended: {','.join(stats.suspended)}")
        self.stdout.write(f"dead zones: {stats.dead_zones}; batches sent on reconnect: {dict(stats.backfill)}")
        self.stdout.write(f"offers: {dict(stats.offers)}; errors: {dict(stats.errors)}; clients failed: {len(failed)}")
        for error in failed[:3]:
            self.stderr.write(f"  {type(error).__name__}: {error}")

    def _users(self, opts: dict[str, Any], rng: random.Random) -> tuple[dict[str, list[str]], list[str]]:
        """``sim-partner-N`` (approved, every service) and ``sim-customer-N``, with tokens for the run."""
        users = get_user_model().objects
        services = list(Service.objects.filter(is_active=True))
        if not services:
            services = [Service.objects.create(name="Simulated service", price=499)]
        self._close_leftovers()
        lifetime = timedelta(seconds=opts["duration"] + 300)
        tokens: dict[str, list[str]] = {"partner": [], "customer": []}
        for role, count in (("partner", opts["partners"]), ("customer", opts["customers"])):
            for i in range(count):
                user, created = users.get_or_create(
                    username=f"sim-{role}-{i}", defaults={"first_name": f"Sim {role} {i}"}
                )
                if created:
                    user.set_password(PASSWORD)
                    user.save(update_fields=["password"])
                if role == "partner":
                    lat, lng = near_city(rng, opts["radius"])
                    partner, _ = Partner.objects.update_or_create(
                        user=user,
                        defaults={
                            "name": user.first_name,
                            "phone": "+91-9000000000",
                            "kyc_status": KycStatus.APPROVED,
                            "is_suspended": False,
                            "is_available": True,
                            "last_latitude": lat,
                            "last_longitude": lng,
                        },
                    )
                    partner.services.set(services)
                token = AccessToken.for_user(user)
                token.set_exp(lifetime=lifetime)
                tokens[role].append(str(token))
        return tokens, [str(s.pk) for s in services]

    async def _ops(self, suspensions: int, until: float, stats: Stats) -> None:
        """Ops staff: every so often, suspend a partner who holds a job (through the service, as the admin does)."""
        from asgiref.sync import sync_to_async

        if not suspensions:
            return
        pause = (until - time.monotonic()) / (suspensions + 1)
        for _ in range(suspensions):
            await asyncio.sleep(pause)
            suspended = await sync_to_async(self._suspend_one)()
            if suspended is not None:
                stats.suspended.append(str(suspended))

    def _suspend_one(self) -> int | None:
        staff = get_user_model().objects.get(username="sim-staff")
        held = Booking.objects.filter(partner__user__username__startswith="sim-partner-", status__in=HELD_STATUSES)
        partner_id = held.exclude(partner__is_suspended=True).values_list("partner_id", flat=True).first()
        if partner_id is not None:
            partner_suspend(partner_id=partner_id, actor=staff)
        return partner_id

    def _close_leftovers(self) -> None:
        """Bookings an earlier run left open would keep its partners busy: staff cancel them (any status)."""
        staff, _ = get_user_model().objects.get_or_create(username="sim-staff", defaults={"is_staff": True})
        leftovers = Booking.objects.filter(customer__username__startswith="sim-customer-", status__in=OPEN_STATUSES)
        for booking_id in leftovers.values_list("pk", flat=True):
            booking_services.booking_cancel(booking_id=booking_id, actor=staff, reason="simulation restarted")

    async def _progress(self, stats: Stats, start: float) -> None:
        from asgiref.sync import sync_to_async

        while True:
            await asyncio.sleep(1)
            line = await sync_to_async(self._line)(stats, start)
            if sys.stdout.isatty():
                self.stdout.write(f"\r{line}", ending="")
            else:
                self.stdout.write(line)

    def _line(self, stats: Stats, start: float) -> str:
        mine = Booking.objects.filter(customer__username__startswith="sim-customer-")
        by_status = dict(mine.values_list("status").annotate(n=Count("pk")).order_by())
        expired = BookingStatusChange.objects.filter(booking__in=mine, note="offer_expired").count()
        now = time.monotonic()
        (then, before), stats.seen = stats.seen, (now, stats.events)
        rate = (stats.events - before) / max(now - then, 1e-9)
        statuses = " ".join(f"{status}={n}" for status, n in sorted(by_status.items()))
        return f"[{now - start:4.0f}s] {statuses or 'no bookings yet'} | offers expired {expired} | {rate:.0f} events/s"
