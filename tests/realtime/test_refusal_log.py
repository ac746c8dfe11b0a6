"""A client past ``SESSIONS_PER_ADDRESS`` is refused at each connect: engineio's line for it is a
WARNING once, INFO after, so a client at its limit cannot fill the log with warnings."""

import logging
import urllib.error
import urllib.request

from config.realtime.server import sio


def test_connects_refused_past_the_address_limit_warn_once(live_server_url, monkeypatch, caplog):
    monkeypatch.setattr(sio.eio, "sessions_per_address", 0)
    statuses = []
    with caplog.at_level(logging.INFO, logger="engineio.server"):
        for _ in range(3):
            try:
                urllib.request.urlopen(live_server_url + "/socket.io/?EIO=4&transport=polling", timeout=5)
            except urllib.error.HTTPError as refused:
                statuses.append(refused.code)
    assert statuses == [401, 401, 401]
    refusals = [r for r in caplog.records if r.getMessage().startswith("Application rejected connection")]
    assert len(refusals) == 3
    assert [r.levelname for r in refusals].count("WARNING") <= 1  # none when an earlier test had one
