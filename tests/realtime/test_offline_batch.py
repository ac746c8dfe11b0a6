"""Partners whose sockets go at once (a sweep of ping timeouts, a network drop) are recorded offline
in one write per presence tick, not a write each; one back at once stays online."""

import asyncio
import time

import pytest
from django.db import connection
from django.utils import timezone

from partners.models import Partner
from tests.factories import PartnerFactory
from tests.live import Client, eventually, queries_of_every_thread, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)

DROPPED = 60


def online_ids(ids: list[int]) -> set[int]:
    try:
        return set(Partner.objects.filter(pk__in=ids, online_until__gt=timezone.now()).values_list("pk", flat=True))
    finally:
        connection.close()  # asked from a thread too: no session left on the test database


def test_partners_dropped_at_once_are_written_offline_together_and_one_back_stays_online(live_server_url, service):
    partners = [PartnerFactory(services=[service]) for _ in range(DROPPED)]
    ids = [p.pk for p in partners]
    tokens = [token_for(p.user) for p in partners]
    back_id = ids[0]

    async def scenario():
        clients = [await Client(live_server_url, "/partner").connect(token) for token in tokens]
        with queries_of_every_thread() as statements:
            await asyncio.gather(*(client.close() for client in clients))  # every socket at once
            back = await Client(live_server_url, "/partner").connect(tokens[0])  # and one partner back at once
            try:
                await asyncio.to_thread(
                    eventually, lambda: online_ids(ids) == {back_id}, what="the others offline, the one back online"
                )
                counted = list(statements)
                # Still online a few presence ticks later: the batched offline write did not land after it.
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    assert await asyncio.to_thread(online_ids, [back_id]) == {back_id}
                    await asyncio.sleep(0.1)
            finally:
                await back.close()
        return counted

    counted = run(scenario())
    offline_writes = [sql for sql in counted if "online_until" in sql and sql.startswith("UPDATE")]
    # Without the batch: an UPDATE per partner (41 of 75 statements for 40 partners), and a pooled
    # connection's check each (not SQL Django runs: not counted). With it: one or two.
    assert len(offline_writes) <= 4, offline_writes
    assert len(counted) < DROPPED, counted
