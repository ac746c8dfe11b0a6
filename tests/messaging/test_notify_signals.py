"""Notifications are created by messaging listening to bookings' signals, sent inside the
move's transaction: what a move that does not commit leaves (nothing stored, nothing
pushed), and what a receiver that raises does to the move (the move does not happen).

The customer listens on a real socket of the live server; the proof that a notification was
never pushed is that the first one the socket receives is a later one (one user room, in order).
"""

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.db import transaction

from bookings.models import Booking
from bookings.models import BookingStatus as S
from bookings.services import booking_accept
from bookings.signals import booking_status_changed
from config import rooms
from messaging.models import Notification
from messaging.notify import notification_create
from tests.factories import BookingFactory
from tests.live import Client, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


class AbandonedError(Exception):
    """The caller's transaction fails after the move's signal was sent."""


def first_notification_after_a_marker(url: str, customer, move) -> list[str]:
    """Run ``move`` (sync) with the customer connected, then push a marker; the titles of the
    notifications the customer's socket got, up to the marker."""

    async def scenario() -> list[str]:
        client = await Client(url, rooms.CUSTOMER).connect(token_for(customer))
        try:
            await sync_to_async(move)()
            await sync_to_async(notification_create)(user_id=customer.pk, type="promo", title="marker")
            await client.wait_for("notification:new", where=lambda p: p["title"] == "marker")
            titles = [p["title"] for p in client.events["notification:new"]]
            return titles[: titles.index("marker") + 1]
        finally:
            await client.close()

    return run(scenario())


def test_a_move_rolled_back_after_its_signal_stores_and_pushes_no_notification(live_server_url, customer, partner):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)

    def accept_then_fail() -> None:
        with pytest.raises(AbandonedError), transaction.atomic():
            booking_accept(booking_id=booking.pk, partner_user=partner.user)
            assert Notification.objects.filter(user=customer, type="booking_accepted").exists()  # the receiver ran
            raise AbandonedError

    assert first_notification_after_a_marker(live_server_url, customer, accept_then_fail) == ["marker"]
    assert not Notification.objects.filter(user=customer, type="booking_accepted").exists()
    assert Booking.objects.get(pk=booking.pk).status == S.PARTNER_ASSIGNED


def test_a_receiver_that_raises_undoes_the_whole_move(live_server_url, customer, partner):
    """``Signal.send``, not ``send_robust``: a failing receiver fails the move, whole (the
    booking's status, its history, the notifications), rather than a move announced to nobody."""
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)

    def broken(sender, **kwargs) -> None:
        raise RuntimeError("a receiver failed")

    def accept_with_a_broken_receiver() -> None:
        booking_status_changed.connect(broken, dispatch_uid="tests.broken")
        try:
            with pytest.raises(RuntimeError):
                booking_accept(booking_id=booking.pk, partner_user=partner.user)
        finally:
            booking_status_changed.disconnect(dispatch_uid="tests.broken")

    assert first_notification_after_a_marker(live_server_url, customer, accept_with_a_broken_receiver) == ["marker"]
    assert not Notification.objects.filter(user=customer, type="booking_accepted").exists()
    stored = Booking.objects.get(pk=booking.pk)
    assert stored.status == S.PARTNER_ASSIGNED and not stored.history.filter(to_status=S.PARTNER_ACCEPTED).exists()
    # and the move works once the receiver is gone
    booking_accept(booking_id=booking.pk, partner_user=partner.user)
    assert Notification.objects.filter(user=customer, type="booking_accepted").count() == 1
