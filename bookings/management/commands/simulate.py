"""A city in motion against a running server: partners and customers as real Socket.IO clients.

Partners (python-socketio clients on ``/partner``) stream their position, answer offers
by the given odds (accept, reject, or let them lapse), drive to the booking at
``--speed`` and take it through the lifecycle. Customers book over REST, track their
booking on ``/customer`` and now and then cancel. The bad day too (``--silent``,
``--suspensions``): some partners' phones die mid-job (they stop, their job is left to
staff), and ops staff suspend partners who hold jobs. A progress line shows bookings by
status, offers expired and events per second.

For demos (``make run`` in one terminal, ``python manage.py simulate`` in another) and as
the soak test (``tests/bookings/test_soak.py``). The users are created in the database the
command is configured with (``sim-*`` names), which must be the server's.
"""

import asyncio
import random
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import aiohttp
import socketio
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from bookings import services as booking_services
from bookings.geo import distance_m
from bookings.management.commands.seed_demo import near_city
from bookings.models import HELD_STATUSES, OPEN_STATUSES, Booking, BookingStatusChange, Service
from partners.models import KycStatus, Partner
from partners.services import partner_suspend

PASSWORD = "simulate12345"
TICK = 1.0  # seconds between a moving partner's location updates
ARRIVED_M = 30.0


def step_towards(lat: float, lng: float, to_lat: float, to_lng: float, meters: float) -> tuple[float, float]:
    """A point ``meters`` along the straight line to the target (or the target itself)."""
    remaining = distance_m(lat, lng, to_lat, to_lng)
    if remaining <= meters:
        return to_lat, to_lng
    f = meters / remaining
    return lat + (to_lat - lat) * f, lng + (to_lng - lng) * f


class Stats:
    def __init__(self) -> None:
        self.events = 0  # server events the clients received
        self.seen = (time.monotonic(), 0)  # (when, events) at the last progress line
        self.offers = Counter()  # accepted / rejected / ignored
        self.errors: Counter[str] = Counter()
        self.silent: list[str] = []  # bookings whose partner's phone died on site
        self.suspended: list[str] = []  # partners staff suspended while they held a job


class SimPartner:
    def __init__(self, url: str, token: str, position: tuple[float, float], opts: dict[str, Any], stats: Stats):
        self.url, self.token, self.opts, self.stats = url, token, opts, stats
        self.lat, self.lng = position
        self.rng = random.Random(hash(token))
        self.job: dict[str, Any] | None = None
        self.silent = False
        self.tasks: set[asyncio.Future] = set()
        self.sio = socketio.AsyncClient(reconnection=True)
        self.sio.on("*", self._any, namespace="/partner")

    async def _any(self, event: str, *args: Any) -> None:
        self.stats.events += 1
        data = args[0] if args else None
        if event == "booking:new_request" and self.job is None:
            task = asyncio.ensure_future(self._answer(data))  # not inline: it awaits an ack
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif event == "booking:cancelled" and self.job and self.job["bookingId"] == data["bookingId"]:
            self.job = None

    async def _answer(self, offer: dict[str, Any]) -> None:
        roll = self.rng.random()
        await asyncio.sleep(self.rng.uniform(0.2, 1.5))
        if roll < self.opts["accept"]:
            ack = await self._call("booking:accept", offer["bookingId"])
            if ack.get("ok") and self.job is None:
                self.stats.offers["accepted"] += 1
                self.job = {"bookingId": offer["bookingId"], "to": offer["location"], "status": "PARTNER_ACCEPTED"}
        elif roll < self.opts["accept"] + self.opts["reject"]:
            self.stats.offers["rejected"] += 1
            await self._call("booking:reject", {"bookingId": offer["bookingId"], "reason": "simulated"})
        else:
            self.stats.offers["ignored"] += 1

    async def _call(self, event: str, data: Any) -> dict[str, Any]:
        try:
            ack = await self.sio.call(event, data, namespace="/partner", timeout=10)
        except Exception as exc:  # a timeout or a dropped socket: the simulation goes on
            self.stats.errors[type(exc).__name__] += 1
            return {}
        if isinstance(ack, dict) and not ack.get("ok"):
            self.stats.errors[ack.get("error", {}).get("code", "?")] += 1
        return ack if isinstance(ack, dict) else {}

    async def run(self, until: float) -> None:
        await self.sio.connect(self.url, namespaces=["/partner"], auth={"token": self.token}, transports=["websocket"])
        idle_ticks = 0
        while time.monotonic() < until and not self.silent:
            await asyncio.sleep(TICK)
            if self.job is not None:
                await self._drive()
            else:
                idle_ticks += 1
                if idle_ticks % 5 == 0:  # idle partners report now and then (dispatch reads their position)
                    await self._call("location:update", {"latitude": self.lat, "longitude": self.lng})
        if not self.silent:
            await self.sio.disconnect()

    async def _drive(self) -> None:
        job = self.job
        status = job["status"]
        if status == "PARTNER_ACCEPTED":
            await self._set_status(job, "PARTNER_EN_ROUTE")
        elif status == "PARTNER_EN_ROUTE":
            to = job["to"]
            speed = self.opts["speed"]
            self.lat, self.lng = step_towards(self.lat, self.lng, to["latitude"], to["longitude"], speed * TICK)
            await self._call("location:update", {"latitude": self.lat, "longitude": self.lng, "speed": speed})
            if distance_m(self.lat, self.lng, to["latitude"], to["longitude"]) <= ARRIVED_M:
                await self._set_status(job, "PARTNER_ARRIVED")
        elif status == "PARTNER_ARRIVED":
            if self.opts["silent_until"] > time.monotonic() and self.rng.random() < self.opts["silent"]:
                self.silent = True  # the phone died on site: nothing more from this partner
                self.stats.silent.append(job["bookingId"])
                await self.sio.disconnect()
                return
            await self._set_status(job, "IN_PROGRESS")
            job["done_at"] = time.monotonic() + self.opts["work"]
        elif status == "IN_PROGRESS" and time.monotonic() >= job["done_at"]:
            await self._set_status(job, "COMPLETED")
            if self.job is job:
                self.job = None

    async def _set_status(self, job: dict[str, Any], status: str) -> None:
        ack = await self._call("booking:status_update", {"bookingId": job["bookingId"], "status": status})
        if ack.get("ok"):
            job["status"] = status
        elif self.job is job:  # cancelled meanwhile: drop it
            self.job = None


class SimCustomer:
    def __init__(self, url: str, token: str, services: list[str], opts: dict[str, Any], stats: Stats):
        self.url, self.token, self.services, self.opts, self.stats = url, token, services, opts, stats
        self.rng = random.Random(hash(token))
        self.open: str | None = None
        self.sio = socketio.AsyncClient(reconnection=True)
        self.sio.on("*", self._any, namespace="/customer")

    async def _any(self, event: str, *args: Any) -> None:
        self.stats.events += 1
        data = args[0] if args else None
        finished = event == "booking:status_updated" and data["status"] in ("COMPLETED", "CANCELLED")
        if finished and data["bookingId"] == self.open:
            self.open = None

    async def run(self, until: float, http: aiohttp.ClientSession) -> None:
        await self.sio.connect(self.url, namespaces=["/customer"], auth={"token": self.token}, transports=["websocket"])
        while time.monotonic() < until:
            pause = self.rng.expovariate(1 / self.opts["book_every"])
            await asyncio.sleep(min(pause, until - time.monotonic()))
            if time.monotonic() >= until:
                break
            if self.open is None:
                await self._book(http)
            elif self.rng.random() < self.opts["cancel"]:
                ack = await self.sio.call(
                    "booking:cancel", {"bookingId": self.open, "reason": "simulated"}, namespace="/customer"
                )
                if ack.get("ok"):
                    self.open = None
        await self.sio.disconnect()

    async def _book(self, http: aiohttp.ClientSession) -> None:
        lat, lng = near_city(self.rng, self.opts["radius"])
        body = {
            "serviceId": self.rng.choice(self.services),
            "scheduledAt": (timezone.now() + timedelta(minutes=30)).isoformat(),
            "address": "Simulated street",
            "latitude": lat,
            "longitude": lng,
        }
        headers = {"Authorization": f"Bearer {self.token}"}
        async with http.post(f"{self.url}/api/bookings/", json=body, headers=headers) as response:
            if response.status != 201:
                self.stats.errors[f"HTTP {response.status}"] += 1
                return
            booking = await response.json()
        self.open = booking["id"]
        await self.sio.call("booking:track", booking["id"], namespace="/customer")


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
