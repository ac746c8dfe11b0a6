"""/admin over the real server: stats, monitoring, ops events."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.utils import timezone

from bookings import services
from bookings.models import Booking
from bookings.models import BookingStatus as S
from partners.accounts import partner_register
from partners.services import kyc_submit
from tests.factories import BookingFactory, book
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


def test_monitor_bookings_acks_the_newest_200_open_bookings_newest_first(live_server_url, staff, customer, service):
    # 250 open bookings a minute apart (none needs staff, so none is pulled to the top), and
    # newer finished ones, which are not open.
    start = timezone.now() - timedelta(days=1)
    made = []
    for i in range(250):
        booking = BookingFactory(customer=customer, service=service)
        Booking.objects.filter(pk=booking.pk).update(created_at=start + timedelta(minutes=i))
        made.append(str(booking.pk))
    for status in (S.COMPLETED, S.CANCELLED):
        finished = BookingFactory(customer=customer, service=service, status=status)
        Booking.objects.filter(pk=finished.pk).update(created_at=timezone.now())

    async def scenario() -> list[dict]:
        a = await Client(live_server_url, "/admin").connect(token_for(staff))
        try:
            ack = await a.call("monitor:bookings")
        finally:
            await a.close()
        assert ack["ok"]
        return ack["bookings"]

    listed = run(scenario())
    assert [b["id"] for b in listed] == made[::-1][:200]  # the newest 200, newest first; the oldest 50 absent
    assert {b["status"] for b in listed} == {"PENDING"}
