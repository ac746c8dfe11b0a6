"""Refresh tokens can be revoked (contract 9.2): logout, a password change, deactivation, suspension."""

import pytest
from django.contrib.auth import get_user_model

from partners.accounts import user_deactivate
from partners.services import partner_suspend
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "password123"


def login(api, username: str, password: str = PASSWORD) -> dict:
    r = api.post("/api/auth/token/", {"username": username, "password": password}, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def refresh(api, token: str):
    return api.post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def test_logout_revokes_that_refresh_token_only(api):
    user = UserFactory(username="phone", password=PASSWORD)
    first, second = login(api, user.username), login(api, user.username)
    assert refresh(api, first["refresh"]).status_code == 200
    r = api.post("/api/auth/logout/", {"refresh": first["refresh"]}, format="json")
    assert r.status_code == 204
    revoked = refresh(api, first["refresh"])
    assert revoked.status_code == 401 and revoked.json()["code"] == "TOKEN_INVALID"
    assert refresh(api, second["refresh"]).status_code == 200  # the other device stays signed in
    again = api.post("/api/auth/logout/", {"refresh": first["refresh"]}, format="json")
    assert again.status_code == 401 and again.json()["code"] == "TOKEN_INVALID"
    bad = api.post("/api/auth/logout/", {"refresh": "not-a-token"}, format="json")
    assert bad.status_code == 401 and bad.json()["code"] == "TOKEN_INVALID"
    missing = api.post("/api/auth/logout/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "VALIDATION_ERROR"


def test_a_password_change_revokes_every_refresh_token(api):
    user = UserFactory(username="changer", password=PASSWORD)
    tokens = [login(api, user.username) for _ in range(2)]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[0]['access']}")
    wrong = api.post("/api/auth/password/", {"oldPassword": "nope", "newPassword": "new-pass-123"}, format="json")
    assert wrong.status_code == 400 and wrong.json()["code"] == "VALIDATION_ERROR"
    assert refresh(api, tokens[0]["refresh"]).status_code == 200  # a refused change revokes nothing
    r = api.post("/api/auth/password/", {"oldPassword": PASSWORD, "newPassword": "new-pass-123"}, format="json")
    assert r.status_code == 200
    api.credentials()
    for old in tokens:
        revoked = refresh(api, old["refresh"])
        assert revoked.status_code == 401 and revoked.json()["code"] == "TOKEN_INVALID"
    assert refresh(api, r.json()["refresh"]).status_code == 200  # the pair it handed back works
    assert login(api, user.username, "new-pass-123")["access"]


def test_a_password_set_in_the_shell_or_the_admin_revokes_too(api):
    user = UserFactory(username="shelled", password=PASSWORD)
    token = login(api, user.username)["refresh"]
    user = get_user_model().objects.get(pk=user.pk)
    user.first_name = "Renamed"
    user.save()  # a save that sets no password revokes nothing
    assert refresh(api, token).status_code == 200
    user.set_password("another-pass-1")
    user.save()
    assert refresh(api, token).status_code == 401


def test_a_hasher_upgrade_at_login_revokes_nothing(api, settings):
    user = UserFactory(username="upgraded", password=PASSWORD)  # hashed with the test hasher (MD5)
    token = login(api, user.username)["refresh"]
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    login(api, user.username)  # the login re-hashes the same password with the preferred hasher
    assert get_user_model().objects.get(pk=user.pk).password.startswith("pbkdf2_sha256$")
    assert refresh(api, token).status_code == 200


def test_deactivation_and_suspension_revoke_every_refresh_token(api, staff, partner):
    customer = UserFactory(username="leaving", password=PASSWORD)
    partner.user.set_password(PASSWORD)
    partner.user.save()
    customer_token = login(api, customer.username)["refresh"]
    partner_token = login(api, partner.user.username)["refresh"]
    user_deactivate(user_id=customer.pk, actor=staff)
    partner_suspend(partner_id=partner.pk, actor=staff)
    assert refresh(api, customer_token).status_code == 401
    revoked = refresh(api, partner_token)
    assert revoked.status_code == 401 and revoked.json()["code"] == "TOKEN_INVALID"
    partner_suspend(partner_id=partner.pk, actor=staff, suspended=False)  # reinstating restores nothing
    assert refresh(api, partner_token).status_code == 401
    assert refresh(api, login(api, partner.user.username)["refresh"]).status_code == 200


def test_a_deleted_users_refresh_token_is_refused_not_a_500(api):
    user = UserFactory(username="gone", password=PASSWORD)
    token = login(api, user.username)["refresh"]
    get_user_model().objects.get(pk=user.pk).delete()
    r = refresh(api, token)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"


def test_a_deactivation_in_the_shell_revokes_even_after_reactivation(api):
    """simplejwt refuses an inactive user's refresh by itself; revocation is what keeps the old
    token dead once the account is active again (a mutation spot-check found nothing tested it)."""
    user = UserFactory(username="paused", password=PASSWORD)
    token = login(api, user.username)["refresh"]
    user.is_active = False
    user.save()  # the shell, or the admin's user form: no service involved
    user.is_active = True
    user.save()
    assert refresh(api, token).status_code == 401
    assert refresh(api, login(api, user.username)["refresh"]).status_code == 200


def test_saves_that_take_no_right_away_keep_every_session(api, partner, staff, emitted):
    """A login's ``last_login``, a location flush, a profile edit in the admin (a full save)
    and a reinstatement revoke no refresh token, and only a full save asks the processes to
    recheck; revoking tokens a second time is harmless. (cosmic-ray: each of these mutants
    of ``partners/access.py`` survived the suite before.)"""
    from partners.access import tokens_revoke_all
    from partners.models import Partner

    user = partner.user
    user.set_password(PASSWORD)
    user.save()
    token = login(api, user.username)["refresh"]  # saves last_login
    before = len(emitted.controls("access_changed"))
    Partner.objects.get(pk=partner.pk).save(update_fields=["last_latitude", "last_longitude", "online_until"])
    assert len(emitted.controls("access_changed")) == before  # harmless fields: nobody rechecks
    profile = Partner.objects.get(pk=partner.pk)
    profile.name = "Renamed"
    profile.save()  # what the admin's form does: every field, none of them a right taken away
    assert [c["user_id"] for c in emitted.controls("access_changed")[before:]] == [str(user.pk)]
    assert refresh(api, token).status_code == 200
    partner_suspend(partner_id=partner.pk, actor=staff, suspended=False)  # reinstating a working partner
    assert refresh(api, token).status_code == 200

    live = login(api, user.username)["refresh"]
    assert tokens_revoke_all(user_id=user.pk) == 2
    assert tokens_revoke_all(user_id=user.pk) == 0  # nothing left, and no conflict on the way
    assert refresh(api, live).status_code == 401
