"""Services, bookings and their status history."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models


class Service(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="INR")
    duration_minutes = models.PositiveIntegerField(default=60)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BookingStatus(models.TextChoices):
    PENDING = "PENDING"
    PARTNER_ASSIGNED = "PARTNER_ASSIGNED"
    PARTNER_ACCEPTED = "PARTNER_ACCEPTED"
    PARTNER_EN_ROUTE = "PARTNER_EN_ROUTE"
    PARTNER_ARRIVED = "PARTNER_ARRIVED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


# The partner is working on it: location is relayed, no other job is offered.
ACTIVE_STATUSES = (
    BookingStatus.PARTNER_ACCEPTED,
    BookingStatus.PARTNER_EN_ROUTE,
    BookingStatus.PARTNER_ARRIVED,
    BookingStatus.IN_PROGRESS,
)
# A partner holds it (an offer or a job): dispatch offers them nothing else meanwhile.
HELD_STATUSES = (BookingStatus.PARTNER_ASSIGNED, *ACTIVE_STATUSES)
OPEN_STATUSES = (BookingStatus.PENDING, *HELD_STATUSES)
TERMINAL_STATUSES = (BookingStatus.COMPLETED, BookingStatus.CANCELLED)
# Statuses a partner may set with booking:status_update.
PARTNER_PROGRESS = (
    BookingStatus.PARTNER_EN_ROUTE,
    BookingStatus.PARTNER_ARRIVED,
    BookingStatus.IN_PROGRESS,
    BookingStatus.COMPLETED,
)


class DispatchState(models.TextChoices):
    """Where dispatch stands with a booking (contract 8.2), as staff see it."""

    SEARCHING = "searching"  # PENDING, dispatch is choosing (or will try again)
    OFFERED = "offered"  # PARTNER_ASSIGNED, the offer's clock is running
    UNASSIGNED = "unassigned"  # PENDING, nobody eligible or the offers ran out: staff should look
    DONE = "done"  # accepted, finished or cancelled


class Booking(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=8, unique=True, editable=False)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings")
    # A partner is identified by its user id: Partner's primary key is its user.
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="bookings"
    )
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="bookings")
    status = models.CharField(max_length=20, choices=BookingStatus.choices, default=BookingStatus.PENDING)
    scheduled_at = models.DateTimeField()
    address = models.CharField(max_length=300)
    latitude = models.FloatField()
    longitude = models.FloatField()
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="INR")
    notes = models.TextField(blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    dispatch_state = models.CharField(
        max_length=10, choices=DispatchState.choices, default=DispatchState.SEARCHING, editable=False
    )
    # Offers made so far (dispatch and staff), against DISPATCH_MAX_OFFERS.
    dispatch_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    # When the dispatch sweeper must look at it again: the offer's deadline (PARTNER_ASSIGNED)
    # or the next search (PENDING, nobody was eligible). Null: nothing is due.
    dispatch_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Arrival (contract 10.3, ``bookings.arrival``), for the current partner (cleared when the job
    # goes back to dispatch). When the partner first came within ARRIVAL_RADIUS_METERS, and how
    # far they were then (partner:nearby was sent once, by whoever set it).
    nearby_at = models.DateTimeField(null=True, blank=True, editable=False)
    nearby_meters = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # When the partner set PARTNER_ARRIVED farther than 1 km from the place, and how far: staff are told
    # (``attention: "arrived_far"``) until the partner comes near or the booking ends.
    arrived_far_at = models.DateTimeField(null=True, blank=True, editable=False)
    arrived_far_meters = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A partner holds at most one open offer (contract 8.2), whatever races above this.
            models.UniqueConstraint(
                fields=["partner"],
                condition=models.Q(status=BookingStatus.PARTNER_ASSIGNED),
                name="one_open_offer_per_partner",
            ),
        ]
        indexes = [
            models.Index(
                fields=["dispatch_due_at"],
                condition=models.Q(dispatch_due_at__isnull=False),
                name="booking_dispatch_due",
            ),
            models.Index(fields=["partner", "status"], name="booking_partner_status"),
            models.Index(fields=["customer", "-created_at"], name="booking_customer_recent"),
            models.Index(fields=["status", "-created_at"], name="booking_status_recent"),
            models.Index(fields=["completed_at"], name="booking_completed_at"),
            # Staff lists, newest first: the admin's order (its primary key breaks ties) and the REST cursor's.
            models.Index(fields=["-created_at", "-id"], name="booking_recent"),
        ]

    def __str__(self) -> str:
        return self.number


class BookingStatusChange(models.Model):
    """Append-only history: the only writer is ``bookings.services.lifecycle.transition``."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # Who made the move: customer, partner, staff or dispatch (which has no user).
    role = models.CharField(max_length=10, blank=True)
    partner = models.ForeignKey("partners.Partner", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.booking_id}: {self.from_status or '-'} -> {self.to_status}"


class BookingRejection(models.Model):
    """A partner who turned a booking down, let its offer lapse or lost it to staff is never offered it again.

    ``reason`` is the partner's words, or ``offer_expired`` / ``reassigned``.
    """

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="rejections")
    partner = models.ForeignKey("partners.Partner", on_delete=models.CASCADE, related_name="rejections")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["booking", "partner"], name="one_rejection_per_partner")]


class Tally(models.Model):
    """A running booking figure (``bookings.tallies``): a count and an amount under a key.

    Keys: ``status:<STATUS>`` (bookings now in that status; the amount is summed on COMPLETED),
    ``created:<day>`` and ``completed:<day>`` (the platform's day, contract 8.1; the amount of
    ``completed`` is that day's revenue).
    """

    key = models.CharField(max_length=40, primary_key=True)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0.00"))

    def __str__(self) -> str:
        return f"{self.key}: {self.count} / {self.amount}"


class TallyChange(models.Model):
    """What one booking write adds to a ``Tally``: inserted in that write's transaction (no row
    shared with another writer, so no lock to wait for), folded into ``Tally`` every second."""

    key = models.CharField(max_length=40)
    count = models.BigIntegerField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["key"], name="tally_change_key")]
