"""Django admin: pages render for staff and the actions go through the services."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from bookings.models import BookingStatus as S
from messaging.models import Notification
from partners.models import KycStatus, KycSubmission, Partner
from tests.factories import BookingFactory, PartnerFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    user = StaffFactory(username="root", is_superuser=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model",
    [
        "bookings/booking",
        "bookings/service",
        "bookings/bookingstatuschange",
        "partners/partner",
        "partners/kycsubmission",
        "partners/earning",
        "messaging/message",
        "messaging/notification",
        "auth/user",
    ],
)
def test_changelists_render(admin_client_, model):
    BookingFactory()
    assert admin_client_.get(f"/admin/{model}/").status_code == 200


def test_cancel_action(admin_client_, partner, emitted):
    booking = BookingFactory(partner=partner, status=S.PARTNER_ACCEPTED)
    done = BookingFactory(status=S.COMPLETED)
    url = reverse("admin:bookings_booking_changelist")
    r = admin_client_.post(
        url,
        {"action": "cancel_bookings", "_selected_action": [booking.pk, done.pk], "apply": "1", "reason": "ops says no"},
        follow=True,
    )
    assert r.status_code == 200
    booking.refresh_from_db()
    done.refresh_from_db()
    assert booking.status == S.CANCELLED and booking.cancel_reason == "ops says no"
    assert done.status == S.COMPLETED
    assert emitted.named("booking:cancelled")[0]["data"][0]["cancelledBy"] == "staff"
    assert any("cannot go from COMPLETED" in str(m) for m in r.context["messages"])


def test_assign_action(admin_client_):
    booking = BookingFactory(status=S.PENDING)
    partner = PartnerFactory()
    url = reverse("admin:bookings_booking_changelist")
    form = admin_client_.post(url, {"action": "assign_partner", "_selected_action": [booking.pk]})
    assert form.status_code == 200 and b"Assign a partner" in form.content
    admin_client_.post(
        url, {"action": "assign_partner", "_selected_action": [booking.pk], "apply": "1", "partner": partner.pk}
    )
    booking.refresh_from_db()
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == partner.pk


def test_kyc_and_suspend_actions(admin_client_, emitted):
    partner = PartnerFactory(kyc_status=KycStatus.PENDING)
    sub = KycSubmission.objects.create(partner=partner, document_type="PAN", document_number="X")
    admin_client_.post(
        reverse("admin:partners_kycsubmission_changelist"), {"action": "approve", "_selected_action": [sub.pk]}
    )
    partner.refresh_from_db()
    assert partner.kyc_status == KycStatus.APPROVED
    admin_client_.post(
        reverse("admin:partners_partner_changelist"), {"action": "suspend", "_selected_action": [partner.pk]}
    )
    partner.refresh_from_db()
    assert partner.is_suspended
    rechecks = emitted.controls("access_changed")
    assert str(partner.pk) in {m["user_id"] for m in rechecks}


def test_the_admin_keeps_the_audit_trail(admin_client_, partner, emitted):
    """Bookings, their history, earnings and messages cannot be deleted or edited behind the services."""
    from bookings.models import Booking, BookingStatusChange
    from messaging.models import Message
    from partners.models import Earning
    from tests.factories import UserFactory

    booking = BookingFactory(partner=partner, status=S.COMPLETED)
    change = BookingStatusChange.objects.create(booking=booking, from_status="IN_PROGRESS", to_status="COMPLETED")
    earning = Earning.objects.create(partner=partner, booking=booking, amount=10)
    message = Message.objects.create(sender=partner.user, recipient=booking.customer, body="hi")
    for model, obj in (
        ("bookings/booking", booking),
        ("bookings/bookingstatuschange", change),
        ("partners/earning", earning),
        ("messaging/message", message),
    ):
        assert admin_client_.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client_.post(
        "/admin/bookings/booking/", {"action": "delete_selected", "_selected_action": [booking.pk], "post": "yes"}
    ).status_code in (200, 302)
    assert Booking.objects.filter(pk=booking.pk).exists()
    # The booking's page shows it (with its history), and posting to it writes nothing.
    page = admin_client_.get(f"/admin/bookings/booking/{booking.pk}/change/")
    assert page.status_code == 200 and booking.number in page.content.decode()
    admin_client_.post(f"/admin/bookings/booking/{booking.pk}/change/", {"amount": "1.00", "address": "elsewhere"})
    booking.refresh_from_db()
    assert booking.amount != 1 and booking.address != "elsewhere"
    # "Add booking" goes through booking_create: a number, a history row, the event.
    customer = UserFactory(username="walkin")
    response = admin_client_.post(
        "/admin/bookings/booking/add/",
        {
            "customer": customer.pk,
            "service": booking.service_id,
            "scheduled_at_0": "2030-01-01",
            "scheduled_at_1": "10:00:00",
            "address": "1 Road",
            "latitude": "28.6",
            "longitude": "77.2",
            "notes": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Booking.objects.get(customer=customer)
    assert created.number.startswith("BK") and len(created.number) == 8
    assert created.history.filter(to_status=S.PENDING).exists()
    assert [m["data"][0]["id"] for m in emitted.named("booking:created")] == [str(created.pk)]


def test_api_docs_work_offline(client):
    page = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in page and "unpkg" not in page
    assert "/static/drf_spectacular_sidecar/" in page


def test_the_partners_user_rating_and_availability_are_not_edited_here(admin_client_, partner):
    other = StaffFactory(username="someone-else")
    url = reverse("admin:partners_partner_change", args=[partner.pk])
    page = admin_client_.get(url)
    assert page.status_code == 200 and 'name="user"' not in page.content.decode()
    form = {"name": "Renamed", "phone": partner.phone, "services": [s.pk for s in partner.services.all()]}
    available = partner.is_available
    r = admin_client_.post(url, {**form, "user": other.pk, "rating": "1.0", "is_available": "" if available else "on"})
    assert r.status_code == 302, r.content[:2000]
    partner.refresh_from_db()
    assert partner.name == "Renamed"  # the editable fields still are
    assert partner.user_id == partner.pk and partner.rating != 1 and partner.is_available == available
    assert not Partner.objects.filter(user=other).exists()  # no profile was cloned onto another user


def test_kyc_decisions_and_notifications_cannot_be_deleted(admin_client_, partner):
    submission = KycSubmission.objects.create(partner=partner, document_type="PAN", document_number="X")
    notification = Notification.objects.create(user=partner.user, type="promo", title="t", body="", data={})
    for name, pk in (("partners_kycsubmission", submission.pk), ("messaging_notification", notification.pk)):
        assert admin_client_.get(reverse(f"admin:{name}_delete", args=[pk])).status_code == 403
    assert KycSubmission.objects.filter(pk=submission.pk).exists() and Notification.objects.filter(pk=notification.pk)


def test_every_staff_action_leaves_an_entry_in_the_objects_history(admin_client_, partner):
    url = reverse("admin:partners_partner_changelist")
    r = admin_client_.post(url, {"action": "suspend", "_selected_action": [partner.pk]}, follow=True)
    assert r.status_code == 200
    [entry] = LogEntry.objects.filter(object_id=str(partner.pk), content_type__model="partner")
    assert entry.user.username == "root" and "Suspended" in entry.get_change_message()
    history = admin_client_.get(reverse("admin:partners_partner_history", args=[partner.pk]))
    assert "Suspended" in history.content.decode()


def test_a_database_error_in_an_action_is_a_message_not_a_500(admin_client_, partner, monkeypatch):
    from django.db import OperationalError

    from partners import services

    def deadlocked(**kwargs):
        raise OperationalError("deadlock detected")

    monkeypatch.setattr(services, "partner_suspend", deadlocked)
    url = reverse("admin:partners_partner_changelist")
    r = admin_client_.post(url, {"action": "suspend", "_selected_action": [partner.pk]}, follow=True)
    assert r.status_code == 200
    assert any("database refused" in str(m) for m in r.context["messages"])
    assert not LogEntry.objects.filter(object_id=str(partner.pk)).exists()
