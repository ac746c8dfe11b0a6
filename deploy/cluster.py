"""``make cluster``: N server processes on their own loopback ports behind HAProxy on one port.

    python deploy/cluster.py --workers 2 --port 8000 [--pgbouncer] -- <the uvicorn command of make serve>

Installs HAProxy from Debian's packages when it is missing (as root), renders
``deploy/haproxy.cfg.tmpl`` for N workers, starts the workers (each told
``TRUSTED_PROXIES=127.0.0.1``: HAProxy, on loopback, sets ``X-Forwarded-For`` and
``X-Forwarded-Proto``) and HAProxy, and writes
``.cluster/state.json`` (ports and pids, for operators and tests; ``CLUSTER_STATE``
overrides the path). SIGTERM or Ctrl-C stops the workers gracefully, then HAProxy.

``--pgbouncer`` (``make cluster PGBOUNCER=1``) puts Debian's PgBouncer, installed when
missing, in transaction mode between the workers and ``DATABASE_URL``'s PostgreSQL: the
workers' pools (``DB_POOL_SIZE`` each) share at most ``PGBOUNCER_POOL`` server connections,
and are told ``DB_PGBOUNCER=1`` (the settings that transaction pooling needs).
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
from urllib.parse import unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "haproxy.cfg.tmpl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_installed(package: str) -> str:
    """The path of Debian package ``package``'s program of the same name, installed when missing."""
    found = shutil.which(package) or shutil.which(f"/usr/sbin/{package}")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{package} is needed: apt-get install {package} (as root)")
    print(f"installing {package} from Debian's packages ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], check=True, env=env)
    return shutil.which(package) or f"/usr/sbin/{package}"


def start_pgbouncer(database_url: str, workers: int) -> tuple[subprocess.Popen, int, str]:
    """PgBouncer in transaction mode in front of ``database_url``: the process, its port, the URL through it."""
    binary = ensure_installed("pgbouncer")
    target = urlsplit(database_url)
    if target.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit("PGBOUNCER=1 needs a PostgreSQL DATABASE_URL")
    user, password = unquote(target.username or "postgres"), unquote(target.password or "")
    port, pool = free_port(), int(os.environ.get("PGBOUNCER_POOL", "20"))
    clients = workers * int(os.environ.get("DB_POOL_SIZE", "10")) + 50  # every worker's whole pool, and a shell
    work = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    work.chmod(0o755)  # PgBouncer refuses to run as root: it drops to the postgres user (-u)
    (work / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (work / "pgbouncer.ini").write_text(
        PGBOUNCER_INI.format(
            host=target.hostname or "127.0.0.1",
            server_port=target.port or 5432,
            port=port,
            pool=pool,
            clients=clients,
            auth="md5" if password else "trust",
            userlist=work / "userlist.txt",
            user=user,
        )
    )
    command = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    proc = subprocess.Popen(command)
    deadline = time.monotonic() + 10
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("pgbouncer did not start")
        time.sleep(0.1)
    netloc = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    return proc, port, urlunsplit((target.scheme, f"{netloc}127.0.0.1:{port}", target.path, target.query, ""))


# Transaction mode: a server connection is a client's only for one transaction, so
# PGBOUNCER_POOL connections serve every worker's pool. max_db_connections caps the total
# (the figure PostgreSQL's max_connections must cover); the admin console is for `SHOW POOLS`.
PGBOUNCER_INI = """[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {auth}
auth_file = {userlist}
admin_users = {user}
stats_users = {user}
pool_mode = transaction
default_pool_size = {pool}
max_db_connections = {pool}
max_client_conn = {clients}
server_reset_query =
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
"""


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


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
    parser.add_argument("--pgbouncer", action="store_true", help="pool PostgreSQL connections through PgBouncer")
    parser.add_argument("server", nargs=argparse.REMAINDER, help="-- then the server command (without --port)")
    args = parser.parse_args()
    command = [part for part in args.server if part != "--"]
    if not command:
        raise SystemExit("give the server command after --")
    haproxy = ensure_installed("haproxy")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # sockets are file descriptors

    ports = [free_port() for _ in range(args.workers)]
    # One directory for the workers' metric samples: /metrics on any of them reports the sum.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="cluster-metrics-")
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()
    env = {
        **os.environ,
        "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES", "127.0.0.1"),  # HAProxy connects from loopback
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    pgbouncer, pgbouncer_port = None, None
    if args.pgbouncer:
        pgbouncer, pgbouncer_port, env["DATABASE_URL"] = start_pgbouncer(
            os.environ.get("DATABASE_URL", ""), args.workers
        )
        env["DB_PGBOUNCER"] = "1"
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
        "pgbouncer_pid": pgbouncer.pid if pgbouncer else None,
        "pgbouncer_port": pgbouncer_port,
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
    if pgbouncer is not None:
        pgbouncer.terminate()
        pgbouncer.wait(timeout=10)
    sys.exit(0)


if __name__ == "__main__":
    main()
