"""Safety alerts (contract 10.3) against a hostile raiser and a careless operator, in one process."""

import os
import subprocess
import sys

import pytest


def settings_of(**env: str) -> subprocess.CompletedProcess:
    """``config.settings`` imported in a process of its own under ``env``, printing the safety clock's two."""
    code = "from config import settings as s; print(s.SAFETY_ESCALATE_SECONDS, s.SAFETY_SWEEP_INTERVAL)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAFETY_") and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, "DEBUG": "1", **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name,value",
    [
        ("SAFETY_ESCALATE_SECONDS", "0"),  # every sweep would send every open alert again
        ("SAFETY_ESCALATE_SECONDS", "-5"),
        ("SAFETY_ESCALATE_SECONDS", "inf"),  # every raise would fail (OverflowError): no SOS stored at all
        ("SAFETY_ESCALATE_SECONDS", "1e12"),  # past year 9999: the same
        ("SAFETY_ESCALATE_SECONDS", "nan"),
        ("SAFETY_ESCALATE_SECONDS", "soon"),
        ("SAFETY_SWEEP_INTERVAL", "0"),  # a loop of queries without a pause, on every process
        ("SAFETY_SWEEP_INTERVAL", "-1"),
        ("SAFETY_SWEEP_INTERVAL", "nan"),
        ("SAFETY_SWEEP_INTERVAL", ""),
    ],
)
def test_the_safety_clock_refuses_settings_that_would_flood_or_break_it(name, value):
    result = settings_of(**{name: value})
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr[-1500:]


def test_the_safety_clock_takes_sane_settings():
    result = settings_of(SAFETY_ESCALATE_SECONDS="30", SAFETY_SWEEP_INTERVAL="0.5")
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split() == ["30.0", "0.5"]
