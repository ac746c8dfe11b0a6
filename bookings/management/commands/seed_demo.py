"""Demo data: services, a staff user, customers, partners (KYC approved) and bookings in every status.

Idempotent: running it again tops up to the requested counts and changes nothing else. The
data follows the product's rules: one offer or job per partner, and every demo customer can
book at once (fewer than ``OPEN_BOOKINGS_MAX`` open bookings each).
"""

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from bookings import signals
from bookings.models import (
    HELD_STATUSES,
    OPEN_STATUSES,
    Booking,
    BookingStatus,
    BookingStatusChange,
    DispatchState,
    Service,
)
from bookings.services import insert_with_number
from partners.demo import CUSTOMER_NAME, CUSTOMER_PASSWORD, PARTNER_NAME, PARTNER_PASSWORD, STAFF
from partners.models import CustomerProfile, KycStatus, KycSubmission, Partner
from partners.services import earning_store

CITY = (28.6139, 77.2090)  # New Delhi
SERVICES = [
    ("House Cleaning", "Full home cleaning", "999.00", 120),
    ("Plumbing", "Leaks, taps and pipes", "499.00", 60),
    ("Electrician", "Wiring, switches and fittings", "449.00", 60),
    ("AC Repair", "Service and gas top-up", "1299.00", 90),
    ("Painting", "One room, two coats", "4999.00", 480),
]
DEMO_NOTE = "demo booking"


def near_city(rng: random.Random, km: float = 10.0) -> tuple[float, float]:
    return CITY[0] + rng.uniform(-km, km) / 111.0, CITY[1] + rng.uniform(-km, km) / 98.0


class Command(BaseCommand):
    help = "Create demo data (idempotent) and print the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=5)
        parser.add_argument("--partners", type=int, default=5)
        parser.add_argument("--bookings", type=int, default=16)
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        parser.add_argument(
            "--allow-demo-logins",
            action="store_true",
            help="create the published demo logins even with DEBUG off (a staging server, never production)",
        )

    def handle(self, *args: Any, customers: int, partners: int, bookings: int, quiet: bool, **options: Any) -> None:
        if not settings.DEBUG and not options["allow_demo_logins"]:
            # Its logins (admin / admin12345 among them) are printed in the README: on a real
            # server they would be anyone's staff account.
            raise CommandError(
                "DEBUG is off: seed_demo would create logins whose passwords are published. "
                "Run it with DEBUG=1, or pass --allow-demo-logins on a server nobody else reaches."
            )
        rng = random.Random(42)
        user_model = get_user_model()
        with transaction.atomic():
            services = [
                Service.objects.get_or_create(
                    name=name,
                    defaults={
                        "description": desc,
                        "price": Decimal(price),
                        "duration_minutes": minutes,
                        "currency": settings.DEFAULT_CURRENCY,
                    },
                )[0]
                for name, desc, price, minutes in SERVICES
            ]
            staff, created = user_model.objects.get_or_create(
                username=STAFF[0], defaults={"is_staff": True, "is_superuser": True, "first_name": "Ops Admin"}
            )
            if created:
                staff.set_password(STAFF[1])
                staff.save()

        customer_users = [
            self._customer(user_model, i) for i in self._progress(range(1, customers + 1), "customers", quiet)
        ]
        partner_rows = [
            self._partner(user_model, i, services, rng)
            for i in self._progress(range(1, partners + 1), "partners", quiet)
        ]
        existing = Booking.objects.filter(notes=DEMO_NOTE, customer__in=customer_users).count()  # theirs only
        statuses = list(BookingStatus.values)
        # Open bookings per customer, kept below the limit so that each can still book.
        open_counts = Counter(
            Booking.objects.filter(customer__in=customer_users, status__in=OPEN_STATUSES).values_list(
                "customer_id", flat=True
            )
        )
        for i in self._progress(range(existing, bookings), "bookings", quiet):
            if not customer_users:
                break
            status = statuses[i % len(statuses)]
            room = [c for c in customer_users if open_counts[c.pk] < settings.OPEN_BOOKINGS_MAX - 1]
            if status in OPEN_STATUSES and not room:
                status = BookingStatus.COMPLETED  # every customer holds all the open bookings they may
            customer = rng.choice(room if status in OPEN_STATUSES else customer_users)
            if self._booking(rng, status, customer, partner_rows, services) in OPEN_STATUSES:
                open_counts[customer.pk] += 1

        with transaction.atomic():  # the apps above add their demo data (an open safety alert, a job's trace)
            answers = signals.demo_seeded.send(
                sender=self.__class__, customers=customer_users, partners=partner_rows, services=services
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (username / password):"))
        self.stdout.write(f"  staff     {STAFF[0]} / {STAFF[1]}   (Django admin at /admin/)")
        if customers:
            self.stdout.write(f"  customers customer1..customer{customers} / {CUSTOMER_PASSWORD}")
        if partners:
            self.stdout.write(f"  partners  partner1..partner{partners} / {PARTNER_PASSWORD}")
        for _, said in answers:  # what a receiver wants the newcomer to know (where to look)
            if isinstance(said, str):
                self.stdout.write(said)

    def _progress(self, items: range, what: str, quiet: bool) -> Any:
        if quiet or len(items) < 200:
            return items
        return tqdm(items, desc=what, unit=what[:-1])

    @transaction.atomic
    def _customer(self, user_model: Any, i: int) -> Any:
        user, created = user_model.objects.get_or_create(
            username=CUSTOMER_NAME.format(i), defaults={"first_name": f"Customer {i}"}
        )
        if created:
            user.set_password(CUSTOMER_PASSWORD)
            user.save()
            CustomerProfile.objects.create(user=user, phone=f"+91-90000{i:05d}")
        return user

    @transaction.atomic
    def _partner(self, user_model: Any, i: int, services: list[Service], rng: random.Random) -> Partner:
        user, created = user_model.objects.get_or_create(
            username=PARTNER_NAME.format(i), defaults={"first_name": f"Partner {i}"}
        )
        if not created:
            return user.partner
        user.set_password(PARTNER_PASSWORD)
        user.save()
        lat, lng = near_city(rng)
        partner = Partner.objects.create(
            user=user,
            name=f"Partner {i}",
            phone=f"+91-80000{i:05d}",
            kyc_status=KycStatus.APPROVED,
            rating=Decimal(str(round(rng.uniform(4.0, 5.0), 2))),
            last_latitude=lat,
            last_longitude=lng,
            last_location_at=timezone.now(),
        )
        partner.services.set([*rng.sample(services, k=min(3, len(services))), services[0]])
        KycSubmission.objects.create(
            partner=partner,
            document_type="AADHAAR",
            document_number=f"{rng.randrange(10**11, 10**12)}",
            status=KycStatus.APPROVED,
            reviewed_at=timezone.now(),
        )
        return partner

    @transaction.atomic
    def _booking(
        self, rng: random.Random, status: str, customer: Any, partners: list[Partner], services: list[Service]
    ) -> str:
        """One booking in ``status`` (or PENDING, when no partner is free to hold it); its status."""
        service = rng.choice(services)
        lat, lng = near_city(rng)
        needs_partner = status not in (BookingStatus.PENDING,) and partners
        partner = rng.choice(partners) if needs_partner else None
        if status == BookingStatus.CANCELLED and rng.random() < 0.5:
            partner = None
        if status in HELD_STATUSES:  # one offer or job under way per partner (contract 8.2, 9.3)
            held = set(Booking.objects.filter(status__in=HELD_STATUSES).values_list("partner_id", flat=True))
            free = [p for p in partners if p.pk not in held]
            partner = rng.choice(free) if free else None
            status = status if partner else BookingStatus.PENDING
        # Seeded offers lapse like any other; seeded pending bookings wait for staff.
        dispatch = {
            BookingStatus.PENDING: {"dispatch_state": DispatchState.UNASSIGNED},
            BookingStatus.PARTNER_ASSIGNED: {
                "dispatch_state": DispatchState.OFFERED,
                "dispatch_attempts": 1,
                "dispatch_due_at": timezone.now() + timedelta(seconds=settings.OFFER_TIMEOUT_SECONDS),
            },
        }.get(status, {"dispatch_state": DispatchState.DONE})
        booking = insert_with_number(
            customer=customer,
            partner=partner,
            service=service,
            status=status,
            scheduled_at=timezone.now() + timedelta(hours=rng.randint(-48, 72)),
            address=f"{rng.randint(1, 300)} Demo Street, New Delhi",
            latitude=lat,
            longitude=lng,
            amount=service.price,
            currency=service.currency,
            notes=DEMO_NOTE,
            cancel_reason="Changed my mind" if status == BookingStatus.CANCELLED else "",
            cancelled_by=customer if status == BookingStatus.CANCELLED else None,
            completed_at=timezone.now() if status == BookingStatus.COMPLETED else None,
            **dispatch,
        )
        BookingStatusChange.objects.create(
            booking=booking, from_status="", to_status=status, actor=customer, partner=partner, note="seeded"
        )
        if status == BookingStatus.COMPLETED and partner is not None:
            earning_store(booking=booking)
        return status
