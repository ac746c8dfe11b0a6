"""Staff cannot be found or messaged unasked (contract 10.2), probed with real sockets.

A customer or partner writes to (or shows typing to) a staff member only after that staff
member wrote to them; before, every staff id answers exactly as an id nobody has.
"""

import pytest
from django.contrib.auth import get_user_model

from messaging.models import Message
from tests.factories import StaffFactory, UserFactory
from tests.live import Client, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_cannot_be_found_or_messaged_unasked(live_server_url, customer, partner, staff):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    other_staff = StaffFactory()
    nobody = get_user_model().objects.order_by("-pk").first().pk + 1000
    staff_ids = (root.pk, staff.pk, other_staff.pk)

    async def probe(client: Client, recipient: int) -> list:
        sent = await client.call("message:send", {"recipientId": str(recipient), "message": "hello?"})
        typing = await client.call("typing:start", str(recipient))
        return [sent.get("error"), typing.get("error")]

    async def scenario() -> None:
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        for client in (c, p):
            unknown = await probe(client, nobody)
            assert unknown[0]["code"] == unknown[1]["code"] == "FORBIDDEN"
            for recipient in staff_ids:
                assert await probe(client, recipient) == unknown, recipient  # the very same answer

        # Once a staff member writes, the customer may answer them, and only them.
        a = await Client(live_server_url, "/admin").connect(token_for(staff))
        assert (await a.call("message:send", {"recipientId": str(customer.pk), "message": "Ops here"}))["ok"]
        await c.wait_for("message:received")
        reply = await c.call("message:send", {"recipientId": str(staff.pk), "message": "Thanks"})
        assert reply["ok"]
        assert (await c.call("typing:start", str(staff.pk)))["ok"]
        [back] = await a.wait_for("message:received")
        assert back["message"] == "Thanks"
        assert await probe(c, root.pk) == await probe(c, nobody)  # the others are still unseen
        assert await probe(p, staff.pk) == await probe(p, nobody)  # and the partner was not asked
        for client in (a, c, p):
            await client.close()

    run(scenario())
    assert sorted(Message.objects.values_list("body", flat=True)) == ["Ops here", "Thanks"]
