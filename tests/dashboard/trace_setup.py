"""A job moved through the real services, its history then placed at known times, with fixes
around it: before acceptance, along the way, after the end (what the trace must leave out)."""

from datetime import datetime, timedelta

from django.utils import timezone

from bookings import services
from bookings.models import BookingStatus as S
from bookings.models import BookingStatusChange
from messaging.services import message_send
from partners.models import LocationFix
from tests.factories import BookingFactory

START = (28.6000, 77.2000)
STEP = 0.0005  # about 55 m north-east per fix


def job(customer, partner, service, *, finish: bool = True, start: datetime | None = None):
    """A job (accepted, en route, arrived, in progress, then completed unless ``finish`` is off)
    with two messages and fixes every 10 s; returns (booking, {status: when}, fixes in the window)."""
    start = start or timezone.now() - timedelta(hours=2)
    booking = BookingFactory(
        customer=customer, service=service, partner=partner, status=S.PARTNER_ASSIGNED, dispatch_state="offered"
    )
    BookingStatusChange.objects.create(
        booking=booking, from_status="PENDING", to_status=S.PARTNER_ASSIGNED, role="dispatch", partner=partner
    )
    services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    message_send(sender=customer, recipient_id=partner.pk, body="Gate code is 4321", booking_id=booking.pk)
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
    message_send(sender=partner.user, recipient_id=customer.pk, body="On my way, 10 minutes", booking_id=booking.pk)
    for status in (S.PARTNER_ARRIVED, S.IN_PROGRESS) + ((S.COMPLETED,) if finish else ()):
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=status)
    # the history at known times: assigned at 0, accepted at 1 min, then every 5 minutes
    offsets = {S.PARTNER_ASSIGNED: 0, S.PARTNER_ACCEPTED: 1, S.PARTNER_EN_ROUTE: 2, S.PARTNER_ARRIVED: 12}
    offsets |= {S.IN_PROGRESS: 13, S.COMPLETED: 20}
    when = {}
    for change in BookingStatusChange.objects.filter(booking=booking):
        when[change.to_status] = start + timedelta(minutes=offsets[change.to_status])
        BookingStatusChange.objects.filter(pk=change.pk).update(created_at=when[change.to_status])
    messages = list(booking.messages.order_by("id"))
    for minute, message in zip((1.5, 3), messages, strict=True):
        type(message).objects.filter(pk=message.pk).update(created_at=start + timedelta(minutes=minute))
    end = when.get(S.COMPLETED, start + timedelta(minutes=20))
    fixes = []
    moment, i = start, 0
    while moment <= end + timedelta(minutes=2):  # fixes before acceptance and after the end too
        fixes.append(
            LocationFix(
                partner=partner,
                recorded_at=moment,
                latitude=START[0] + i * STEP,
                longitude=START[1] + i * STEP,
            )
        )
        moment += timedelta(seconds=10)
        i += 1
    LocationFix.objects.bulk_create(fixes)
    accepted = when[S.PARTNER_ACCEPTED]
    inside = [f for f in fixes if accepted <= f.recorded_at and (not finish or f.recorded_at <= end)]
    return booking, when, inside
