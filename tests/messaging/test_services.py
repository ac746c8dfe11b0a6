"""Who may talk to whom (contract 5.5), decided by one rule."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import BookingStatus as S
from config.errors import Forbidden, NotFound, ValidationError
from messaging.models import Message
from messaging.services import conversation_check, message_send
from tests.factories import BookingFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "status,completed_ago,allowed",
    [
        (S.PARTNER_ASSIGNED, None, False),
        (S.PARTNER_ACCEPTED, None, True),
        (S.IN_PROGRESS, None, True),
        (S.COMPLETED, timedelta(hours=2), True),
        (S.COMPLETED, timedelta(days=2), False),
        (S.CANCELLED, None, False),
    ],
)
def test_a_booking_links_customer_and_partner(customer, partner, status, completed_ago, allowed):
    completed_at = timezone.now() - completed_ago if completed_ago else None
    booking = BookingFactory(customer=customer, partner=partner, status=status, completed_at=completed_at)
    for sender, recipient in ((customer, partner.user), (partner.user, customer)):
        if allowed:
            assert (
                conversation_check(sender=sender, recipient_id=recipient.pk, booking_id=booking.pk).pk == recipient.pk
            )
        else:
            with pytest.raises(Forbidden):
                conversation_check(sender=sender, recipient_id=recipient.pk)


def test_booking_id_must_be_the_linking_one(customer, partner, other_customer):
    BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    other = BookingFactory(customer=other_customer, partner=partner, status=S.PARTNER_ACCEPTED)
    with pytest.raises(Forbidden):
        conversation_check(sender=customer, recipient_id=partner.pk, booking_id=other.pk)


def test_staff_and_replies_to_staff(customer, staff):
    assert conversation_check(sender=staff, recipient_id=customer.pk).pk == customer.pk
    with pytest.raises(Forbidden):  # only in reply (contract 10.2)
        conversation_check(sender=customer, recipient_id=staff.pk)
    message_send(sender=staff, recipient_id=customer.pk, body="Ops here")
    assert conversation_check(sender=customer, recipient_id=staff.pk).is_staff


def test_unknown_inactive_and_unlinked_get_one_answer(customer, other_customer, staff):
    """No user enumeration: a missing user and one you may not message look the same."""
    inactive = UserFactory(is_active=False)
    answers = set()
    for bad in (999999, inactive.pk, other_customer.pk):
        with pytest.raises(Forbidden) as refused:
            conversation_check(sender=customer, recipient_id=bad)
        answers.add(refused.value.message)
    assert answers == {"you cannot message this person"}
    with pytest.raises(Forbidden):
        conversation_check(sender=staff, recipient_id=999999)


def test_unknown_booking_is_not_found_and_stores_nothing(staff, customer):
    """Staff may message anyone, so only the booking check stands between a bad id and the insert."""
    with pytest.raises(NotFound):
        message_send(sender=staff, recipient_id=customer.pk, body="hi", booking_id=str(uuid.uuid4()))
    with pytest.raises(NotFound):
        message_send(
            sender=staff, recipient_id=customer.pk, body="hi", booking_id=str(uuid.uuid4()), client_message_id="c1"
        )
    assert not Message.objects.exists()


def test_a_resend_without_client_message_id_is_a_new_message(staff, customer):
    first, _ = message_send(sender=staff, recipient_id=customer.pk, body="one")
    second, created = message_send(sender=staff, recipient_id=customer.pk, body="two")
    assert created and second.pk != first.pk and second.body == "two"


def test_self_and_malformed_ids(customer):
    for bad in ("abc", None, customer.pk, True, "²", "99999999999999999999", -1):
        with pytest.raises(ValidationError):
            conversation_check(sender=customer, recipient_id=bad)


def test_client_message_id_is_stored_once(customer, partner):
    BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    first, created = message_send(sender=customer, recipient_id=partner.pk, body="hi", client_message_id="x1")
    again, created_again = message_send(sender=customer, recipient_id=partner.pk, body="hi", client_message_id="x1")
    assert created and not created_again and again.pk == first.pk


@pytest.mark.parametrize("value", ["9223372036854775806", "9223372036854775807", "0", "0009"])
def test_a_schema_valid_id_that_names_nobody_is_an_empty_list_not_a_validation_error(api_as, customer, value):
    r = api_as(customer).get("/api/messages/", {"with": value})
    assert r.status_code == 200 and r.json()["results"] == []


@pytest.mark.parametrize("value", ["9223372036854775808", "-1", "1.5", "abc"])
def test_an_id_outside_the_schema_is_a_validation_error(api_as, customer, value):
    r = api_as(customer).get("/api/messages/", {"with": value})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"


def test_every_booking_status_says_who_is_notified():
    """``messaging.notify.ON_STATUS`` decides, for each status, who gets a notification: a new
    status is a decision to write down, not a silent branch missing."""
    from messaging.notify import ON_STATUS

    assert set(ON_STATUS) == set(S)


def test_a_refused_message_stores_nothing_and_says_why(customer, partner, other_customer, staff):
    """The INSERT stores only what the rule allows; when it stores nothing, the answer is the rule's."""
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    with pytest.raises(Forbidden):  # no booking links them
        message_send(sender=other_customer, recipient_id=partner.pk, body="hi", client_message_id="r1")
    with pytest.raises(Forbidden):  # staff are written to only in reply
        message_send(sender=customer, recipient_id=staff.pk, body="hi")
    with pytest.raises(Forbidden):  # staff write to anyone who exists
        message_send(sender=staff, recipient_id=999999, body="hi")
    with pytest.raises(ValidationError):
        message_send(sender=staff, recipient_id=staff.pk, body="hi")
    with pytest.raises(Forbidden):  # the booking given must be the linking one
        message_send(sender=other_customer, recipient_id=partner.pk, body="hi", booking_id=booking.pk)
    assert not Message.objects.exists()
    message, created = message_send(sender=customer, recipient_id=partner.pk, body="hi", booking_id=booking.pk)
    stored = Message.objects.get()
    assert created and (stored.pk, stored.recipient_id, stored.booking_id) == (message.pk, partner.pk, booking.pk)
    assert stored.created_at == message.created_at


def test_a_resend_is_answered_even_after_the_right_to_write_is_gone(customer, partner):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    first, _ = message_send(sender=customer, recipient_id=partner.pk, body="hi", client_message_id="k1")
    booking.status = S.CANCELLED
    booking.save(update_fields=["status"])
    again, created = message_send(sender=customer, recipient_id=partner.pk, body="hi", client_message_id="k1")
    assert not created and again.pk == first.pk
    with pytest.raises(Forbidden):
        message_send(sender=customer, recipient_id=partner.pk, body="hi", client_message_id="k2")


def test_an_offline_recipient_gets_the_message_and_its_notification_together(customer, partner, monkeypatch):
    """Offline: the message and its notification in one transaction; a failed notification stores neither."""
    from messaging import services
    from messaging.models import Notification

    BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    message, _ = message_send(sender=customer, recipient_id=partner.pk, body="hi", recipient_online=False)
    note = Notification.objects.get()
    assert (note.user_id, note.data["messageId"]) == (partner.pk, str(message.pk))

    def broken(**kwargs):
        raise RuntimeError("the notification failed")

    monkeypatch.setattr(services, "notification_create", broken)
    with pytest.raises(RuntimeError):
        message_send(sender=customer, recipient_id=partner.pk, body="lost", recipient_online=False)
    assert list(Message.objects.values_list("body", flat=True)) == ["hi"]
