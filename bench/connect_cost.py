"""Server CPU and memory per authenticated connect, source trees alternated in one run (issue 34).

    DATABASE_URL=postgres://.../homeservices_h5 python bench/connect_cost.py TREE [TREE ...] \\
        [--pairs 150] [--rounds 3] [--redis redis://127.0.0.1:6379/5] [--bare]

Wall-clock ramps are noise on a shared machine; the server's own CPU is not. Each round starts
each tree's server as production runs it (``run.start_servers``), warms it with a few connects,
measures its idle CPU rate, then connects ``--pairs`` partner + customer pairs (100 handshakes in
flight, a plain websocket client: Engine.IO open, namespace CONNECT with the token, its answer),
has every customer ``booking:track`` its booking, waits, and reads RSS. ``answer_ms_p50``: per
namespace, the median wait from a CONNECT sent to its answer (the server's part of a connect's wall
time: the token, the reads, the hooks, queued behind the others in flight). CPU is the sum of the
server's threads' run time (``/proc/<pid>/task/*/schedstat``, ns), minus the idle rate over the
phase. ``--bare``: the anchors' bare python-socketio server (``../shared/anchors``) in the round too.
The database named by ``DATABASE_URL`` is dropped and created again.
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"
ANCHORS_VENV = Path("/tmp/anchors-venv")
IN_FLIGHT = 100


def cpu_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Client:
    """One socket: Engine.IO over a websocket, one namespace."""

    def __init__(self, url: str, namespace: str, token: str) -> None:
        self.url, self.namespace, self.token = url, namespace, token
        self.ws = None
        self.answer_ms = 0.0  # CONNECT sent -> its answer: the server's part of a connect's wall time

    async def connect(self) -> None:
        host = urllib.parse.urlsplit(self.url).netloc
        self.ws = await websockets.connect(
            f"ws://{host}/socket.io/?EIO=4&transport=websocket",
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=120,
        )
        opened = await self.ws.recv()
        assert opened.startswith("0"), opened
        sent = time.monotonic()
        await self.ws.send(f"40{self.namespace}," + json.dumps({"token": self.token}))
        answer = await self._next()
        self.answer_ms = (time.monotonic() - sent) * 1000
        if not answer.startswith(f"40{self.namespace},"):
            raise RuntimeError(f"connect refused: {answer[:200]}")

    async def _next(self) -> str:
        while True:
            message = await self.ws.recv()
            if message == "2":
                await self.ws.send("3")
                continue
            return message

    async def call(self, event: str, payload: object) -> str:
        await self.ws.send(f"42{self.namespace},1" + json.dumps([event, payload]))
        while True:
            message = await self._next()
            if message.startswith(f"43{self.namespace},1"):
                return message

    async def close(self) -> None:
        await self.ws.close()


async def bounded(coros: list) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(coro: object) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


async def measure(
    pid: int, url: str, pairs: list[dict], bare: bool, profile: Path | None = None, snapshots: bool = False
) -> dict:
    partner, customer = ("/partner", "/customer")
    warm = [
        Client(url, ns, p[key])
        for p in pairs[:10]
        for ns, key in ((partner, "partner_token"), (customer, "customer_token"))
    ]
    await bounded([c.connect() for c in warm])
    await bounded([c.close() for c in warm])
    await asyncio.sleep(1.0)
    c0, t0 = cpu_ns(pid), time.monotonic()
    await asyncio.sleep(2.0)
    idle_rate = (cpu_ns(pid) - c0) / (time.monotonic() - t0)  # ns per second

    def phase(before: tuple[int, float]) -> float:
        return (cpu_ns(pid) - before[0]) - idle_rate * (time.monotonic() - before[1])

    clients = []
    for p in pairs:
        clients.append(Client(url, partner, p["partner_token"]))
        clients.append(Client(url, customer, p["customer_token"]))
    if snapshots:  # the server dumps a tracemalloc snapshot on SIGUSR1 (--tracemalloc)
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(3.0)
    rss0 = rss_kib(pid)
    spy = None
    if profile is not None:  # py-spy (PY_SPY, or on the PATH) over the connects only
        spy_cmd = [os.environ.get("PY_SPY", "py-spy"), "record", "--pid", str(pid), "--rate", "500", "--gil"]
        spy = subprocess.Popen(
            [*spy_cmd, "--format", "raw", "--threads", "-o", str(profile)], stdout=subprocess.DEVNULL
        )
        await asyncio.sleep(1.0)
    start = (cpu_ns(pid), time.monotonic())
    await bounded([c.connect() for c in clients])
    ramp_s = time.monotonic() - start[1]
    await asyncio.sleep(1.5)  # what the connects set off: presence's keeper writes within a second
    connect_ns = phase(start)
    answers = {ns: statistics.median(c.answer_ms for c in clients if c.namespace == ns) for ns in (partner, customer)}
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    start = (cpu_ns(pid), time.monotonic())
    customers = clients[1::2]
    await bounded(
        [
            c.call("booking:track", p["booking_id"] if bare else {"bookingId": p["booking_id"]})
            for c, p in zip(customers, pairs, strict=True)
        ]
    )
    track_ns = phase(start)
    await asyncio.sleep(5.0)
    rss1 = rss_kib(pid)
    if snapshots:
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(5.0)
    start = (cpu_ns(pid), time.monotonic())
    await bounded([c.close() for c in clients])
    await asyncio.sleep(1.5)  # what the closes set off: presence's offline write within a second
    close_ns = phase(start)
    n = len(clients)
    return {
        "sockets": n,
        "connect_us": round(connect_ns / n / 1000, 1),
        "track_us": round(track_ns / len(customers) / 1000, 1),
        "close_us": round(close_ns / n / 1000, 1),
        "kib_per_socket": round((rss1 - rss0) / n, 1),
        "ramp_s": round(ramp_s, 2),
        "answer_ms_p50": {ns.strip("/"): round(ms, 1) for ns, ms in answers.items()},
        "idle_cpu_pct": round(idle_rate / 1e7, 2),
    }


def bare_pairs(count: int) -> list[dict]:
    code = (
        "import jwt, json, sys; n = int(sys.argv[1]);"
        "t = lambda i, r: jwt.encode({'user_id': i, 'role': r}, 'bench-secret', algorithm='HS256');"
        "print(json.dumps([{'partner_token': t(f'p{i}', 'partner'), 'customer_token': t(f'c{i}', 'customer'),"
        " 'booking_id': f'b{i}'} for i in range(n)]))"
    )
    out = subprocess.run(
        [str(ANCHORS_VENV / "bin" / "python"), "-c", code, str(count)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def start_bare() -> tuple[subprocess.Popen, str]:
    port = run.free_port()
    cmd = [str(ANCHORS_VENV / "bin" / "uvicorn"), "server_py:app", "--app-dir", str(ANCHORS), "--host", "127.0.0.1",
           "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
           "--backlog", "2048", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ANCHORS, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with run.socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise SystemExit("bare server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--redis", default=None, help="REDIS_URL for the servers (default: none, as the one-process bench)"
    )
    parser.add_argument("--bare", action="store_true")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        help="a directory whose sitecustomize.py has the server dump a tracemalloc snapshot on SIGUSR1 (before the "
        "connects, after the idle wait); first tree, first round",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the connects of the first tree, first round")
    args = parser.parse_args()
    db_url = os.environ["DATABASE_URL"]
    name = urllib.parse.urlsplit(db_url).path.lstrip("/")
    if not db_url.startswith("postgres") or name in ("homeservices", "homeservices_bench"):
        raise SystemExit("DATABASE_URL: a PostgreSQL database of your own (it is dropped)")
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", name], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    env = {**run.production_env(db_url), "RATE_CONNECT": "100000000", "RATE_TRACK": "100000000"}
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    plan = run.prepare(env, args.pairs, 0)
    pairs = plan["pairs"]
    bare = bare_pairs(args.pairs) if args.bare else None
    results: dict[str, list[dict]] = {}
    for round_ in range(args.rounds):
        for tree in args.trees:
            server_env = env
            if args.tracemalloc and round_ == 0 and tree == args.trees[0]:
                server_env = {**env, "PYTHONPATH": str(args.tracemalloc), "H5_TRACEMALLOC": "12"}
            (proc, url), *_ = run.start_servers("uvicorn", 1, server_env, cwd=tree.resolve())
            try:
                first = round_ == 0 and tree == args.trees[0]
                profile = args.profile if first else None
                got = asyncio.run(
                    measure(proc.pid, url, pairs, False, profile, snapshots=first and bool(args.tracemalloc))
                )
            finally:
                stop(proc)
            results.setdefault(str(tree), []).append(got)
            print(f"round {round_ + 1} {tree}: {got}", flush=True)
        if bare is not None:
            proc, url = start_bare()
            try:
                got = asyncio.run(measure(proc.pid, url, bare, True))
            finally:
                stop(proc)
            results.setdefault("bare", []).append(got)
            print(f"round {round_ + 1} bare: {got}", flush=True)
    print("\nmin over rounds:")
    for key, runs in results.items():
        print(
            f"  {key}: "
            + ", ".join(
                f"{k} {min(r[k] for r in runs)}" for k in ("connect_us", "track_us", "close_us", "kib_per_socket")
            )
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"trees": [str(t) for t in args.trees], "out": str(args.out)},
                    "results": results,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
