"""Server CPU per client event on the inbound path alone: a frame read, dispatched, handled, acked.

    python bench/inbound.py                          # this tree
    python bench/inbound.py /path/to/a /path/to/b    # two source trees, alternated (A B A B A B)
    python bench/inbound.py --rounds 1 --profile /tmp/inbound   # and py-spy each server meanwhile

Each tree's server is started as production runs it (``run.start_servers``); a few partner
sockets (``--sockets``) send ``location:update`` with an ack, ``--window`` outstanding each, and
nobody tracks the partners' bookings, so each relay goes to an empty room: what the server
spends is the inbound path of an update (uvicorn, Engine.IO, Socket.IO, the namespace's checks,
the handler) and its ack, without the delivery. The figure is the server's CPU time (``/proc``)
over ``--updates`` updates, which other load on the machine disturbs far less than latency or
CPU percentages. Its own PostgreSQL database (``homeservices_inbound``), so it can run beside
``bench/run.py``.
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import run as bench
import websockets

DB = "postgres://postgres@127.0.0.1:5432/homeservices_inbound"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def partner_socket(url: str, token: str, count: int, window: int) -> None:
    async with websockets.connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket") as ws:
        await ws.recv()  # Engine.IO OPEN
        await ws.send("40/partner," + json.dumps({"token": token}))
        while not (answer := await ws.recv()).startswith("40/partner"):
            if answer.startswith("44/partner"):
                raise SystemExit(f"connect refused: {answer}")
        sent = acked = 0
        while acked < count:
            while sent < count and sent - acked < window:
                update = {"latitude": 28.6 + (sent % 1000) / 10000, "longitude": 77.2}
                await ws.send(f"42/partner,{sent}" + json.dumps(["location:update", update]))
                sent += 1
            answer = await ws.recv()
            if answer == "2":
                await ws.send("3")  # Engine.IO pong
            elif answer.startswith("43/partner,"):
                if '"ok":true' not in answer:
                    raise SystemExit(f"refused: {answer}")
                acked += 1


def measure(
    tree: Path, env: dict[str, str], tokens: list[str], updates: int, window: int, profile: Path | None = None
) -> tuple[float, float]:
    """(server CPU µs per update, updates per second) for the server of ``tree``; with ``profile``,
    py-spy's raw profile of the measured part there (``bench/top_frames.py`` summarises it)."""
    [(proc, url)] = bench.start_servers("uvicorn", 1, env, cwd=tree)
    spy = None
    try:

        async def drive(count: int) -> None:
            await asyncio.gather(*(partner_socket(url, token, count // len(tokens), window) for token in tokens))

        asyncio.run(drive(len(tokens) * 250))  # warm: imports, connections, caches
        if profile is not None:
            command = [os.environ.get("PY_SPY", "py-spy"), "record", "--pid", str(proc.pid), "--rate", "250"]
            spy = subprocess.Popen([*command, "--nonblocking", "--format", "raw", "-o", str(profile)])
        before, started = cpu_seconds(proc.pid), os.times().elapsed
        asyncio.run(drive(updates))
        used, wall = cpu_seconds(proc.pid) - before, os.times().elapsed - started
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled
            spy.wait()
        proc.terminate()
        proc.wait()
    return used / updates * 1e6, updates / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", type=Path, default=[bench.ROOT])
    parser.add_argument("--updates", type=int, default=20000)
    parser.add_argument("--sockets", type=int, default=8)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy (PY_SPY, else on PATH) each run into PROFILE-<n>.txt")
    args = parser.parse_args()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", "homeservices_inbound"])
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", "homeservices_inbound"], check=True)
    env = {**bench.production_env(DB), "RATE_LOCATION": "1000000000"}  # the limit is not what is measured
    tokens = [pair["partner_token"] for pair in bench.prepare(env, args.sockets, 0)["pairs"]]
    figures: dict[Path, list[float]] = {tree: [] for tree in args.trees}
    for round_ in range(args.rounds):
        for n, tree in enumerate(args.trees):
            profile = args.profile and args.profile.with_name(f"{args.profile.stem}-{round_}-{n}.txt")
            cost, rate = measure(tree.resolve(), env, tokens, args.updates, args.window, profile)
            figures[tree].append(cost)
            print(f"{tree}: {cost:.1f} µs of server CPU per update ({rate:.0f} updates/s)", flush=True)
    for tree, costs in figures.items():
        print(f"{tree}: " + ", ".join(f"{c:.1f}" for c in costs) + f" µs per update (min {min(costs):.1f})")


if __name__ == "__main__":
    main()
