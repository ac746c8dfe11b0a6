"""The production command is production (contract 9.1), run as an operator would run it.

``make serve`` forces ``DEBUG`` off whatever the environment says, refuses to start without
its secrets, accepts no token signed with a key anyone else could know, and serves its own
pages (the live dashboard) from its own origin on a non-default port.
"""

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from config.settings import _CHECKOUT_KEY_FILE, _PUBLISHED_KEYS
from tests.dashboard.test_cockpit import create_booking
from tests.factories import PartnerFactory, StaffFactory, UserFactory
from tests.live import Client, database_url, free_port, run, staff_page, stop_group

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
KEY = secrets.token_urlsafe(60)


def make_serve(port: int, **env: str) -> subprocess.Popen:
    unset = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "REDIS_URL", "JWT_SIGNING_KEY"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.Popen(
        ["make", "-s", "serve", "HOST=127.0.0.1", f"PORT={port}"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def forged(user_id: int, key: str) -> str:
    now = int(time.time())
    claims = {"token_type": "access", "user_id": user_id, "exp": now + 600, "iat": now, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="HS256")


def test_make_serve_with_nothing_set_refuses_to_start_and_says_what_to_set():
    server = make_serve(free_port())
    output, _ = server.communicate(timeout=120)
    assert server.returncode != 0
    assert "ImproperlyConfigured" in output and "SECRET_KEY" in output and "ALLOWED_HOSTS" in output


@pytest.fixture
def production_server() -> Iterator[str]:
    """``make serve`` with production settings on a non-default port, DEBUG=1 in its environment."""
    port = free_port()
    server = make_serve(
        port,
        DEBUG="1",  # what a forgetful operator's shell may hold: make serve overrides it
        SECRET_KEY=KEY,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url(),
        # TLS ends at the proxy in production (docs/deployment.md); here nothing is in front.
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if get(url + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"make serve did not start: {server.communicate()[0]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_group(server)


def test_make_serve_runs_without_debug_and_accepts_no_token_signed_with_a_known_key(production_server):
    status, body = get(production_server + "/no-such-page")
    assert status == 404 and "URLconf" not in body  # Django's debug page would list the URL patterns
    staff = StaffFactory()

    async def scenario() -> None:
        for key in (*_PUBLISHED_KEYS, _CHECKOUT_KEY_FILE.read_text().strip()):
            client = Client(production_server, "/admin")
            with pytest.raises(Exception):  # noqa: B017 - python-socketio raises its ConnectionError
                await client.connect(forged(staff.pk, key))
            assert client.connect_error["data"]["code"] == "TOKEN_INVALID"
        genuine = await Client(production_server, "/admin").connect(forged(staff.pk, KEY))
        assert genuine.sio.connected  # the same claims with the server's own key: the check can fail
        await genuine.close()

    run(scenario())


def test_the_dashboard_connects_from_its_own_origin_under_production_settings(production_server, service):
    from playwright.sync_api import expect

    staff = StaffFactory(username="prodops")
    # The suite hashes with MD5 for speed; the production server knows only its real hashers.
    staff.password = PBKDF2PasswordHasher().encode("password123", "prodsalt", iterations=1000)
    staff.save(update_fields=["password"])
    customer = UserFactory(username="prodcustomer")
    PartnerFactory(services=[service], last_latitude=28.6, last_longitude=77.2)
    with staff_page(production_server, "prodops", next="/admin/dashboard/") as (page, problems):
        expect(page.locator("#conn")).to_have_text("connected", timeout=10000)
        booking = create_booking(production_server, customer, service, token=forged(customer.pk, KEY))
        expect(page.locator(f"#bookings tr[data-booking='{booking['id']}']")).to_be_visible(timeout=5000)
    assert not problems, problems


def test_test_faults_is_refused_in_production():
    """``TEST_FAULTS`` registers a namespace that raises on purpose: no production server starts with it."""
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TEST_FAULTS")}
    env = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0", "SECRET_KEY": KEY}
    env |= {"ALLOWED_HOSTS": "example.com", "SOCKETIO_CORS_ORIGINS": "https://example.com"}
    check = [sys.executable, "-m", "config.production"]
    safe = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert safe.returncode == 0, safe.stderr
    refused = subprocess.run(
        check, env={**env, "TEST_FAULTS": "1"}, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode != 0 and "TEST_FAULTS" in refused.stderr, refused.stderr
