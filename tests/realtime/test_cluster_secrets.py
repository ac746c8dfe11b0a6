"""``make cluster PGBOUNCER=1`` keeps its secrets (contract 10.2): PgBouncer's folder is its
user's alone (0700, files 0600) and removed on stop; no file the run writes holds the database
password (the user list holds a SCRAM secret); PgBouncer's console belongs to its own admin,
not the application's role; run as root (as here), no worker, PgBouncer or HAProxy stays root.

The database role is one of the test's own, with a password, so there is a password to find."""

import contextlib
import json
import os
import secrets
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.live import free_port
from tests.realtime.make_cluster import cluster_python  # noqa: F401 - fixture
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture
from tests.realtime.test_proxy_cluster import get

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]


def psql(port: int, user: str, password: str, database: str, query: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-At", "-w", "-c", query, database],
        env={**os.environ, "PGPASSWORD": password},
        capture_output=True,
        text=True,
        timeout=10,
    )


def uid(pid: int) -> int:
    """The effective user id of process ``pid``, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise AssertionError(f"no Uid line for {pid}")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def app_role(cluster_env) -> Iterator[tuple[str, str, str]]:  # noqa: F811
    """A login role with a password and the test database's tables: (its name, password, URL)."""
    if not cluster_env["DATABASE_URL"].startswith("postgres"):
        pytest.skip("PgBouncer pools PostgreSQL (.ci/run runs this on PostgreSQL)")
    name, password = f"cluster_app_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    admin_url = cluster_env["DATABASE_URL"]
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        db.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}")
        db.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {name}")
    target = urlsplit(admin_url)
    url = urlunsplit((target.scheme, f"{name}:{password}@{target.hostname}:{target.port or 5432}", target.path, "", ""))
    try:
        yield name, password, url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as db:
            db.execute(f"DROP OWNED BY {name}")
            db.execute(f"DROP ROLE {name}")


@pytest.fixture(scope="module")
def cluster(cluster_env, cluster_python, app_role) -> Iterator[dict]:  # noqa: F811
    """``make cluster WORKERS=2 PGBOUNCER=1`` on the role's URL, up; ``stop()`` ends it (once)."""
    url = app_role[2]
    port = free_port()
    state_file = Path(tempfile.mkdtemp()) / "state.json"
    env = {
        **os.environ,
        **cluster_env,
        **cluster_python["env"],
        "DATABASE_URL": url,
        "CLUSTER_STATE": str(state_file),
        "SHUTDOWN_TIMEOUT": "5",
    }
    process = subprocess.Popen(
        ["make", "cluster", "WORKERS=2", f"PORT={port}", "PGBOUNCER=1", *cluster_python["args"]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop() -> None:
        """SIGTERM to make, deploy/cluster.py, the workers, HAProxy, PgBouncer; then wait for
        deploy/cluster.py itself (make ends first), which removes what it wrote."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
            pid = json.loads(state_file.read_text())["pid"] if state_file.exists() else None
            deadline = time.monotonic() + 60
            while pid and alive(pid):
                assert time.monotonic() < deadline, "deploy/cluster.py did not stop"
                time.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    try:
        deadline = time.monotonic() + 180
        while not (state_file.exists() and get(f"http://127.0.0.1:{port}/readyz")[0] == 200):
            assert process.poll() is None and time.monotonic() < deadline, "make cluster did not come up"
            time.sleep(0.3)
        state = json.loads(state_file.read_text())
        yield {"state": state, "state_file": state_file, "url": f"http://127.0.0.1:{port}", "stop": stop}
    finally:
        stop()


def files_of(state: dict, state_file: Path) -> list[Path]:
    """Every file the run wrote: PgBouncer's folder, HAProxy's configuration, the state and logs."""
    folders = [Path(state["pgbouncer_dir"]), Path(state["haproxy_config"]).parent, state_file.parent]
    return [path for folder in folders for path in folder.rglob("*") if path.is_file()]


def test_pgbouncers_folder_is_its_users_alone(cluster):
    state = cluster["state"]
    folder = Path(state["pgbouncer_dir"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
    files = list(folder.iterdir())
    assert {f.name for f in files} >= {"pgbouncer.ini", "userlist.txt"}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, (file, oct(file.stat().st_mode))
        assert file.stat().st_uid == folder.stat().st_uid
    assert folder.stat().st_uid == uid(state["pgbouncer_pid"])  # PgBouncer's own user, who alone reads them


def test_no_file_holds_the_database_password(cluster, app_role):
    name, password, _ = app_role
    state = cluster["state"]
    files = files_of(state, cluster["state_file"])
    assert any(f.name == "userlist.txt" for f in files)
    assert [f for f in files if password.encode() in f.read_bytes()] == []
    userlist = (Path(state["pgbouncer_dir"]) / "userlist.txt").read_text()
    assert f'"{name}" "SCRAM-SHA-256$' in userlist, userlist
    # ... and the workers still log in with the password: a request that reads the database
    status, body = get(cluster["url"] + "/api/services/")
    assert status == 200, body


def test_pgbouncers_console_has_its_own_admin(cluster, app_role):
    name, password, _ = app_role
    state = cluster["state"]
    port, admin = state["pgbouncer_port"], state["pgbouncer_admin"]
    assert admin and admin != name
    refused = psql(port, name, password, "pgbouncer", "SHOW POOLS")
    assert refused.returncode != 0, refused.stdout  # the application's role has no console
    admin_password = (Path(state["pgbouncer_dir"]) / "admin-password").read_text().strip()
    pools = psql(port, admin, admin_password, "pgbouncer", "SHOW POOLS")
    assert pools.returncode == 0, pools.stderr
    assert psql(port, admin, "wrong", "pgbouncer", "SHOW POOLS").returncode != 0


def test_no_cluster_process_runs_as_root(cluster):
    if os.geteuid() != 0:
        pytest.skip("run as root, the cluster's processes drop it (CI runs as root)")
    state = cluster["state"]
    pids = [w["pid"] for w in state["workers"]] + [state["haproxy_pid"], state["pgbouncer_pid"]]
    assert {pid: uid(pid) for pid in pids if uid(pid) == 0} == {}
    assert {uid(pid) for pid in pids} == {uid(state["workers"][0]["pid"])}  # one user, CLUSTER_USER's
    assert state["user"] not in ("root", None)


def test_stop_removes_the_secrets_and_keeps_the_logs(cluster):
    state = cluster["state"]
    folder, config = Path(state["pgbouncer_dir"]), Path(state["haproxy_config"])
    assert folder.exists() and config.exists()
    cluster["stop"]()
    assert not folder.exists() and not config.exists()
    logs = [Path(w["log"]) for w in state["workers"]]
    assert [log.parent for log in logs] == [cluster["state_file"].parent] * 2
    for log in logs:
        assert "Application startup complete" in log.read_text(), log.read_text()[-2000:]
