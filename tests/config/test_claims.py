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
# What the docs cite: a test as ``tests/<path>.py::name`` (or ``::Class::name``), backticks or not.
CITED_TEST = re.compile(r"\b(tests/[\w/]+\.py)::(\w+(?:::\w+)?)")
CITED_FILE = re.compile(r"\b(tests/[\w/]+\.py)\b")
BARE_TEST = re.compile(r"`(test_\w+)`")  # a test named without its file: defined somewhere in tests/
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "sdk").glob("*/README.md"))]


def defined_tests(source: Path) -> set[str]:
    """The test functions ``source`` defines: ``name`` at module level, ``Class::name`` in a class."""
    if not source.exists():
        return set()
    found = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {f"{node.name}::{item.name}" for item in node.body if isinstance(item, ast.FunctionDef)}
    return found


def missing_tests(cited: list[tuple[str, str]]) -> list[str]:
    return [f"{path}::{name}" for path, name in cited if name not in defined_tests(ROOT / path)]


def test_every_test_the_claims_table_names_exists():
    table = (ROOT / "docs" / "claims.md").read_text()
    named = NAMED_TEST.findall(table)
    assert len(named) >= 100, "the table lost its rows"
    assert missing_tests(named) == []
    claims = table.split("## Mutation spot-check")[0]  # the mutants' table names modules, not tests
    rows = [line for line in claims.splitlines() if line.startswith("| ") and not line.startswith("| claim")]
    assert all(NAMED_TEST.search(row) for row in rows), [row for row in rows if not NAMED_TEST.search(row)]


def missing_files(text: str) -> list[str]:
    return [path for path in CITED_FILE.findall(text) if not (ROOT / path).exists()]


def test_every_test_a_doc_cites_exists():
    """The README, every docs/*.md and the SDK's READMEs: a ``tests/...py::name`` names a test that
    exists; a test file cited without a name (``tests/realtime/test_cluster.py``) exists; a test
    cited by name alone (```test_...```) is defined in some file under tests/."""
    defined = set().union(*(defined_tests(source) for source in (ROOT / "tests").rglob("test_*.py")))
    missing, cited = [], 0
    for doc in DOCS:
        text = doc.read_text()
        named = CITED_TEST.findall(text)
        cited += len(named)
        bare = [name for name in BARE_TEST.findall(text) if name not in defined]
        missing += [f"{doc.relative_to(ROOT)}: {found}" for found in missing_tests(named) + missing_files(text) + bare]
    assert cited > 100, "no citations read: the pattern no longer matches the docs"
    assert missing == []


def test_the_citation_check_sees_a_missing_test_and_a_missing_file():
    text = (
        "`tests/config/test_claims.py::test_every_test_a_doc_cites_exists`, "
        "tests/realtime/test_faults.py::test_burst_of_rest_and_connects_on_two_processes (renamed), "
        "`tests/config/test_claims.py::Absent::test_method` and `tests/realtime/test_gone.py` (a file)"
    )
    assert missing_tests(CITED_TEST.findall(text)) == [
        "tests/realtime/test_faults.py::test_burst_of_rest_and_connects_on_two_processes",
        "tests/config/test_claims.py::Absent::test_method",
    ]
    assert missing_files(text) == ["tests/realtime/test_gone.py"]


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
