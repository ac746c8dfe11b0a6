"""Events a namespace does not declare, sent to it: another namespace's events, names past
the length bound. Each is answered the contract's way (``VALIDATION_ERROR``, by the ack when
one is asked for, else by one ``error`` event), runs no handler, and the socket stays up."""

import json

import pytest

from config import rooms
from config.realtime.inbound import MAX_EVENT_NAME
from config.realtime.server import sio
from tests.live import RawSocket, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_of_other_namespaces_and_huge_names_are_refused_and_the_socket_stays(
    live_server_url, customer, partner, staff, settings
):
    settings.RATE_LIMITS = {key: (1_000_000, 1.0) for key in settings.RATE_LIMITS}
    users = {rooms.CUSTOMER: customer, rooms.PARTNER: partner.user, rooms.ADMIN: staff}
    declared = {ns: set(sio.namespace_handlers[ns].client_events) for ns in users}

    async def scenario() -> None:
        for namespace, user in users.items():
            foreign = sorted(set().union(*(declared[n] for n in users if n != namespace)) - declared[namespace])
            names = [*foreign, "x" * (MAX_EVENT_NAME + 1), "y" * 20_000]
            raw = await RawSocket(live_server_url, namespace).connect(token_for(user))
            for name in names:
                answer = await raw.call(name, {})
                assert answer["ok"] is False and answer["error"]["code"] == "VALIDATION_ERROR", (namespace, name[:80])
                await raw.send(f"2{namespace}," + json.dumps([name, {}]))  # no ack asked: one error event
                frame = await raw.next(lambda f, ns=namespace: f.startswith(f"42{ns},") and '"error"' in f)
                error = json.loads(frame[len(namespace) + 3 :])[1]
                assert error["code"] == "VALIDATION_ERROR" and error["event"] == name[:MAX_EVENT_NAME]
                assert raw.open, (namespace, name[:80])
            # Still connected and answering.
            assert "error" in await raw.call("no:such:event", {}) and raw.open
            await raw.close()
            assert foreign, f"{namespace}: no foreign event tried"

    run(scenario())
