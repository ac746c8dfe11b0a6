"""The log check (tests/conftest.py ``_server_logs_are_clean``) reads every kind of server the
suite starts: a handler that raises on purpose (``/faults``, TEST_FAULTS=1) is found in each."""

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
import socketio

from config.realtime.faults import MESSAGE, NAMESPACE
from tests.live import IN_PROCESS_LOG, WAIT, WATCHED, ClusterLogs, ServerProcess, check_server_logs, eventually, run
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True)]


async def fault(url: str, event: str, data: object = None) -> object:
    """Send ``event`` to ``/faults``; the ack for ``raise_later``, nothing for ``raise``."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, namespaces=[NAMESPACE], transports=["websocket"], wait_timeout=WAIT)
    try:
        if event == "raise":
            await client.emit(event, data, namespace=NAMESPACE)
            await asyncio.sleep(0)  # sent; the server fails on its own time
            return None
        return await client.call(event, data, namespace=NAMESPACE, timeout=WAIT)
    finally:
        await client.disconnect()


def faults_in(problems: list[str]) -> list[str]:
    return [line for line in problems if MESSAGE in line or line.startswith("Traceback")]


def test_the_log_check_reads_the_in_process_live_server(live_server_url):
    before = IN_PROCESS_LOG.size()
    run(fault(live_server_url, "raise", "in-process"))
    eventually(lambda: IN_PROCESS_LOG.size() > before, what="the live server's thread logs the fault")
    problems = check_server_logs()
    assert any(line.startswith("Traceback") for line in problems) and any(" ERROR " in line for line in problems), (
        problems
    )


@pytest.mark.redis
def test_the_log_check_reads_a_server_process_late_and_after_it_stopped(cluster_env):  # noqa: F811
    server = ServerProcess(cluster_env).start()
    try:
        # a traceback 0.05 s after the answer: the settle waits for it, so this test is the one named
        assert run(fault(server.url, "raise_later", 0.05)) == "ok"
        late = faults_in(check_server_logs())
        assert any("late" in line for line in late) and any(line.startswith("Traceback") for line in late), late
        run(fault(server.url, "raise", "before the stop"))
        time.sleep(0.3)  # no check between: the stop comes first
    finally:
        server.stop()
    after_stop = check_server_logs()
    assert any(line.startswith("Traceback") for line in after_stop), after_stop
    assert server not in ServerProcess.running  # read one last time, then dropped


@pytest.fixture(scope="module")
def module_server(cluster_env):  # noqa: F811
    server = ServerProcess(cluster_env).start()
    yield server
    server.stop()


@pytest.mark.redis
def test_the_log_check_reads_a_module_scoped_server_after_each_test(module_server):
    assert run(fault(module_server.url, "raise_later", 0.05)) == "ok"
    late = faults_in(check_server_logs())
    assert any("late" in line for line in late), late


def test_the_log_check_reads_make_clusters_worker_logs():
    directory = Path(tempfile.mkdtemp())
    logs = ClusterLogs(directory / "state.json")
    WATCHED.append(logs)
    try:
        (directory / "worker-1.log").write_text("2026-12-04 10:00:00,001 INFO uvicorn started\n")
        assert check_server_logs() == []
        with (directory / "worker-1.log").open("a") as log:
            log.write("2026-12-04 10:00:01,002 ERROR engineio.server message async handler error\n")
            log.write("Traceback (most recent call last):\n")
        (directory / "worker-2.log").write_text("2026-12-04 10:00:02,003 CRITICAL worker two\n")
        problems = check_server_logs()
        assert [line.rsplit("  ", 1)[1] for line in problems] == ["[worker-1.log]", "[worker-1.log]", "[worker-2.log]"]
    finally:
        logs.done = True
        check_server_logs()
    assert logs not in WATCHED
