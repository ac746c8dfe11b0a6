"""A client past ``SESSIONS_PER_ADDRESS`` is refused at each connect: engineio's line for it is a
WARNING once, then counted, not logged, so a client at its limit cannot fill the log (an INFO line,
as engineio's own, would not show: ``LOGGING`` keeps its logger at WARNING)."""

import logging
import urllib.error
import urllib.request

from prometheus_client import REGISTRY

from config.realtime.server import sio


def counted() -> float:
    labels = {"message": "rejected-connection"}
    return REGISTRY.get_sample_value("homeservices_client_caused_warnings_total", labels) or 0.0


def test_connects_refused_past_the_address_limit_warn_once(live_server_url, monkeypatch, caplog):
    monkeypatch.setattr(sio.eio, "sessions_per_address", 0)
    statuses, before = [], counted()
    with caplog.at_level(logging.INFO, logger="engineio.server"):
        for _ in range(3):
            try:
                urllib.request.urlopen(live_server_url + "/socket.io/?EIO=4&transport=polling", timeout=5)
            except urllib.error.HTTPError as refused:
                statuses.append(refused.code)
    assert statuses == [401, 401, 401]
    refusals = [r for r in caplog.records if r.getMessage().startswith("Application rejected connection")]
    assert [r.levelname for r in refusals] in (["WARNING"], [])  # none when an earlier test had one
    assert counted() - before == 3 - len(refusals)
