"""The try-it database is never served (contract 10.2), checked as an operator runs things.

``make run`` (DEBUG on) keeps its data in its own file, which the production commands refuse
to open; a production server names any account that opens with a published demo password
in a warning at start.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from config.production import start_warnings
from tests.config.test_production import KEY, get, make_serve
from tests.factories import UserFactory
from tests.live import database_url, free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DEBUG": "0", "SECRET_KEY": KEY, "ALLOWED_HOSTS": "127.0.0.1"}


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    unset = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "JWT_SIGNING_KEY"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, *code.split(" ", 1)] if code.startswith("-m ") else [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_run_keeps_its_own_file_and_the_production_commands_refuse_it():
    where = "from django.conf import settings; print(settings.DATABASES['default']['NAME'])"
    try_it = Path(python(where, DEBUG="1").stdout.strip())
    served = Path(python(where, **PRODUCTION).stdout.strip())
    assert try_it.name == "demo.sqlite3" and served.name == "db.sqlite3"  # without DATABASE_URL
    assert "DEBUG=1" in (ROOT / "Makefile").read_text().split("\nrun:")[1].split("\n\n")[0]  # make run: debug

    for command in ("-m config.production", "import config.asgi", "import config.wsgi"):
        refused = python(command, **PRODUCTION, DATABASE_URL=f"sqlite:///{try_it}")
        assert refused.returncode != 0, command
        assert "ImproperlyConfigured" in refused.stderr and "demo.sqlite3" in refused.stderr, refused.stderr
    assert python("-m config.production", **PRODUCTION, DATABASE_URL=f"sqlite:///{served}").returncode == 0


def demo_password(user, password: str, production: bool = False) -> None:
    # A production server knows only its real hashers (the suite hashes with MD5 for speed).
    if production:
        user.password = PBKDF2PasswordHasher().encode(password, f"salt{user.pk}", iterations=1000)
    else:
        user.set_password(password)
    user.save(update_fields=["password"])


@pytest.mark.django_db
def test_the_start_checks_name_accounts_with_a_published_password():
    demo_password(UserFactory(username="admin", is_staff=True, is_superuser=True), "admin12345")
    demo_password(UserFactory(username="customer1"), "customer12345")
    demo_password(UserFactory(username="customer2"), "changed-since")
    demo_password(UserFactory(username="partner1", is_active=False), "partner12345")  # cannot sign in
    demo_password(UserFactory(username="someone"), "customer12345")  # not a demo login
    [warning] = start_warnings()
    assert "admin, customer1;" in warning
    UserFactory(username="admin").delete()
    UserFactory(username="customer1").delete()
    assert start_warnings() == []


@pytest.mark.django_db(transaction=True)
def test_a_production_server_names_demo_logins_in_a_warning_at_start():
    demo_password(UserFactory(username="admin", is_staff=True, is_superuser=True), "admin12345", production=True)
    demo_password(UserFactory(username="partner2"), "partner12345", production=True)
    demo_password(UserFactory(username="customer3"), "mine-now-123", production=True)
    port = free_port()
    server = make_serve(
        port,
        **PRODUCTION,
        DATABASE_URL=database_url(),
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("published demo password" in line for line in lines):
            assert server.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        while True:  # and it serves meanwhile: a warning, not a refusal
            try:
                if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
    finally:
        stop_group(server)
        reader.join(timeout=5)
    [warning] = [line for line in lines if "published demo password" in line]
    assert "WARNING" in warning and "admin, partner2;" in warning and "customer3" not in warning
