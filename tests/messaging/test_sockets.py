"""Chat across namespaces: messages, duplicates, receipts, typing, notifications, rate limits."""

import pytest

from bookings.models import BookingStatus as S
from config.realtime.namespace import ANSWERS_PAST_LIMIT
from messaging.models import Message, Notification
from tests.factories import BookingFactory, PartnerFactory
from tests.live import Client, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def linked(customer, partner, service):
    return BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED, service=service)


def test_customer_and_partner_chat_with_receipts_and_typing(live_server_url, customer, partner, linked):
    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        ack = await c.call(
            "message:send",
            {
                "recipientId": str(partner.pk),
                "message": "Hello, when will you arrive?",
                "bookingId": str(linked.pk),
                "clientMessageId": "c-1",
            },
        )
        assert ack["ok"] and ack["clientMessageId"] == "c-1" and ack["duplicate"] is False
        [sent] = await c.wait_for("message:sent")
        assert sent == {"id": ack["id"], "createdAt": ack["createdAt"], "clientMessageId": "c-1"}
        [got] = await p.wait_for("message:received")
        assert got["id"] == ack["id"] and got["message"] == "Hello, when will you arrive?"
        assert got["senderId"] == str(customer.pk) and got["recipientId"] == str(partner.pk)
        assert got["bookingId"] == str(linked.pk)
        assert got["sender"] == {"id": str(customer.pk), "name": "Alice", "role": "customer"}

        # resend after a "reconnect": same id, nothing new delivered
        again = await c.call(
            "message:send",
            {
                "recipientId": str(partner.pk),
                "message": "Hello, when will you arrive?",
                "bookingId": str(linked.pk),
                "clientMessageId": "c-1",
            },
        )
        assert again["id"] == ack["id"] and again["duplicate"] is True
        # A new message after it is the barrier: a second copy of the first would arrive before it.
        after = await c.call(
            "message:send", {"recipientId": str(partner.pk), "message": "On my way?", "bookingId": str(linked.pk)}
        )
        await p.wait_for("message:received", where=lambda m: m["id"] == after["id"])
        assert [m["id"] for m in p.events["message:received"]] == [ack["id"], after["id"]]

        # receipts: only the recipient
        bad = await c.call("message:mark_read", ack["id"])
        assert bad["error"]["code"] == "FORBIDDEN"
        read = await p.call("message:mark_read", ack["id"])
        assert read["ok"] and read["readerId"] == str(partner.pk)
        [receipt] = await c.wait_for("message:read")
        assert receipt["id"] == ack["id"] and receipt["readerId"] == str(partner.pk) and receipt["readAt"]

        # typing, and its auto-clear
        await p.call("typing:start", str(customer.pk))
        [on] = await c.wait_for("typing:indicator")
        assert on == {"userId": str(partner.pk), "typing": True}
        offs = await c.wait_for("typing:indicator", count=2, timeout=4)
        assert offs[1] == {"userId": str(partner.pk), "typing": False}

        # typing then disconnect: the indicator goes off
        await p.call("typing:start", str(customer.pk))
        await c.wait_for("typing:indicator", count=3)
        await p.close()
        states = await c.wait_for("typing:indicator", count=4)
        assert states[3]["typing"] is False
        await c.close()

    run(scenario())
    assert Message.objects.filter(client_message_id="c-1").count() == 1


def test_forbidden_pairs(live_server_url, customer, other_customer, partner, service):
    stranger_partner = PartnerFactory(services=[service])
    BookingFactory(customer=other_customer, partner=stranger_partner, status=S.PARTNER_ACCEPTED)
    done = BookingFactory(customer=customer, partner=partner, status=S.CANCELLED)

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        for recipient in (other_customer.pk, stranger_partner.pk, partner.pk):
            ack = await c.call("message:send", {"recipientId": str(recipient), "message": "hi"})
            assert ack["error"]["code"] == "FORBIDDEN", recipient
        ack = await p.call("message:send", {"recipientId": str(other_customer.pk), "message": "hi"})
        assert ack["error"]["code"] == "FORBIDDEN"
        ack = await c.call("message:send", {"recipientId": str(partner.pk), "message": "hi", "bookingId": str(done.pk)})
        assert ack["error"]["code"] == "FORBIDDEN"
        ack = await c.call("typing:start", str(other_customer.pk))
        assert ack["error"]["code"] == "FORBIDDEN"
        ack = await c.call("message:send", {"recipientId": str(partner.pk), "message": ""})
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        ack = await c.call("message:send", {"recipientId": str(partner.pk), "message": "x" * 2001})
        assert ack["error"]["code"] == "VALIDATION_ERROR"
        await c.close()
        await p.close()

    run(scenario())
    assert Message.objects.count() == 0


def test_offline_recipient_gets_a_notification_and_history(live_server_url, api_as, customer, partner, linked):
    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        for i in range(3):
            ack = await c.call("message:send", {"recipientId": str(partner.pk), "message": f"m{i}"})
            assert ack["ok"]
        await c.close()

    run(scenario())
    note = Notification.objects.filter(user=partner.user, type="message").order_by("id").first()
    assert note is not None and note.body == "m0"
    api = api_as(partner.user)
    first = Message.objects.order_by("id").first()
    page = api.get("/api/messages/", {"with": customer.pk}).json()
    assert [m["message"] for m in page["results"]] == ["m2", "m1", "m0"]
    missed = api.get("/api/messages/", {"with": customer.pk, "after": first.pk}).json()
    assert [m["message"] for m in missed["results"]] == ["m1", "m2"]
    marked = api.post("/api/messages/read/", {"with": customer.pk}, format="json").json()
    assert marked == {"marked": 3}
    assert Message.objects.filter(read_at__isnull=True).count() == 0
    notes = api.get("/api/notifications/").json()
    assert notes["unreadCount"] >= 1 and notes["results"][0]["type"] == "message"


def test_staff_message_anyone_in_admin(live_server_url, staff, customer):
    async def scenario():
        a = await Client(live_server_url, "/admin").connect(token_for(staff))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        ack = await a.call("message:send", {"recipientId": str(customer.pk), "message": "Ops here"})
        assert ack["ok"]
        [got] = await c.wait_for("message:received")
        assert got["sender"]["role"] == "staff"
        reply = await c.call("message:send", {"recipientId": str(staff.pk), "message": "Thanks"})
        assert reply["ok"]
        [back] = await a.wait_for("message:received")
        assert back["message"] == "Thanks"
        await a.close()
        await c.close()

    run(scenario())


def test_rate_limit(live_server_url, customer, partner, linked, settings):
    # An hour-long window: the count cannot straddle a window boundary mid-test.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "message:send": (20, 3600.0)}

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        codes = []
        # Past the limit a socket hears ANSWERS_PAST_LIMIT refusals a window, then nothing.
        for i in range(20 + ANSWERS_PAST_LIMIT):
            ack = await c.call("message:send", {"recipientId": str(partner.pk), "message": f"spam {i}"})
            codes.append("ok" if ack["ok"] else ack["error"]["code"])
        assert codes == ["ok"] * 20 + ["RATE_LIMITED"] * ANSWERS_PAST_LIMIT
        assert c.sio.connected
        await c.close()

    run(scenario())
    assert Message.objects.count() == 20
