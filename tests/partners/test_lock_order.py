"""A stop's location flush and presence withdrawal write the same partner rows side by side
(``config.realtime.stopping``: the shutdown hooks run at once); so do the periodic flush and the
presence heartbeat, on every process. Each locks the rows in primary-key order, so neither waits
for the other while holding a row the other holds: no deadlock (PostgreSQL would fail one after
``deadlock_timeout``, its rows unwritten)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from partners.location_store import partner_locations_store
from partners.models import Partner
from partners.services import partners_online
from tests.factories import PartnerFactory

pytestmark = [pytest.mark.django_db(transaction=True)]


def in_thread(work, failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            with connection.cursor() as cursor:
                # The plans of a production table (thousands of partners) on this small one: rows
                # visited in the order the statement names them (the buffer's order; the index's),
                # not in the table's, which would make any two writers agree by chance.
                cursor.execute(
                    "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_hashjoin = off;"
                    " SET enable_mergejoin = off"
                )
            work()
        except BaseException as exc:  # the test reads it: a deadlock is an OperationalError here
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_waiters(count: int) -> None:
    deadline = time.monotonic() + 10
    while waiting_on_locks() < count:
        assert time.monotonic() < deadline, f"{count} writers never waited on the held row"
        time.sleep(0.02)


@pytest.mark.parametrize("first", ["withdrawal", "flush"])
def test_a_flush_and_a_withdrawal_of_the_same_rows_do_not_deadlock(first):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and deadlock detection are PostgreSQL's")
    low, middle, high = (PartnerFactory().pk for _ in range(3))
    ids = [low, middle, high]
    Partner.objects.filter(pk__in=ids).update(online_until=timezone.now() + timedelta(minutes=5))
    at = timezone.now()
    # The buffer's order and the withdrawal's are opposite, as two processes' sets can be.
    flush = lambda: partner_locations_store({pk: (1.0, 2.0, at) for pk in reversed(ids)})  # noqa: E731
    withdrawal = lambda: partners_online(partner_ids=ids, online=False)  # noqa: E731
    order = [withdrawal, flush] if first == "withdrawal" else [flush, withdrawal]
    failures: list[BaseException] = []
    threads = []
    # A third writer holds the lowest row: both queue behind it, the first one to come first.
    with transaction.atomic():
        Partner.objects.select_for_update().get(pk=low)
        for waiters, work in enumerate(order, start=1):
            threads.append(in_thread(work, failures))
            wait_for_waiters(waiters)
    for thread in threads:
        thread.join(timeout=15)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    rows = Partner.objects.filter(pk__in=ids).values_list("last_latitude", "last_location_at", "online_until")
    assert sorted(rows) == [(1.0, at, None)] * 3
