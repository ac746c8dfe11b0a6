"""Connection churn: memory of a process that sees sockets come and go all day.

    python bench/run.py --churn 70:300       # 70 rounds of 300 sockets (21,000 connections)

Each round opens SOCKETS official clients at once; each authenticates, sends
``booking:track`` and closes; the server's RSS is read after the round. Run the
same way, in the same run, against three servers: the bare python-socketio anchor
(``shared/anchors/server_py.py``, uvicorn + websockets-sansio, no Django), the
product with ``GC_TUNING=0`` and the product as shipped. Writes a table and
``bench/results/churn.json``.
"""

import json
import os
import subprocess
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import jwt
from run import RESULTS, ROOT, free_port, prepare, start_servers, uvicorn_command

ANCHORS = ROOT.parent / "shared" / "anchors"
ANCHOR_SECRET = "bench-secret"  # shared/anchors/server_py.py


def churn(url: str, pid: int, clients: list[dict], rounds: int, sockets: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        plan_path, out_path = Path(tmp) / "plan.json", Path(tmp) / "out.json"
        plan = {"url": url, "server_pid": pid, "rounds": rounds, "sockets": sockets, "settle_ms": 500}
        plan_path.write_text(json.dumps({**plan, "clients": clients}))
        env = {**os.environ, "NODE_PATH": str(ROOT / "tests" / "js" / "node_modules")}
        subprocess.run(
            ["node", str(ROOT / "bench" / "churn.js"), "--plan", str(plan_path), "--out", str(out_path)],
            env=env,
            timeout=60 + rounds * 60,
            check=True,
        )
        return json.loads(out_path.read_text())


def start_anchor() -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = uvicorn_command("server_py:app", port, ws="websockets-sansio", extra=["--app-dir", str(ANCHORS)])
    proc = subprocess.Popen(cmd, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=2).read()
            return proc, url
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("anchor server did not start") from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_churn(rounds: int, sockets: int, env: dict[str, str]) -> dict:
    if not ANCHORS.exists():
        raise SystemExit(f"the anchors are not at {ANCHORS}")
    plan = prepare(env, sockets, 0)
    product_clients = [{"token": p["customer_token"], "booking_id": p["booking_id"]} for p in plan["pairs"]]
    warnings.filterwarnings("ignore", message="The HMAC key")  # the anchors' own fixed secret
    anchor_clients = [
        {"token": jwt.encode({"user_id": f"c{i}", "role": "customer"}, ANCHOR_SECRET), "booking_id": f"b{i}"}
        for i in range(sockets)
    ]
    results = {}
    proc, url = start_anchor()
    try:
        print("churn: bare python-socketio ...", flush=True)
        results["bare"] = churn(url, proc.pid, anchor_clients, rounds, sockets)
    finally:
        stop(proc)
    for name, gc_tuning in (("product_untuned", "0"), ("product_shipped", "1")):
        # Each round reconnects the same users: past 30 rounds a minute the per-user connect
        # limit (made for a client in a reconnect loop) would refuse them, whatever the memory.
        server_env = {**env, "GC_TUNING": gc_tuning, "RATE_CONNECT": "100000000"}
        ((proc, url),) = start_servers("uvicorn", 1, server_env)
        try:
            print(f"churn: {name} ...", flush=True)
            results[name] = churn(url, proc.pid, product_clients, rounds, sockets)
        finally:
            stop(proc)
    return {"rounds": rounds, "sockets": sockets, "servers": results, "verdict": verdict(results)}


def verdict(results: dict) -> dict:
    """The issue's targets: shipped RSS <= 1.3 x bare at the end, and < 5 % growth over the last 10,000."""
    bare, shipped = results["bare"]["rounds"], results["product_shipped"]["rounds"]
    per_round = shipped[0]["connections"]
    window = max(1, 10_000 // per_round)
    end = shipped[-1]["rss_kib"]
    earlier = shipped[-1 - window]["rss_kib"] if len(shipped) > window else shipped[0]["rss_kib"]
    return {
        "ratio_to_bare": round(end / bare[-1]["rss_kib"], 3),
        "growth_last_10k_pct": round((end - earlier) / earlier * 100, 2),
        "failed": sum(r["failed"] for s in results.values() for r in s["rounds"]),
    }


def table(report: dict) -> str:
    names = {"bare": "bare python-socketio", "product_untuned": "product, GC_TUNING=0", "product_shipped": "product"}
    rounds = report["servers"]["bare"]["rounds"]
    marks = sorted({max(1, len(rounds) // 7), max(1, len(rounds) * 4 // 7), len(rounds)})
    head = " | ".join(f"RSS after {rounds[m - 1]['connections']:,}" for m in marks)
    lines = [f"| server | {head} |", "|---" * (len(marks) + 1) + "|"]
    for key, label in names.items():
        series = report["servers"][key]["rounds"]
        cells = " | ".join(f"{series[m - 1]['rss_kib'] / 1024:.0f} MB" for m in marks)
        lines.append(f"| {label} | {cells} |")
    v = report["verdict"]
    lines.append(
        f"\nproduct / bare at the end: {v['ratio_to_bare']} x; growth over the last 10,000: "
        f"{v['growth_last_10k_pct']} %; failed sessions: {v['failed']}"
    )
    return "\n".join(lines)


def main(spec: str, env: dict[str, str]) -> None:
    rounds, sockets = (int(x) for x in spec.split(":"))
    report = run_churn(rounds, sockets, env)
    out = RESULTS / "churn.json"
    out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"\nwritten: {out}")
