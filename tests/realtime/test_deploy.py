"""A deploy keeps sessions recoverable (contract 10.2): a process holding a thousand sockets is
stopped (SIGTERM) and started again on the same port, and the official clients come back
``recovered``, as they would after any other involuntary disconnect within the window."""

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from config import rooms
from tests.factories import UserFactory
from tests.live import ServerProcess, require_node, token_for
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.node]
JS = Path(__file__).resolve().parents[1] / "js"
SOCKETS, ACCOUNTS = 1000, 40
SHUTDOWN_TIMEOUT = 10  # seconds: the whole stop, a thousand sessions saved included


class Lines:
    """A child process's stdout, one JSON line at a time, each waited for at most ``timeout`` s."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def next(self, timeout: float) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the storm client said nothing in {timeout} s") from None


@pytest.mark.timeout(240)
def test_a_restart_with_a_thousand_sockets_keeps_them_recoverable(cluster_env):  # noqa: F811
    require_node()
    # Twenty-five sockets per account and one address for all: past the production connect limits,
    # which are not the subject here (each socket connects twice within a minute).
    env = {
        **cluster_env,
        "RATE_CONNECT": "1000",
        "RATE_CONNECT_ADDRESS": "100000",
        "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    users = [UserFactory(username=f"deploy{i}") for i in range(ACCOUNTS)]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as plan:
        json.dump({"namespace": rooms.CUSTOMER, "tokens": [token_for(u) for u in users], "sockets": SOCKETS}, plan)
    old = ServerProcess(env).start()
    new, node = None, None
    try:
        with open(plan.name) as f:
            spec = {**json.load(f), "url": old.url}
        with open(plan.name, "w") as f:
            json.dump(spec, f)
        node = subprocess.Popen(
            ["node", "storm_client.mjs", plan.name],
            cwd=JS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = Lines(node)
        connected = lines.next(timeout=90)
        assert connected["connected"] == SOCKETS, connected

        stopped = time.monotonic()
        old.proc.send_signal(signal.SIGTERM)
        old.proc.wait(timeout=30)
        stop_seconds = time.monotonic() - stopped
        new = ServerProcess(env, port=old.port).start()  # the same address: the clients' own reconnects find it
        node.stdin.write("back\n")
        node.stdin.flush()
        back = lines.next(timeout=60)
        print(f"deploy with {SOCKETS} sockets: the stop took {stop_seconds:.2f} s; {back}")
        assert stop_seconds < SHUTDOWN_TIMEOUT
        assert back["dropped"] == SOCKETS, back
        assert back["reconnected"] == SOCKETS, back
        assert back["recovered"] >= 0.99 * SOCKETS, back
        assert f"stopping: {SOCKETS} of {SOCKETS} sessions kept for recovery" in old.output()
        assert "Too many connections" not in new.output()
    finally:
        if node is not None and node.poll() is None:
            node.kill()
        for server in (old, new):
            if server is not None:
                server.stop()
        os.unlink(plan.name)
