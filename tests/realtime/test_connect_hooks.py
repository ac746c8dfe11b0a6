"""A connect's parts' hooks (``Part.on_connected``) run together, and the first failure cancels the others:
a partner's connect waits for their newest fix and their relay list at once, not one read after the other."""

import asyncio
import time

import pytest
import socketio

from bookings.sockets import partner_jobs
from config import rooms
from config.errors import Unavailable
from config.realtime.presence import presence
from partners.sockets import partner as partner_part
from tests.live import Client, run, token_for, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


async def _until(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_a_partners_hooks_wait_on_their_reads_together(live_server_url, partner, monkeypatch):
    """Each hook waits until the other has started before it reads: one after the other, the first
    would wait for ever (here 3 s, then the connect is refused)."""
    started: set[str] = set()
    done: list[str] = []

    def meeting(name: str, hook):
        async def hooked(namespace, sid, session):
            started.add(name)
            if not await _until(lambda: len(started) == 2):
                raise Unavailable("the other hook never started")
            await hook(namespace, sid, session)  # the real read
            done.append(name)

        return hooked

    monkeypatch.setattr(partner_part, "connected", meeting("newest fix", partner_part.connected))
    monkeypatch.setattr(partner_jobs, "connected", meeting("relay list", partner_jobs.connected))

    async def scenario():
        client = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        assert client.sio.connected
        assert sorted(done) == ["newest fix", "relay list"]  # each read, after both had started
        assert presence.local[rooms.PARTNER][partner.user.pk] == 1
        await client.close()

    run(scenario())


@pytest.mark.parametrize("fails", ["newest fix", "relay list"])
def test_a_failed_hook_cancels_the_others_and_refuses_the_connect(live_server_url, partner, monkeypatch, fails):
    """One hook's read fails while the other's waits, whichever runs in the connect's own task: the
    waiting one is cancelled (nothing after its wait runs), the connect is refused ``UNAVAILABLE`` at
    once and the partner not counted."""
    seen: list[str] = []

    async def failing(namespace, sid, session):
        await _until(lambda: "waiting" in seen)
        raise Unavailable("the database did not answer")

    async def waiting(namespace, sid, session):
        seen.append("waiting")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("read")

    failing_part, waiting_part = (partner_part, partner_jobs) if fails == "newest fix" else (partner_jobs, partner_part)
    monkeypatch.setattr(failing_part, "connected", failing)
    monkeypatch.setattr(waiting_part, "connected", waiting)

    async def scenario():
        client = Client(live_server_url, "/partner")
        started = time.monotonic()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(token_for(partner.user), timeout=5)
        assert time.monotonic() - started < 4  # answered, not given up on by the client
        await client.close()
        assert client.connect_error["data"] == {"code": "UNAVAILABLE"}
        await wait_until(lambda: "cancelled" in seen, what="the waiting hook cancelled")
        assert seen == ["waiting", "cancelled"]
        assert partner.user.pk not in presence.local[rooms.PARTNER]

    run(scenario())
