"""A connect that read its user before an access change and re-reads after joining the user room
(``access_changed_since``): the user deactivated, the re-read refuses the connect. What was sent to
the user room during the re-read was held for the connect (``recovering``) and released at its
end, refused or not: a raw client read a notification of a user deactivated before it was sent."""

import asyncio
import json
import threading

import aiohttp
import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.contrib.auth import get_user_model

from config import rooms
from config.realtime import identity as identity_module
from config.realtime.server import sio
from messaging.notify import notification_create
from tests.live import run, token_for, wait_until
from tests.realtime.test_access_hold import control, dispatch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def paced_reads():
    """The identity loader once ``armed``: read 1 (the connect's) waits for ``proceed``; read 2 (its
    re-read) is made, then waits for ``go``."""
    original = identity_module._identity[0]
    armed, proceed, reread, go = (threading.Event() for _ in range(4))
    count = [0]

    def loader(user_ids):
        found = original(user_ids)
        if armed.is_set():
            count[0] += 1
            if count[0] == 1:
                proceed.wait(10)
            elif count[0] == 2:
                reread.set()
                go.wait(10)
        return found

    identity_module.set_identity_loader(loader)
    try:
        yield armed, proceed, reread, go
    finally:
        proceed.set()
        go.set()
        identity_module.set_identity_loader(original)


def test_a_connect_refused_at_its_reread_gets_nothing_sent_meanwhile(live_server_url, customer, paced_reads):
    armed, proceed, reread, go = paced_reads
    url = live_server_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    token = token_for(customer)

    async def scenario() -> None:
        frames: list[str] = []
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:

            async def read() -> None:
                async for message in ws:
                    if message.data == "2":
                        await ws.send_str("3")
                    else:
                        frames.append(message.data)

            reader = asyncio.create_task(read())
            await wait_until(lambda: any(f.startswith("0{") for f in frames), 5, "the open packet")
            armed.set()
            await ws.send_str(f"40{rooms.CUSTOMER}," + json.dumps({"token": token}))
            await wait_until(lambda: sio.environ, 5, "the connect under way")
            await asyncio.sleep(0.3)  # its first read made (active), not returned
            users = get_user_model().objects
            await sync_to_async(users.filter(pk=customer.pk).update)(is_active=False)  # no signal
            dispatch(control(customer))  # reaches no socket: the connect is not in the user room yet
            await asyncio.sleep(0.3)
            proceed.set()
            assert await asyncio.to_thread(reread.wait, 5)  # in the user room, re-reading
            await sync_to_async(notification_create)(user_id=customer.pk, type="promo", title="after", body="")
            await asyncio.sleep(0.3)
            go.set()
            await wait_until(lambda: any(f.startswith(f"44{rooms.CUSTOMER},") for f in frames), 5, "the refusal")
            await asyncio.sleep(0.3)
            reader.cancel()
        leaked = [f for f in frames if "notification:new" in f]
        assert not leaked, frames
        await wait_until(lambda: not sio.environ, what="the socket's end")

    run(scenario())
