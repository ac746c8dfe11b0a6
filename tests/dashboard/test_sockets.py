"""/admin over the real server: stats, monitoring, ops events."""

import pytest
from channels.db import database_sync_to_async as sync_to_async

from bookings import services
from partners.accounts import partner_register
from partners.services import kyc_submit
from tests.factories import book
from tests.live import Client, run, token_for

pytestmark = pytest.mark.django_db(transaction=True)

STATS_KEYS = {"bookings", "revenue", "partners", "customers", "generatedAt"}


def test_admin_sees_stats_bookings_signups_and_kyc(live_server_url, staff, customer, service):
    async def scenario():
        a = await Client(live_server_url, "/admin").connect(token_for(staff))
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        ack = await a.call("request:stats")
        assert ack["ok"] and set(ack["stats"]) == STATS_KEYS
        assert set(ack["stats"]["bookings"]) == {"total", "today", "active", "byStatus"}
        assert set(ack["stats"]["partners"]) == {"total", "online", "available", "pendingKyc"}
        assert ack["stats"]["customers"]["online"] >= 1
        [pushed] = await a.wait_for("dashboard:stats_update")
        assert set(pushed) == STATS_KEYS

        ack = await a.call("monitor:bookings")
        assert ack["ok"] and ack["bookings"] == []
        booking = await sync_to_async(book)(customer, service)
        [created] = await a.wait_for("booking:created")
        assert created["id"] == str(booking.pk) and created["status"] == "PENDING"
        assert created["bookingNumber"] == booking.number
        # the figures changed: a push follows within a second or so
        await a.wait_for("dashboard:stats_update", where=lambda s: s["bookings"]["total"] == 1)

        await sync_to_async(services.booking_cancel)(booking_id=booking.pk, actor=staff, reason="ops")
        # nobody was eligible: staff see it flagged, then cancelled
        [flagged] = await a.wait_for("booking:updated", where=lambda b: b["status"] == "PENDING")
        assert flagged["dispatch"] == {"attempts": 0, "state": "unassigned"}
        [updated] = await a.wait_for("booking:updated", where=lambda b: b["status"] == "CANCELLED")
        assert updated["cancelledBy"] == "staff" and updated["dispatch"]["state"] == "done"

        partner = await sync_to_async(partner_register)(
            username="newbie", password="secret123", name="Newbie", phone="+91-1", services=[service.pk]
        )
        [registered] = await a.wait_for("partner:registered")
        assert registered == {
            "partnerId": str(partner.pk),
            "name": "Newbie",
            "phone": "+91-1",
            "services": [str(service.pk)],
            "createdAt": registered["createdAt"],
        }
        submission = await sync_to_async(kyc_submit)(partner=partner, document_type="PAN", document_number="ABCDE1234F")
        [kyc] = await a.wait_for("kyc:submitted")
        assert kyc["submissionId"] == str(submission.pk) and kyc["partnerName"] == "Newbie"
        assert kyc["documentType"] == "PAN" and set(kyc) == {
            "submissionId",
            "partnerId",
            "partnerName",
            "documentType",
            "submittedAt",
        }
        await a.close()
        await c.close()

    run(scenario())
