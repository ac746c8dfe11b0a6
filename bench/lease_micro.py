"""What a rate-limit lease costs in CPU, in one process, against the real Redis.

    python bench/lease_micro.py [TREE] [--users N] [--batch B]

``TREE`` (default: this checkout) is the tree whose ``config.realtime.limits`` is measured, so
two trees can be alternated (A/B). Each user makes one hit, the first of a window whose limit
leases 2 at a time: it asks for the lease it was admitted on, and that one answered, the next
(two leases, one after the other). ``B`` users at a time, then awaited until answered:
``--batch 1`` is a lone lease, as a server at 1,000 updates/s mostly asks for them. Prints CPU µs
per lease (user + system of this process; Redis's own is not counted), after taking away the same
hits with no Redis (the counting alone). docs/performance.md, "Issue 34, eighth pass".
"""

import argparse
import asyncio
import os
import resource
import sys
from pathlib import Path

import uvloop

arguments = argparse.ArgumentParser()
arguments.add_argument("tree", nargs="?", default=str(Path(__file__).resolve().parents[1]))
arguments.add_argument("--users", type=int, default=10_000)
arguments.add_argument("--batch", type=int, default=1)
options = arguments.parse_args()
sys.path.insert(0, str(Path(options.tree).resolve()))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")

import django  # noqa: E402

django.setup()
from django.conf import settings  # noqa: E402

from config.hot_settings import hot  # noqa: E402
from config.realtime.limits import RateLimiter  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(url: str) -> float:
    """CPU µs per lease (``url`` empty: the same hits counted locally, no lease)."""
    settings.REDIS_URL = url
    settings.RATE_LIMITS = {"default": (8, 3600.0)}
    hot.__dict__.clear()  # set directly, not through override_settings: read again
    limiter = RateLimiter()
    base = int.from_bytes(os.urandom(3), "big") << 24
    for warm in range(200):  # the connection opened, the code paths warm
        limiter.hit(base - warm - 1, "default")
        await asyncio.gather(*limiter._tasks)
    started = cpu()
    for first in range(0, options.users, options.batch):
        for user in range(first, first + options.batch):
            limiter.hit(base + user, "default")
        while limiter._tasks:
            await asyncio.gather(*limiter._tasks)
        if not url:
            await asyncio.sleep(0)  # the loop round a lease's answer would take
    return (cpu() - started) / (2 * options.users) * 1e6


def main() -> None:
    url = os.environ["REDIS_URL"]
    alone = uvloop.run(run(""))
    with_redis = uvloop.run(run(url))
    print(f"{options.tree}: {with_redis - alone:.1f} µs per lease (batch {options.batch}; hits alone {alone:.1f})")


if __name__ == "__main__":
    main()
