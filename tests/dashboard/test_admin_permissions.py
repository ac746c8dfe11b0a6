"""Admin actions need the permission of what they change (contract 10.2).

Real admin POSTs through Django's test client, as staff who hold only some permissions: a
view-only staff member sees the lists and changes nothing; one who may change users still
cannot touch a superuser, deactivate themselves, or grant what they do not hold.
"""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from bookings.models import BookingStatus as S
from partners.models import KycStatus, KycSubmission
from tests.factories import BookingFactory, PartnerFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def staff_with(client, *codenames: str, **fields):
    user = StaffFactory(**fields)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def act(client, changelist: str, action: str, *pks, **extra):
    return client.post(
        reverse(f"admin:{changelist}_changelist"), {"action": action, "_selected_action": list(pks), **extra}
    )


def test_a_view_only_staff_member_sees_the_lists_and_changes_nothing(client):
    staff_with(client, "view_user", "view_partner", "view_kycsubmission", "view_booking")
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    customer = UserFactory()
    partner = PartnerFactory(kyc_status=KycStatus.PENDING)
    submission = KycSubmission.objects.create(partner=partner, document_type="PAN", document_number="X")
    booking = BookingFactory(status=S.PENDING)
    other = PartnerFactory()

    act(client, "auth_user", "deactivate", root.pk, customer.pk)
    act(client, "partners_partner", "suspend", partner.pk)
    act(client, "partners_kycsubmission", "approve", submission.pk)
    act(client, "bookings_booking", "assign_partner", booking.pk, apply="1", partner=other.pk)
    act(client, "bookings_booking", "cancel_bookings", booking.pk, apply="1", reason="no")

    root.refresh_from_db(), customer.refresh_from_db(), partner.refresh_from_db(), booking.refresh_from_db()
    assert root.is_active and customer.is_active
    assert not partner.is_suspended and partner.kyc_status == KycStatus.PENDING
    assert booking.status == S.PENDING and booking.partner_id is None
    for changelist in ("auth_user", "partners_partner", "partners_kycsubmission", "bookings_booking"):
        page = client.get(reverse(f"admin:{changelist}_changelist"))
        assert page.status_code == 200
        assert page.context["action_form"] is None, changelist  # no action offered
    assert client.get(reverse("admin:auth_user_change", args=[customer.pk])).status_code == 200  # view only
    client.post(reverse("admin:auth_user_change", args=[customer.pk]), {"username": "renamed"})
    customer.refresh_from_db()
    assert customer.username != "renamed"


def test_only_a_superuser_deactivates_a_superuser_and_nobody_deactivates_themselves(client):
    me = staff_with(client, "view_user", "change_user")
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    customer = UserFactory()

    response = act(client, "auth_user", "deactivate", root.pk, me.pk, customer.pk)
    assert response.status_code == 302
    root.refresh_from_db(), me.refresh_from_db(), customer.refresh_from_db()
    assert root.is_active and me.is_active
    assert not customer.is_active  # the permission is enough for anyone else

    # A superuser may deactivate another superuser, but not themselves either.
    client.force_login(root)
    other_root = UserFactory(username="root2", is_staff=True, is_superuser=True)
    act(client, "auth_user", "deactivate", other_root.pk, root.pk)
    other_root.refresh_from_db(), root.refresh_from_db()
    assert not other_root.is_active and root.is_active


def test_a_staff_member_who_may_change_users_grants_nothing_and_cannot_touch_a_superuser(client):
    me = staff_with(client, "view_user", "change_user", "delete_user")
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    customer = UserFactory(username="plain")

    # The superuser's account: its form, its password and its deletion are refused.
    page = client.get(reverse("admin:auth_user_change", args=[root.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]  # shown, read-only
    assert client.post(reverse("admin:auth_user_change", args=[root.pk]), {"username": "root"}).status_code == 403
    assert client.get(reverse("admin:auth_user_password_change", args=[root.pk])).status_code == 403
    client.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "taken-over-123", "password2": "taken-over-123"},
    )
    client.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"})
    root.refresh_from_db()
    assert not root.check_password("taken-over-123")

    # Their own form and a customer's: the grants are read-only, and their own is_active too.
    for user in (me, customer):
        form = {
            "username": user.username,
            "first_name": "Changed",
            "last_name": "",
            "email": "",
            "is_active": "",  # unticked
            "is_staff": "on",
            "is_superuser": "on",
            "user_permissions": [p.pk for p in Permission.objects.all()],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2030-01-01",
            "date_joined_1": "10:00:00",
        }
        response = client.post(reverse("admin:auth_user_change", args=[user.pk]), form)
        assert response.status_code == 302, response.context["adminform"].form.errors
    me.refresh_from_db(), customer.refresh_from_db()
    assert me.first_name == customer.first_name == "Changed"  # the form works
    assert not me.is_superuser and not customer.is_superuser and not customer.is_staff
    assert me.user_permissions.count() == 3 and customer.user_permissions.count() == 0
    assert me.is_active  # their own tick is read-only
