"""``manage.py simulate --dead-zones``: partners on the way lose their network for a while, keep their
fixes and send them as ``location:batch`` once back; the jobs' traces get them."""

import ast
import os
import re
import subprocess
import sys

import pytest

from partners.models import LocationFix
from tests.live import ServerProcess, server_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.timeout(120)
def test_partners_back_from_a_dead_zone_send_what_they_kept(service):
    env = server_env(
        OFFER_TIMEOUT_SECONDS="5", DISPATCH_SWEEP_INTERVAL="0.5", LOCATION_FLUSH_INTERVAL="0.5", TRACE_MIN_SECONDS="2"
    )
    server = ServerProcess(env).start()
    try:
        sim = subprocess.run(
            [
                *(sys.executable, "manage.py", "simulate", "--url", server.url),
                *("--partners", "3", "--customers", "3", "--duration", "25", "--book-every", "1"),
                *("--accept", "1", "--reject", "0", "--cancel", "0", "--speed", "20", "--radius", "2"),
                *("--dead-zones", "1", "--dead-zone-seconds", "4"),
            ],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=90,
        )
        logs = server.output()
    finally:
        server.stop()
    assert sim.returncode == 0, sim.stderr[-3000:]
    assert "Traceback" not in logs, logs[-3000:]
    found = re.search(r"dead zones: (\d+); batches sent on reconnect: (.*)", sim.stdout)
    assert found, sim.stdout[-2000:]
    backfill = ast.literal_eval(found.group(2))
    assert int(found.group(1)) >= 1 and backfill.get("accepted", 0) >= 3, sim.stdout[-2000:]
    assert backfill.get("rejected", 0) == 0 and backfill.get("duplicates", 0) == 0
    assert LocationFix.objects.filter(partner__user__username__startswith="sim-partner-").count() >= 3
