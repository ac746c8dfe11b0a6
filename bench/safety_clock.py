"""What an idle safety sweep costs in CPU, in one process, against the real database.

    DATABASE_URL=postgres://... DEBUG=1 python bench/safety_clock.py [--sweeps N] [--rounds R]

Alternates, round by round, the sweep as it was (a transaction and ``SELECT ... FOR UPDATE SKIP
LOCKED`` every time) and ``messaging.safety.escalate_due`` (an EXISTS on the due index first), with
no alert due; each sweep hands its connection back as the ORM thread does. Prints CPU µs per sweep
(user + system of this process; PostgreSQL's own is not counted): medians and spreads.
docs/performance.md, "Left, each measured".
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()
from django.db import close_old_connections, transaction  # noqa: E402
from django.db.models.functions import Now  # noqa: E402

from messaging import safety  # noqa: E402
from messaging.models import SafetyAlert  # noqa: E402


def locked_sweep() -> int:
    """The sweep before the read first: its transaction and lock, and nothing found."""
    with transaction.atomic():
        due = list(
            SafetyAlert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("raised_by")
            .filter(acknowledged_at=None, next_escalation_at__lte=Now())
            .order_by("next_escalation_at")[: safety.SWEEP_BATCH]
        )
    return len(due)


def cpu_per_sweep(sweep, sweeps: int) -> float:
    start = time.process_time()
    for _ in range(sweeps):
        sweep()
        close_old_connections()
    return (time.process_time() - start) / sweeps * 1e6


def main() -> None:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--sweeps", type=int, default=500)
    arguments.add_argument("--rounds", type=int, default=9)
    options = arguments.parse_args()
    assert locked_sweep() == 0 and safety.escalate_due() == 0, "an alert is due: measure an idle database"
    found: dict[str, list[float]] = {"locked": [], "read first": []}
    for _ in range(options.rounds):
        found["locked"].append(cpu_per_sweep(locked_sweep, options.sweeps))
        found["read first"].append(cpu_per_sweep(safety.escalate_due, options.sweeps))
    for name, values in found.items():
        print(
            f"{name}: median {statistics.median(values):.0f} µs/sweep, "
            f"spread {min(values):.0f}-{max(values):.0f} ({options.rounds} rounds of {options.sweeps})"
        )


if __name__ == "__main__":
    main()
