"""Django's password validators on every door that sets a password (contract 10.1), and a
deeply nested JSON body refused with the contract's error and one log line, no traceback."""

import json
import logging

import pytest
from django.contrib.auth import get_user_model

from config.parsers import MAX_JSON_DEPTH
from tests.factories import UserFactory

WEAK = ("password123", "12345678", "short")


@pytest.mark.django_db
@pytest.mark.parametrize("password", WEAK)
def test_a_customer_cannot_sign_up_with_a_weak_password(api, password):
    r = api.post("/api/auth/register/", {"username": "weakling", "password": password, "name": "W"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR" and "password" in r.json()["details"]
    assert not get_user_model().objects.filter(username="weakling").exists()


@pytest.mark.django_db
def test_a_password_like_the_username_is_refused(api):
    r = api.post("/api/auth/register/", {"username": "marigold77", "password": "marigold77!", "name": "M"})
    assert r.status_code == 400 and "password" in r.json()["details"]


@pytest.mark.django_db
def test_a_partner_cannot_sign_up_with_a_weak_password(api, service):
    body = {"username": "weakpartner", "password": "password123", "name": "P", "phone": "1", "services": [service.pk]}
    r = api.post("/api/partners/register/", body)
    assert r.status_code == 400 and "password" in r.json()["details"]


@pytest.mark.django_db
def test_a_password_change_to_a_weak_password_is_refused(api):
    user = UserFactory()
    api.force_authenticate(user)
    r = api.post("/api/auth/password/", {"oldPassword": "password123", "newPassword": "12345678"})
    assert r.status_code == 400 and "newPassword" in r.json()["details"]
    user.refresh_from_db()
    assert user.check_password("password123")


@pytest.mark.django_db
def test_the_admin_cannot_set_a_weak_password(client):
    admin = UserFactory(username="chief", is_staff=True, is_superuser=True)
    user = UserFactory(username="someone")
    client.force_login(admin)
    form = {"password1": "password123", "password2": "password123", "usable_password": "true"}
    r = client.post(f"/admin/auth/user/{user.pk}/password/", form)
    assert r.status_code == 200  # the form again, with the validators' errors
    assert b"This password is too common" in r.content
    user.refresh_from_db()
    assert user.check_password("password123") and user.password.startswith(("md5$", "pbkdf2"))
    strong = {"password1": "tangerine-kettle-42", "password2": "tangerine-kettle-42", "usable_password": "true"}
    assert client.post(f"/admin/auth/user/{user.pk}/password/", strong).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200_000])
def test_deeply_nested_json_is_a_400_with_one_log_line_and_no_traceback(api, caplog, depth):
    caplog.set_level(logging.INFO)
    body = "[" * depth + "]" * depth
    r = api.post("/api/auth/token/", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json() == {"code": "VALIDATION_ERROR", "message": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"}
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    said = [record.getMessage() for record in caplog.records if record.name == "config.parsers"]
    assert said == [f"refused a JSON body nested deeper than {MAX_JSON_DEPTH} levels: POST /api/auth/token/"]


@pytest.mark.django_db
def test_json_nested_as_deep_as_allowed_is_read(api):
    nested = {
        "username": "x",
        "password": "y",
        "extra": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)),
    }
    assert api.post("/api/auth/token/", nested, format="json").status_code == 401
