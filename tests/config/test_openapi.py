"""The OpenAPI schema tells the truth: Schemathesis (``--checks all``) per role finds nothing.

It runs the real CLI against the live server, as a client team would, once as a
customer, a partner and a staff member, each with data of its own to act on.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import BookingFactory, PartnerFactory, StaffFactory, UserFactory
from tests.live import token_for

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")


def schemathesis(url: str, token: str, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/api/schema/",
            "--checks",
            "all",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--no-color",
            "-H",
            f"Authorization: Bearer {token}",
        ],
        capture_output=True,
        text=True,
        timeout=100,  # inside the suite's 120 s per test, so a slow run fails with its own message
        cwd=workdir,  # its cache goes there, not into the project
    )


def users(role: str, service) -> object:
    if role == "customer":
        user = UserFactory(username="schema-customer")
        BookingFactory(customer=user, service=service)
        return user
    if role == "partner":
        partner = PartnerFactory(user__username="schema-partner", services=[service])
        BookingFactory(partner=partner, service=service, status="PARTNER_ASSIGNED")
        return partner.user
    return StaffFactory(username="schema-staff")


@pytest.mark.parametrize("role", ["customer", "partner", "staff"])
def test_schemathesis_finds_no_mismatch(live_server_url, service, role, tmp_path):
    result = schemathesis(live_server_url, token_for(users(role, service)), tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated and int(generated.group(1)) >= 500, report[-3000:]  # it really tested
