"""``make cluster``: N server processes on their own loopback ports behind HAProxy on one port.

    python deploy/cluster.py --workers 2 --port 8000 [--pgbouncer] -- <the uvicorn command of make serve>

Installs HAProxy from Debian's packages when it is missing (as root), renders
``deploy/haproxy.cfg.tmpl`` for N workers, starts the workers (each told
``TRUSTED_PROXIES=127.0.0.1``: HAProxy, on loopback, sets ``X-Forwarded-For``
and ``X-Forwarded-Proto``) and HAProxy, and writes
``.cluster/state.json`` (its own pid, ports and pids, the workers' user and logs, for
operators and tests; ``CLUSTER_STATE`` overrides the path). Each worker's output goes to
``worker-N.log`` next to the state file. SIGTERM or Ctrl-C stops the workers gracefully,
then HAProxy, and removes what the run wrote besides the state file and the logs.

Run as root, nothing it starts stays root: the workers and PgBouncer run as ``CLUSTER_USER``
(``homeservices``, a system user created when missing) and HAProxy drops to that user once
it has bound its port. That user must be able to read the project and run its Python
(``make cluster BIN=...`` names another virtualenv); the run refuses to start, saying so,
when it cannot.

``--pgbouncer`` (``make cluster PGBOUNCER=1``) puts Debian's PgBouncer, installed when
missing, in transaction mode between the workers and ``DATABASE_URL``'s PostgreSQL: the
workers' pools (``DB_POOL_SIZE`` each) share at most ``PGBOUNCER_POOL`` server connections,
and are told ``DB_PGBOUNCER=1`` (the settings that transaction pooling needs). Its folder is
the cluster user's alone (0700, files 0600) and removed on stop; its user list holds the
database role's SCRAM secret, never the password (the secret PostgreSQL stores, read from
``pg_authid`` when the role may; otherwise computed from the password and stored for the
role, the same password, so PgBouncer's SCRAM logins pass through to PostgreSQL). Its admin
console belongs to a user of its own, ``pgbouncer_admin``, whose random password is in the
folder's ``admin-password``.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import pwd
import resource
import secrets
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


def cluster_user() -> pwd.struct_passwd | None:
    """Who the workers and PgBouncer run as: None (this user) unless run as root, then
    ``CLUSTER_USER`` (``homeservices``), a system user without a login, created when missing."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("CLUSTER_USER") or "homeservices"
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        print(f"creating the system user {name} for the cluster's processes", flush=True)
        subprocess.run(
            [
                *("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"),
                *("--shell", "/usr/sbin/nologin", name),
            ],
            check=True,
        )
        user = pwd.getpwnam(name)
    if user.pw_uid == 0:
        raise SystemExit(f"CLUSTER_USER={name} is root: the cluster's processes do not run as root")
    return user


def as_user(user: pwd.struct_passwd | None, env: dict[str, str]) -> dict:
    """``subprocess.Popen`` arguments that run a process as ``user`` (none for this user)."""
    if user is None:
        return {"env": env}
    home = {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": {**env, **home}}


def own(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def write_secret(path: Path, text: str, user: pwd.struct_passwd | None) -> None:
    """``text`` in a new file that only ``user`` (or this user) can read: 0600 from its creation."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    own(path, user)


def scram_secret(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 secret of ``password`` in PostgreSQL's format (RFC 5802, 7677)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def role_secret(database_url: str, password: str) -> str:
    """The SCRAM secret PostgreSQL holds for the URL's role. PgBouncer logs in to PostgreSQL
    with it (SCRAM pass-through) only if it is the very secret PostgreSQL stores, salt and all:
    read from ``pg_authid`` when the role may; otherwise a fresh one from the password, which
    the role then stores for itself (any role may set its own password; the same password)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as connection:
        try:
            row = connection.execute("SELECT rolpassword FROM pg_authid WHERE rolname = current_user").fetchone()
        except psycopg.errors.InsufficientPrivilege:
            row = None
        if row and row[0] and row[0].startswith("SCRAM-SHA-256$"):
            return row[0]
        secret = scram_secret(password)
        connection.execute(sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(sql.Literal(secret)))
        print("pgbouncer: the database role now stores its password as a SCRAM secret", flush=True)
        return secret


PGBOUNCER_ADMIN = "pgbouncer_admin"


def start_pgbouncer(
    database_url: str, workers: int, user: pwd.struct_passwd | None
) -> tuple[subprocess.Popen, int, str, Path]:
    """PgBouncer in transaction mode in front of ``database_url``: the process, its port, the
    URL through it, and its folder (the cluster user's alone; the caller removes it)."""
    binary = ensure_installed("pgbouncer")
    target = urlsplit(database_url)
    if target.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit("PGBOUNCER=1 needs a PostgreSQL DATABASE_URL")
    role, password = unquote(target.username or "postgres"), unquote(target.password or "")
    if role == PGBOUNCER_ADMIN or '"' in role:
        raise SystemExit(f"PGBOUNCER=1 cannot pool for the database role {role!r}")
    port, pool = free_port(), int(os.environ.get("PGBOUNCER_POOL", "20"))
    clients = workers * int(os.environ.get("DB_POOL_SIZE", "10")) + 50  # every worker's whole pool, and a shell
    work = Path(tempfile.mkdtemp(prefix="pgbouncer-"))  # 0700
    try:
        own(work, user)
        admin_password = secrets.token_urlsafe(24)
        write_secret(work / "admin-password", admin_password + "\n", user)
        entries = [f'"{PGBOUNCER_ADMIN}" "{scram_secret(admin_password)}"']
        # Only these two users, only over loopback; the application's without a password only
        # when PostgreSQL's URL has none (PostgreSQL trusts it then too).
        rules = [f"host pgbouncer {PGBOUNCER_ADMIN} 127.0.0.1/32 scram-sha-256"]
        if password:
            entries.append(f'"{role}" "{role_secret(database_url, password)}"')
            rules.append(f'host all "{role}" 127.0.0.1/32 scram-sha-256')
        else:
            entries.append(f'"{role}" ""')
            rules.append(f'host all "{role}" 127.0.0.1/32 trust')
        write_secret(work / "userlist.txt", "\n".join(entries) + "\n", user)
        write_secret(work / "hba.conf", "\n".join(rules) + "\n", user)
        ini = PGBOUNCER_INI.format(
            host=target.hostname or "127.0.0.1",
            server_port=target.port or 5432,
            port=port,
            pool=pool,
            clients=clients,
            hba=work / "hba.conf",
            userlist=work / "userlist.txt",
            admin=PGBOUNCER_ADMIN,
        )
        write_secret(work / "pgbouncer.ini", ini, user)
        proc = subprocess.Popen([binary, str(work / "pgbouncer.ini")], **as_user(user, {**os.environ}))
        deadline = time.monotonic() + 10
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("pgbouncer did not start")
            time.sleep(0.1)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    netloc = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    return proc, port, urlunsplit((target.scheme, f"{netloc}127.0.0.1:{port}", target.path, target.query, "")), work


# Transaction mode: a server connection is a client's only for one transaction, so
# PGBOUNCER_POOL connections serve every worker's pool. max_db_connections caps the total
# (the figure PostgreSQL's max_connections must cover); the admin console is for `SHOW POOLS`,
# by its own user: the application's may not run `SHUTDOWN` or `PAUSE`.
PGBOUNCER_INI = """[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = hba
auth_hba_file = {hba}
auth_file = {userlist}
admin_users = {admin}
stats_users = {admin}
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


def render(bind: str, port: int, workers: list[int], user: pwd.struct_passwd | None = None) -> str:
    servers = "\n".join(f"    server w{i} 127.0.0.1:{p} check" for i, p in enumerate(workers, start=1))
    # Run as root, HAProxy binds its port, then gives up root for the cluster's user.
    privileges = f"    uid {user.pw_uid}\n    gid {user.pw_gid}" if user else "    # not root: nothing to drop"
    return Template(TEMPLATE.read_text()).substitute(
        bind=bind,
        port=port,
        servers=servers,
        privileges=privileges,
        cookie=os.environ.get("SOCKETIO_SESSION_COOKIE", "io"),
        max_body=int(os.environ.get("SOCKETIO_MAX_BUFFER", "1000000")),
        maxconn=max(1000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2),
    )


def check_runnable(command: list[str], user: pwd.struct_passwd | None, env: dict[str, str]) -> None:
    """Refuse to start when the cluster's user cannot run the server command's Python and
    import the project (root's own home, where pyenv puts Python, is 0700)."""
    if user is None:
        return
    try:
        probe = subprocess.run(
            [command[0], "-c", "import uvicorn, config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            **as_user(user, env),
        )
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1] if probe.returncode else ""
    except OSError as error:  # the interpreter itself is out of reach
        why = str(error)
    if why:
        raise SystemExit(
            f"the workers run as {user.pw_name} (CLUSTER_USER), who cannot run {command[0]} in {ROOT}: {why}. "
            f"Give {user.pw_name} read access to the project and a Python it can run (make cluster BIN=<a "
            "virtualenv's bin outside root's home>)."
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
    user = cluster_user()
    check_runnable(command, user, {**os.environ})

    ports = [free_port() for _ in range(args.workers)]
    # One directory for the workers' metric samples: /metrics on any of them reports the sum.
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="cluster-metrics-")
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()
    own(Path(metrics_dir), user)
    env = {
        **os.environ,
        "TRUSTED_PROXIES": os.environ.get("TRUSTED_PROXIES", "127.0.0.1"),  # HAProxy connects from loopback
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
    }
    state_path = Path(os.environ.get("CLUSTER_STATE", ROOT / ".cluster" / "state.json"))
    state_path.parent.mkdir(parents=True, exist_ok=True)
    logs = [state_path.parent / f"worker-{i}.log" for i in range(1, args.workers + 1)]
    pgbouncer, pgbouncer_port, pgbouncer_dir = None, None, None
    config_dir = Path(tempfile.mkdtemp(prefix="cluster-"))  # 0700: HAProxy reads it before it drops root
    workers: list[subprocess.Popen] = []
    proxy = None
    try:
        if args.pgbouncer:
            pgbouncer, pgbouncer_port, env["DATABASE_URL"], pgbouncer_dir = start_pgbouncer(
                os.environ.get("DATABASE_URL", ""), args.workers, user
            )
            env["DB_PGBOUNCER"] = "1"
        for port, log in zip(ports, logs, strict=True):
            with open(log, "wb") as output:  # the worker's stdout and stderr, one file each
                workers.append(
                    subprocess.Popen(
                        [*command, "--host", "127.0.0.1", "--port", str(port)],
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        **as_user(user, env),
                    )
                )
        config = config_dir / "haproxy.cfg"
        config.write_text(render(args.host, args.port, ports, user))
        proxy = subprocess.Popen([haproxy, "-f", str(config), "-db"])

        state = {
            "pid": os.getpid(),
            "port": args.port,
            "user": user.pw_name if user else pwd.getpwuid(os.geteuid()).pw_name,
            "haproxy_pid": proxy.pid,
            "haproxy_config": str(config),
            "pgbouncer_pid": pgbouncer.pid if pgbouncer else None,
            "pgbouncer_port": pgbouncer_port,
            "pgbouncer_dir": str(pgbouncer_dir) if pgbouncer_dir else None,
            "pgbouncer_admin": PGBOUNCER_ADMIN if pgbouncer else None,
            "workers": [
                {"port": p, "pid": w.pid, "log": str(log)} for p, w, log in zip(ports, workers, logs, strict=True)
            ],
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
    finally:
        for worker in workers:  # graceful: each writes its state and hands its clients over
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=float(os.environ.get("SHUTDOWN_TIMEOUT", "10")) + 5)
            except subprocess.TimeoutExpired:
                worker.kill()
        for process in (proxy, pgbouncer):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(config_dir, ignore_errors=True)
        if pgbouncer_dir is not None:  # its user list and the admin's password go with it
            shutil.rmtree(pgbouncer_dir, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
