"""How a setting is read from the environment, and the two values every other module needs.

Every number goes through ``env_number`` or ``env_integer`` (tests/config/test_settings.py
scans this package for a bare ``int()`` or ``float()`` of the environment): a value out of its
range stops the process at start, naming the variable.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# The repository's root (this file is config/settings/environment.py).
BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_number(name: str, default: str, low: float, high: float) -> float:
    """A number from the environment, refused at start (naming it) unless in [low, high]: a zero, a
    negative or a junk value would loop without a pause, wipe what it bounds, or fail at run time."""
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN and the infinities fail too
        raise ImproperlyConfigured(f"{name} must be a number from {low:g} to {high:g}, not {raw!r}")
    return value


def env_integer(name: str, default: str, low: float, high: float) -> int:
    """A whole number from the environment, bounded as ``env_number`` (a count, a size, a limit)."""
    value = env_number(name, default, low, high)
    if value != int(value):
        raise ImproperlyConfigured(f"{name} must be a whole number, not {os.environ.get(name, default)!r}")
    return int(value)


# Off unless asked for: the safe value is the default. The try-it command (make run) and the
# tests turn it on; the production commands (make serve, make cluster) force it off, and then
# the secrets and hosts must be set (see config/settings/production_checks.py).
DEBUG = env_bool("DEBUG", False)
