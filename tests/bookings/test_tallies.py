"""The dashboard's running tallies agree with a recount of the bookings, folded or not."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bookings import services, tallies
from bookings.models import BookingStatus as S
from bookings.models import TallyChange
from dashboard.selectors import dashboard_stats
from tests.factories import PartnerFactory, UserFactory, book

pytestmark = pytest.mark.django_db


def test_every_move_is_counted_and_a_fold_changes_no_figure(customer, other_customer, partner, staff, service):
    first = book(customer, service)
    assert first.status == S.PARTNER_ASSIGNED and first.partner_id == partner.pk
    assert tallies.kept() == tallies.recount()
    services.booking_accept(booking_id=first.pk, partner_user=partner.user)
    for status in (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED):
        services.booking_update_status(booking_id=first.pk, partner_user=partner.user, status=status)
    assert tallies.fold() > 0 and not TallyChange.objects.exists()
    second = book(other_customer, service)
    services.booking_cancel(booking_id=second.pk, actor=staff, reason="test")
    third = book(UserFactory(username="carol"), service)
    services.booking_assign(booking_id=third.pk, partner_id=PartnerFactory(services=[service]).pk, actor=staff)

    assert tallies.kept() == tallies.recount()  # part folded, part not
    stats = dashboard_stats()
    price = float(service.price)
    assert stats["bookings"]["total"] == 3 and stats["bookings"]["today"] == 3 and stats["bookings"]["active"] == 1
    assert stats["bookings"]["byStatus"][S.COMPLETED] == 1 and stats["bookings"]["byStatus"][S.CANCELLED] == 1
    assert stats["bookings"]["byStatus"][S.PARTNER_ASSIGNED] == 1 and stats["bookings"]["byStatus"][S.PENDING] == 0
    assert stats["revenue"] == {"today": price, "total": price, "currency": "INR"}
    tallies.fold()
    assert dashboard_stats()["bookings"] == stats["bookings"] and tallies.kept() == tallies.recount()


def test_the_command_finds_writes_made_behind_the_services_back_and_rebuilds(customer, partner, service):
    booking = book(customer, service)
    type(booking).objects.filter(pk=booking.pk).update(status=S.CANCELLED)  # what no service does
    out = StringIO()
    with pytest.raises(CommandError, match="2 tallies differ"):
        call_command("tallies", stdout=out)
    assert "status:CANCELLED: kept (0, Decimal('0.00')), counted (1, Decimal('0.00'))" in out.getvalue()
    call_command("tallies", "--rebuild", stdout=StringIO())
    assert tallies.drift() == {} and not TallyChange.objects.exists()
    call_command("tallies", stdout=out)
    assert out.getvalue().endswith("every tally matches the bookings\n")


def test_customers_are_counted_through_every_door(staff, service):
    from django.contrib.auth import get_user_model

    from partners.accounts import customer_register, partner_register

    def customers() -> int:
        return tallies.figures().customers

    start = customers()
    alice = customer_register(username="alice2", password="pw-123456789", email="", name="Alice", phone="1")
    partner_register(username="pat2", password="pw-123456789", name="Pat", phone="2", services=[service])
    assert customers() == start + 1  # a partner is not a customer
    alice.is_active = False
    alice.save()
    assert customers() == start
    alice.is_active = True
    alice.save(update_fields=["is_active"])
    alice.save(update_fields=["last_login"])  # a login: not looked at, not counted
    assert customers() == start + 1
    alice.is_staff = True
    alice.save()
    assert customers() == start
    get_user_model().objects.create(username="carl")  # the admin's user form, a shell
    get_user_model().objects.get(username="carl").delete()
    PartnerFactory(user=get_user_model().objects.create(username="dee"))  # a profile for an existing user
    assert customers() == start and tallies.drift() == {}
