"""Partners at work: KYC, suspension, availability, earnings and presence (sign-up: ``partners.accounts``)."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from config import rooms
from config.errors import Conflict, Forbidden, NotFound
from config.platform_day import start_of_today
from config.realtime.emit import emit
from partners import events
from partners.models import Earning, KycStatus, KycSubmission, Partner
from partners.signals import earning_recorded, kyc_decided, partner_withdrawn, partners_dispatchable

if TYPE_CHECKING:
    from bookings.models import Booking

CENT = Decimal("0.01")


# ---------------------------------------------------------------- KYC
def kyc_submit(*, partner: Partner, document_type: str, document_number: str) -> KycSubmission:
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.kyc_submissions.filter(status=KycStatus.PENDING).exists():
            raise Conflict("a KYC submission is already waiting for review")
        submission = KycSubmission.objects.create(
            partner=partner, document_type=document_type, document_number=document_number
        )
        if partner.kyc_status != KycStatus.APPROVED:
            partner.kyc_status = KycStatus.PENDING
            partner.save(update_fields=["kyc_status"])
        emit("kyc:submitted", events.kyc_submitted(submission), namespace=rooms.ADMIN, room=rooms.ADMINS)
    return submission


def kyc_review(*, submission_id: Any, reviewer: AbstractBaseUser, approve: bool, note: str = "") -> KycSubmission:
    """Staff decide a PENDING submission; the partner's KYC status follows it."""
    if not reviewer.is_staff:
        raise Forbidden("only staff can review KYC")
    with transaction.atomic():
        submission = (
            KycSubmission.objects.select_for_update().select_related("partner").filter(pk=submission_id).first()
        )
        if submission is None:
            raise NotFound("no such KYC submission")
        if submission.status != KycStatus.PENDING:
            raise Conflict(f"this submission was already {submission.status.lower()}")
        submission.status = KycStatus.APPROVED if approve else KycStatus.REJECTED
        submission.reviewed_at = timezone.now()
        submission.reviewed_by = reviewer
        submission.review_note = note[:500]
        submission.save()
        partner = submission.partner
        partner.kyc_status = submission.status
        partner.save(update_fields=["kyc_status"])
        kyc_decided.send(sender=KycSubmission, submission=submission, note=note)
    return submission


# ---------------------------------------------------------------- suspension and availability
def partner_suspend(*, partner_id: Any, actor: AbstractBaseUser, suspended: bool = True) -> Partner:
    """Suspend (or reinstate) a partner; a suspension takes back every job not started yet (open
    offers, accepted, en route, arrived: dispatched again), flags a job in progress for staff, and
    disconnects their sockets on every process, all in one transaction.

    The disconnect comes from ``partners.access`` (the profile's save), like any other change of rights;
    the jobs go back through dispatch's receiver of ``partner_withdrawn``.
    """
    if not actor.is_staff:
        raise Forbidden("only staff can suspend partners")
    with transaction.atomic():
        partner = Partner.objects.select_for_update().filter(pk=partner_id).first()
        if partner is None:
            raise NotFound("no such partner")
        partner.is_suspended = suspended
        partner.save(update_fields=["is_suspended"])
        if suspended:
            partner_withdrawn.send(sender=Partner, partner_id=partner.pk, actor=actor)
    return partner


def partner_set_availability(*, partner_id: Any, available: bool) -> bool:
    if not Partner.objects.filter(pk=partner_id, is_suspended=False).update(is_available=available):
        raise Forbidden("This partner is suspended")
    if available:
        partners_dispatchable.send(sender=Partner, partner_ids=[partner_id])
    return available


# ---------------------------------------------------------------- earnings
def earning_store(*, booking: "Booking") -> Earning:
    """The partner's share of a completed booking, stored once; tells no one (the demo seeds use it as is)."""
    share = Decimal(1) - Decimal(settings.PLATFORM_COMMISSION)
    amount = (booking.amount * share).quantize(CENT, rounding=ROUND_HALF_UP)
    earning, _ = Earning.objects.get_or_create(
        booking=booking, defaults={"partner_id": booking.partner_id, "amount": amount, "currency": booking.currency}
    )
    return earning


def earning_record(*, booking: "Booking") -> Earning:
    """Called when a booking completes, inside its transaction."""
    earning = earning_store(booking=booking)
    totals = earnings_totals(partner_id=booking.partner_id)
    emit(
        "earnings:updated",
        events.earnings_updated(earning, **totals),
        namespace=rooms.PARTNER,
        room=rooms.user(booking.partner_id),
    )
    earning_recorded.send(sender=Earning, earning=earning, booking=booking)
    return earning


def earnings_totals(*, partner_id: Any) -> dict[str, Decimal]:
    rows = Earning.objects.filter(partner_id=partner_id)
    start_of_day = start_of_today()
    return {
        "today": rows.filter(created_at__gte=start_of_day).aggregate(s=Sum("amount"))["s"] or Decimal(0),
        "total": rows.aggregate(s=Sum("amount"))["s"] or Decimal(0),
    }


# ---------------------------------------------------------------- presence
def partners_online(*, partner_ids: list[int], online: bool = True) -> None:
    """Mark partners dispatchable for ``PRESENCE_TTL`` seconds (or not at all).

    The rows are locked in primary-key order first, as every writer of many partners' rows does
    (``location_store.partner_locations_store``): a stop's withdrawal and its location flush run
    side by side, a heartbeat beside the periodic flush, and two orders would deadlock."""
    now = timezone.now()
    with transaction.atomic():
        rows = Partner.objects.filter(pk__in=partner_ids).order_by("pk").select_for_update(no_key=True)
        held = list(rows.values_list("pk", "online_until"))
        Partner.objects.filter(pk__in=[pk for pk, _ in held]).update(
            online_until=now + timedelta(seconds=settings.PRESENCE_TTL) if online else None
        )
    arriving = [pk for pk, until in held if until is None or until < now] if online else []
    if arriving:  # not on every heartbeat: only for who comes online
        partners_dispatchable.send(sender=Partner, partner_ids=arriving)
