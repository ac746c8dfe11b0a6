"""The claims table (docs/claims.md) names tests that exist, and the checks behind it can fail."""

import ast
import re
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from tests.live import ServerProcess, server_log_problems, wait_for_log
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_test_the_claims_table_names_exists():
    table = (ROOT / "docs" / "claims.md").read_text()
    named = NAMED_TEST.findall(table)
    assert len(named) >= 100, "the table lost its rows"
    missing = []
    for path, name in named:
        source = ROOT / path
        defined = (
            {node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}
            if source.exists()
            else set()
        )
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
    claims = table.split("## Mutation spot-check")[0]  # the mutants' table names modules, not tests
    rows = [line for line in claims.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert all(NAMED_TEST.search(row) for row in rows), [row for row in rows if not NAMED_TEST.search(row)]


def test_the_log_check_fails_on_a_traceback():
    log = "\n".join(
        [
            "2026-12-04 10:00:00,001 INFO uvicorn started",
            "2026-12-04 10:00:01,002 ERROR config.realtime.manager local delivery of x failed",
            "Traceback (most recent call last):",
            "2026-12-04 10:00:02,003 WARNING channel layer unavailable",
            "2026-12-04 10:00:03,004 ERROR config.realtime.manager channel layer unavailable",
        ]
    )
    assert server_log_problems(log) == log.splitlines()[1:3] + log.splitlines()[4:]
    assert server_log_problems(log, ["channel layer unavailable"]) == log.splitlines()[1:3]
    # a traceback goes with its record: allowed with it, reported with it
    assert server_log_problems(log, ["local delivery of x failed"]) == log.splitlines()[4:]
    assert server_log_problems("2026-12-04 INFO all good\n") == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.server_errors("breaks the event catalogue")
def test_a_server_process_logs_a_payload_outside_the_catalogue(cluster_env):  # noqa: F811
    """A server the suite starts checks what it delivers (EMIT_VALIDATION) and logs an ERROR, which
    the log fixture fails every other test on."""
    server = ServerProcess(cluster_env).start()
    try:
        message = {
            "method": "emit",
            "event": "booking:status_updated",
            "data": [{"bookingId": 7}],  # not the declared shape
            "namespace": "/customer",
            "room": "booking:nobody",
            "skip_sid": None,
            "callback": None,
            "host_id": "a-test",
        }
        layer = get_channel_layer()
        async_to_sync(layer.group_send)(settings.SOCKETIO["CHANNEL_GROUP"], {"type": "sio.message", "data": message})
        line = wait_for_log(server, "breaks the event catalogue")
        assert "/customer booking:status_updated" in line and "bookingId" in line, line
    finally:
        server.stop()


# Files the benchmarks write when they run (git ignores them).
WRITTEN_BY_A_RUN = {"bench/results/latest.json"}
DOC_PATH = re.compile(
    r"`((?:config|bookings|partners|messaging|dashboard|tests|bench|deploy|docs|\.ci)/[\w./*<>{},-]*)"
)


def test_every_file_the_docs_name_exists():
    """A path in the README or docs/ names a file or folder of this tree (``<app>/`` patterns aside)."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"\n## REST endpoints.*?(?=\n## |\Z)", "", doc.read_text(), flags=re.S)  # URLs, not files
        for path in DOC_PATH.findall(text):
            if "<" in path or "*" in path or path in WRITTEN_BY_A_RUN:
                continue  # a pattern (``<app>/events.py``), or a run's output
            path = re.sub(r"\{([^,}]+)[^}]*\}", r"\1", path)  # ``recovery-{off,on}-{1,2}.json``: the first of each
            if not (ROOT / path.rstrip(".")).exists():
                missing.append(f"{doc.name}: {path}")
    assert missing == []
