"""``make cluster``: N server processes on their own loopback ports behind HAProxy on one port.

    python deploy/cluster.py --workers 2 --port 8000 -- <the uvicorn command of make serve>

Installs HAProxy from Debian's packages when it is missing (as root), renders
``deploy/haproxy.cfg.tmpl`` for N workers, starts the workers (each told
``NUM_PROXIES=1``: one proxy in front sets ``X-Forwarded-For``) and HAProxy, and writes
``.cluster/state.json`` (ports and pids, for operators and tests; ``CLUSTER_STATE``
overrides the path). SIGTERM or Ctrl-C stops the workers gracefully, then HAProxy.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "haproxy.cfg.tmpl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_haproxy() -> str:
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("HAProxy is needed: apt-get install haproxy (as root)")
    print("installing haproxy from Debian's packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "haproxy"], check=True, env=env)
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


def render(bind: str, port: int, workers: list[int]) -> str:
    servers = "\n".join(f"    server w{i} 127.0.0.1:{p} check" for i, p in enumerate(workers, start=1))
    return Template(TEMPLATE.read_text()).substitute(
        bind=bind,
        port=port,
        servers=servers,
        cookie=os.environ.get("SOCKETIO_SESSION_COOKIE", "io"),
        max_body=int(os.environ.get("SOCKETIO_MAX_BUFFER", "1000000")),
        maxconn=max(1000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("server", nargs=argparse.REMAINDER, help="-- then the server command (without --port)")
    args = parser.parse_args()
    command = [part for part in args.server if part != "--"]
    if not command:
        raise SystemExit("give the server command after --")
    haproxy = ensure_haproxy()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # sockets are file descriptors

    ports = [free_port() for _ in range(args.workers)]
    # One directory for the workers' metric samples: /metrics on any of them reports the sum.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="cluster-metrics-")
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()
    env = {**os.environ, "NUM_PROXIES": os.environ.get("NUM_PROXIES", "1"), "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    workers = [subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(p)], env=env) for p in ports]
    config = Path(tempfile.mkdtemp(prefix="cluster-")) / "haproxy.cfg"
    config.write_text(render(args.host, args.port, ports))
    proxy = subprocess.Popen([haproxy, "-f", str(config), "-db"])

    state_path = Path(os.environ.get("CLUSTER_STATE", ROOT / ".cluster" / "state.json"))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "port": args.port,
        "haproxy_pid": proxy.pid,
        "haproxy_config": str(config),
        "workers": [{"port": p, "pid": w.pid} for p, w in zip(ports, workers, strict=True)],
    }
    state_path.write_text(json.dumps(state, indent=1))
    print(f"cluster: {args.workers} workers {ports} behind HAProxy on {args.host}:{args.port}", flush=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and proxy.poll() is None and any(w.poll() is None for w in workers):
        time.sleep(0.2)
    for worker in workers:  # graceful: each writes its state and hands its clients over
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "10")) + 5)
        except subprocess.TimeoutExpired:
            worker.kill()
    proxy.terminate()
    proxy.wait(timeout=10)
    sys.exit(0)


if __name__ == "__main__":
    main()
