"""Accounts' profiles (customers and partners), KYC submissions and earnings."""

from decimal import Decimal

from django.conf import settings
from django.db import models


class KycStatus(models.TextChoices):
    NONE = "NONE"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class CustomerProfile(models.Model):
    """What a customer tells us at sign-up beyond ``auth.User`` (name lives on the user)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_profile")
    phone = models.CharField(max_length=32, blank=True)

    class Meta:
        db_table = "bookings_customerprofile"  # made by bookings before accounts moved here

    def __str__(self) -> str:
        return f"{self.user} ({self.phone})"


class Partner(models.Model):
    # The user is the primary key, so ``partner.pk`` is the user id the contract speaks of.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="partner"
    )
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=32)
    services = models.ManyToManyField("bookings.Service", related_name="partners", blank=True)
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("5.00"))
    is_available = models.BooleanField(default=True)
    is_suspended = models.BooleanField(default=False)
    # Kept in step with the newest decided submission by partners.services.
    kyc_status = models.CharField(max_length=10, choices=KycStatus.choices, default=KycStatus.NONE)
    last_latitude = models.FloatField(null=True, blank=True)
    last_longitude = models.FloatField(null=True, blank=True)
    last_location_at = models.DateTimeField(null=True, blank=True)
    # Connected to /partner until then; heartbeats push it forward, a crash lets it lapse.
    online_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["kyc_status", "is_suspended", "is_available", "online_until"], name="partner_dispatchable"
            ),
            # Dispatch's bounding box: a latitude band, then longitude, read from the index.
            models.Index(fields=["last_latitude", "last_longitude"], name="partner_position"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def id(self) -> int:
        return self.user_id


class DocumentType(models.TextChoices):
    AADHAAR = "AADHAAR"
    PAN = "PAN"
    PASSPORT = "PASSPORT"
    DRIVING_LICENSE = "DRIVING_LICENSE"


class KycSubmission(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="kyc_submissions")
    document_type = models.CharField(max_length=20, choices=DocumentType.choices)
    document_number = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=KycStatus.choices, default=KycStatus.PENDING)
    submitted_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    review_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["status", "-submitted_at"], name="kyc_status_recent")]

    def __str__(self) -> str:
        return f"{self.partner} {self.document_type} ({self.status})"


class Earning(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="earnings")
    booking = models.OneToOneField("bookings.Booking", on_delete=models.PROTECT, related_name="earning")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="INR")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["partner", "-created_at"], name="earning_partner_recent")]

    def __str__(self) -> str:
        return f"{self.partner} {self.amount} {self.currency}"


class LocationFix(models.Model):
    """One position a partner's phone recorded while on a job: a job's trace is its partner's fixes.

    Keyed by (partner, ``recorded_at``), so a fix sent twice (a replayed offline batch) is stored
    once. Written in batches (``partners.tracking``), thinned per partner, deleted after
    ``TRACE_RETENTION_DAYS`` by ``recorded_at``'s index, oldest first, a chunk at a time.
    """

    pk = models.CompositePrimaryKey("partner", "recorded_at")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+", db_index=False)
    recorded_at = models.DateTimeField()
    latitude = models.FloatField()
    longitude = models.FloatField()
    accuracy = models.FloatField(null=True, blank=True)
    speed = models.FloatField(null=True, blank=True)
    heading = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["recorded_at"], name="fix_recorded_at")]

    def __str__(self) -> str:
        return f"{self.partner_id} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"
