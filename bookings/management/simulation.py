"""The simulated city's actors (``manage.py simulate``): partners and customers as real Socket.IO clients.

A ``SimPartner`` streams its position on ``/partner``, answers offers by the given odds and
takes its job through the lifecycle (or goes silent on site, or drives through a dead zone:
offline for a while, keeping its fixes, which it sends as ``location:batch`` once it is
back); a ``SimCustomer`` books over
REST and tracks or cancels on ``/customer``. Both count what they see in one ``Stats``.
"""

import asyncio
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import socketio
from django.utils import timezone

from bookings.management.commands.seed_demo import near_city
from config.formats import iso
from partners.geo import distance_m
from partners.traces import BATCH_MAX

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
        self.dead_zones = 0  # times a partner en route lost its network for a while
        self.backfill: Counter[str] = Counter()  # location:batch acks summed: accepted, duplicates, rejected
        self.suspended: list[str] = []  # partners staff suspended while they held a job


class SimPartner:
    def __init__(self, url: str, token: str, position: tuple[float, float], opts: dict[str, Any], stats: Stats):
        self.url, self.token, self.opts, self.stats = url, token, opts, stats
        self.lat, self.lng = position
        self.rng = random.Random(hash(token))
        self.job: dict[str, Any] | None = None
        self.silent = False
        self.offline_until: float | None = None  # in a dead zone until then, keeping fixes
        self.kept: list[dict[str, Any]] = []
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

    async def _connect(self) -> None:
        await self.sio.connect(self.url, namespaces=["/partner"], auth={"token": self.token}, transports=["websocket"])

    async def run(self, until: float) -> None:
        await self._connect()
        idle_ticks = 0
        while time.monotonic() < until and not self.silent:
            await asyncio.sleep(TICK)
            if self.job is not None:
                await self._drive()
            else:
                idle_ticks += 1
                if idle_ticks % 5 == 0:  # idle partners report now and then (dispatch reads their position)
                    await self._call("location:update", {"latitude": self.lat, "longitude": self.lng})
        if not self.silent and self.sio.connected:
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
            fix = {"latitude": self.lat, "longitude": self.lng, "speed": speed, "recordedAt": _now()}
            if await self._dead_zone(job, fix):
                return
            await self._call("location:update", fix)
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

    async def _dead_zone(self, job: dict[str, Any], fix: dict[str, Any]) -> bool:
        """``--dead-zones``: on some jobs the network goes for ``--dead-zone-seconds`` on the way; the
        phone keeps its fixes and, once back, sends them in batches of at most ``BATCH_MAX`` (500).
        Whether it is offline."""
        now = time.monotonic()
        if "dead_at" not in job:  # decided once per job: a few seconds into the drive, or never
            job["dead_at"] = now + self.rng.uniform(1, 5) if self.rng.random() < self.opts["dead_zones"] else None
        if self.offline_until is None and job["dead_at"] is not None and now >= job["dead_at"]:
            job["dead_at"] = None
            self.offline_until = now + self.opts["dead_zone_seconds"]
            self.stats.dead_zones += 1
            await self.sio.disconnect()
        if self.offline_until is None:
            return False
        self.kept.append(fix)
        if now < self.offline_until:
            return True
        self.offline_until = None
        try:
            await self._connect()
        except Exception as exc:  # still no network: keep the fixes, try again next tick
            self.offline_until = now + TICK
            self.stats.errors[type(exc).__name__] += 1
            return True
        kept, self.kept = self.kept, []
        for start in range(0, len(kept), BATCH_MAX):
            ack = await self._call("location:batch", {"fixes": kept[start : start + BATCH_MAX]})
            self.stats.backfill.update({key: ack.get(key, 0) for key in ("accepted", "duplicates", "rejected")})
        return False

    async def _set_status(self, job: dict[str, Any], status: str) -> None:
        ack = await self._call("booking:status_update", {"bookingId": job["bookingId"], "status": status})
        if ack.get("ok"):
            job["status"] = status
        elif self.job is job:  # cancelled meanwhile: drop it
            self.job = None


def _now() -> str:
    return iso(datetime.now(UTC))


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
