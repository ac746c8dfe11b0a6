"""The anchors beside the product, in the same run: what a team would pick instead.

Node socket.io 4.8 and bare python-socketio (uvicorn + websockets-sansio, no Django) from
``../shared/anchors``, installed as its README says (``/tmp/anchors-node``,
``/tmp/anchors-venv``), under the anchors' own load generator (the product's
``bench/loadgen.js`` is adapted from it: same CPU and latency accounting). ``bench/run.py``
runs them right after the product, with the same pairs and steps, and prints the
product's ratio to each: the machine's noise then weighs on both sides of the ratio.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "anchors"
NODE_MODULES = Path("/tmp/anchors-node/node_modules")
VENV = Path("/tmp/anchors-venv")
SERVERS = {"Node socket.io 4.8": "node", "bare python-socketio": "uvicorn_sansio"}


def installed() -> bool:
    return (
        (ANCHORS / "run_bench.py").exists()
        and (NODE_MODULES / "socket.io").is_dir()
        and (VENV / "bin" / "uvicorn").exists()
    )


def run(pairs: int, steps: str) -> dict[str, dict]:
    """Each anchor's loadgen result (ramp, idle, steps), by label."""
    os.environ.setdefault("ANCHORS_RESULTS", tempfile.mkdtemp(prefix="anchors-"))
    sys.path.insert(0, str(ANCHORS))
    import run_bench  # the anchors' own orchestration: one server at a time, stopped by its PID

    return {
        label: run_bench.run_one("beside-product", name, steps, pairs=pairs, stop_on_fail=False)
        for label, name in SERVERS.items()
    }


def figures(result: dict) -> dict[str, float]:
    """The figures compared, from a loadgen result (the product's or an anchor's)."""
    idle = result.get("idle") or {}
    found = {
        "connect ramp, s": result["ramp"]["ramp_s"],
        "KiB per idle socket": idle.get("rss_per_socket_kib") or idle.get("rss_per_conn_kib"),
    }
    for step in result["steps"]:
        delivered_per_s = step["offered_rate"] * step["delivered_ratio"]
        cpu = step["server_cpu_pct"] / 100 * 1e6 / delivered_per_s if delivered_per_s else None
        found[f"CPU µs per update at {step['offered_rate']}/s"] = cpu
        found[f"p99 ms at {step['offered_rate']}/s"] = step["lat_ms_p99"]
    return found


def ratios(product: dict, anchors: dict[str, dict]) -> str:
    """The product's figures beside each anchor's, and their ratio (product / anchor)."""
    theirs = {label: figures(result) for label, result in anchors.items()}
    header = ["figure", "product", *(f"{label} | product / it" for label in anchors)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * (2 + 2 * len(anchors))]
    for name, mine in figures(product).items():
        cells = [name, _number(mine)]
        for other in theirs.values():
            value = other.get(name)
            cells += [_number(value), f"{mine / value:.2f}x" if mine and value else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
