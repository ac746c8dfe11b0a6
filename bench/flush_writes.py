"""What one location flush's two writes cost this process in CPU (PostgreSQL), through the product's code.

    python bench/flush_writes.py                    # 1,000 partners, 2 trace points each, 30 rounds

Into ``BENCH_DATABASE`` (default ``homeservices_bench``, bench/run.py's: not while it runs) on ``BENCH_DATABASE_URL``
(its partners made again each run): each round writes ``--points`` trace points per partner
(``partners.location_store.location_fixes_store``, a third without accuracy) and one last location per
partner (``partner_locations_store``), newer than the round before so every row is written, and
times each with ``time.process_time`` (the database's own CPU is not in it). Prints the median and
the least of the rounds after the first; compare two trees by running each in turn.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dispatch import load_partners, setup_django


def near(rng: random.Random) -> tuple[float, float]:
    """A position in the city, as a phone reports it (all of a float's digits: their text costs more)."""
    return 12.9 + rng.uniform(-0.1, 0.1), 77.6 + rng.uniform(-0.1, 0.1)


def rounds(partners: int, points: int, count: int) -> tuple[list[float], list[float]]:
    """Process CPU seconds of each round's two writes: (trace points, last locations)."""
    from partners.location_store import location_fixes_store, partner_locations_store
    from partners.models import Partner
    from partners.traces import Fix

    rng = random.Random(1)
    load_partners(partners, rng)
    ids = list(Partner.objects.values_list("pk", flat=True))
    start = datetime.now(UTC) - timedelta(hours=12)
    fixes_cpu, locations_cpu = [], []
    for n in range(count + 1):  # the first round warms up
        at = start + timedelta(seconds=5 * points * n)
        fixes = [
            (pk, Fix(at + timedelta(seconds=5 * k), *near(rng), rng.choice([None, 5.0, 8.0]), 3.0, 90.0))
            for pk in ids
            for k in range(points)
        ]
        locations = {pk: (*near(rng), at) for pk in ids}
        began = time.process_time()
        location_fixes_store(fixes)
        stored = time.process_time()
        partner_locations_store(locations)
        if n:
            fixes_cpu.append(stored - began)
            locations_cpu.append(time.process_time() - stored)
    return fixes_cpu, locations_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2, help="trace points per partner a round")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    setup_django(os.environ.get("BENCH_DATABASE", "homeservices_bench"))
    fixes_cpu, locations_cpu = rounds(args.partners, args.points, args.rounds)
    for name, rows, cpu in (
        ("trace points", args.partners * args.points, fixes_cpu),
        ("last locations", args.partners, locations_cpu),
    ):
        print(
            f"{rows:,} {name}: median {statistics.median(cpu) * 1e3:.1f} ms CPU, "
            f"least {min(cpu) * 1e3:.1f} ms ({min(cpu) / rows * 1e6:.1f} µs a row)"
        )


if __name__ == "__main__":
    main()
