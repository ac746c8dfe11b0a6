"""A partner's disconnect while the database is down: its offline write (presence's, batched with the
others of that second) fails as ``UNAVAILABLE`` (a pool that times out is an ``OperationalError``), which
is one warning without a traceback, as any other unavailability, however many seconds it goes on. The
partner is not left online: presence's heartbeat renews no partner gone, and the offline write is tried
again until the database answers."""

import asyncio
import logging
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

import config.asgi  # noqa: F401 - the composition root builds the namespaces
from config import rooms
from config.realtime.presence import presence
from partners import tracking
from partners.models import Partner
from tests.live import Client, eventually, run, token_for, wait_until


def online_until(partner_id: int) -> object:
    try:
        return Partner.objects.get(pk=partner_id).online_until
    finally:
        connection.close()  # read from a thread too: no session left on the test database


@pytest.mark.django_db(transaction=True)
def test_a_disconnect_whose_offline_write_is_unavailable_logs_one_warning_without_traceback(
    live_server_url, partner, settings, monkeypatch, caplog
):
    Partner.objects.filter(pk=partner.pk).update(online_until=None)

    def pool_timeout(*, partner_ids: list[int], online: bool = True) -> None:
        raise OperationalError("couldn't get a connection after 5.00 sec")  # psycopg_pool's PoolTimeout, wrapped

    def unavailable_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "config.realtime.presence" and "unavailable" in r.getMessage()]

    async def scenario() -> None:
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        # the heartbeat (every PRESENCE_HEARTBEAT, 0.5 s here) writes the connected partner online
        await asyncio.to_thread(eventually, lambda: online_until(partner.pk) is not None, what="written online")
        monkeypatch.setattr(tracking, "partners_online", pool_timeout)  # presence's writes (its keeper's)
        await p.close()
        await wait_until(lambda: unavailable_lines(), what="the disconnect's warning")

    with caplog.at_level(logging.INFO):
        run(scenario())
        time.sleep(2 * settings.PRESENCE_HEARTBEAT)  # a heartbeat already under way at the disconnect lands
        left_at = online_until(partner.pk)
        time.sleep(3 * settings.PRESENCE_HEARTBEAT)  # tried again each tick, failing each time
        # Not renewed: dispatch stops offering them jobs at PRESENCE_TTL at the latest.
        assert online_until(partner.pk) == left_at
        assert left_at <= timezone.now() + timedelta(seconds=settings.PRESENCE_TTL)
        (line,) = unavailable_lines()  # one, however many ticks failed
        monkeypatch.undo()  # the database answers again: the offline write, kept, goes out
        eventually(lambda: online_until(partner.pk) is None, what="the partner written offline")
    assert line.levelname == "WARNING" and line.exc_info is None, line
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], "no error, no traceback"
    assert partner.pk not in presence.local[rooms.PARTNER]
