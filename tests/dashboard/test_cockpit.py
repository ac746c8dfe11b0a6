"""The live dashboard in a real browser (Debian's Chromium, driven by Playwright)."""

import asyncio
import concurrent.futures
import json
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.factories import BookingFactory, PartnerFactory, StaffFactory, UserFactory
from tests.live import staff_page, token_for

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "cockpit.png"
VIEWPORT = {"width": 1280, "height": 1000}
DASHBOARD = "/admin/dashboard/"


def create_booking(url: str, customer, service, token: str | None = None) -> dict:
    body = {
        "serviceId": service.pk,
        "scheduledAt": "2030-01-01T10:00:00Z",
        "address": "7 Cockpit Lane",
        "latitude": 28.62,
        "longitude": 77.21,
    }
    request = urllib.request.Request(
        url + "/api/bookings/",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token or token_for(customer)}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_cockpit_shows_a_new_booking_live(live_server_url, service):
    from playwright.sync_api import expect

    StaffFactory(username="opsview", password="password123")
    customer = UserFactory(username="livecustomer")
    PartnerFactory(services=[service], last_latitude=28.6, last_longitude=77.2)
    # A booking nobody could take: flagged for staff, listed first, with the action that resolves it.
    stuck = BookingFactory(customer=UserFactory(), service=service, status="PENDING", dispatch_state="unassigned")

    with staff_page(live_server_url, "opsview", viewport=VIEWPORT) as (page, problems):
        page.click("#cockpit-link")  # linked from the admin index
        expect(page.locator("#conn")).to_have_text("connected", timeout=5000)
        expect(page.locator("#c-bookings-total")).not_to_have_text("-", timeout=5000)
        total_before = int(page.locator("#c-bookings-total").inner_text())

        booking = create_booking(live_server_url, customer, service)
        row = page.locator(f"#bookings tr[data-booking='{booking['id']}']")
        expect(row).to_be_visible(timeout=2000)  # within 2 s of the REST call
        expect(row.locator("a")).to_have_attribute("href", f"/admin/bookings/booking/{booking['id']}/change/")
        expect(page.locator("#c-bookings-total")).to_have_text(str(total_before + 1), timeout=3000)
        expect(page.locator("#map circle")).not_to_have_count(0, timeout=5000)  # the partner, drawn by the page
        # both open bookings (the stuck one, the new one), once the map redraws after booking:created
        expect(page.locator("#map rect")).to_have_count(2, timeout=5000)
        expect(page.locator("#chart-legend")).to_contain_text("PENDING (1)", timeout=5000)
        flagged = page.locator("#bookings tbody tr").first  # what needs staff comes first
        expect(flagged).to_have_attribute("data-booking", str(stuck.pk))
        expect(flagged.locator("td.needs")).to_contain_text("unassigned")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        flagged.locator("button[data-action=cancel]").click()  # the dashboard's button: the REST endpoint
        expect(page.locator(f"#bookings tr[data-booking='{stuck.pk}']")).to_have_count(0, timeout=5000)
    stuck.refresh_from_db()
    assert stuck.status == "CANCELLED" and stuck.cancelled_by.username == "opsview"
    assert not problems, problems


def test_an_alert_from_a_customer_socket_tops_the_cockpit_until_staff_acknowledge_it(live_server_url, customer):
    """Contract 10.3: an open alert shows above everything else (loaded at connect, then live); the
    staff member's button acknowledges it and it leaves; the customer hears it; no console error."""
    from playwright.sync_api import expect

    from messaging import safety
    from messaging.models import SafetyAlert
    from tests.live import Client, eventually, run

    StaffFactory(username="opsalert", password="password123", first_name="Asha")
    older, _ = safety.safety_alert_raise(user=UserFactory(first_name="Early"), role="customer")  # open before

    pressed = threading.Event()
    answers: dict = {}

    async def phone() -> dict:
        """The customer's phone, on a loop of its own (Playwright's runs in this thread): it presses
        SOS once the page shows the older alert, then waits for the acknowledgement."""
        client = await Client(live_server_url, "/customer").connect(token_for(customer))
        await asyncio.to_thread(pressed.wait, 20)
        answers["ack"] = await client.call("safety:alert", {"latitude": 28.61, "longitude": 77.23, "note": "Stranger"})
        [told] = await client.wait_for("safety:acknowledged", timeout=20)
        await client.close()
        return told

    with staff_page(live_server_url, "opsalert", next=DASHBOARD, viewport=VIEWPORT) as (page, problems):
        expect(page.locator("#conn")).to_have_text("connected", timeout=5000)
        expect(page.locator(f"#alerts li[data-alert='{older.pk}']")).to_be_visible(timeout=5000)  # the REST list

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            heard = pool.submit(run, phone())
            pressed.set()
            eventually(lambda: "ack" in answers or heard.done(), what="the press")
            ack = answers["ack"]
            assert ack["ok"], ack
            item = page.locator(f"#alerts li[data-alert='{ack['alertId']}']")
            expect(item).to_be_visible(timeout=2000)  # live
            expect(item).to_contain_text("SOS from Alice (customer)")
            expect(item).to_contain_text("Stranger")
            # Above everything else on the page: the counters, the bookings.
            top = page.locator("#alerts").bounding_box()["y"]
            assert top < page.locator("#cockpit .counters").bounding_box()["y"]
            assert top < page.locator("#bookings").bounding_box()["y"]

            item.locator("button[data-action=acknowledge]").click()
            expect(item).to_have_count(0, timeout=5000)
            expect(page.locator(f"#alerts li[data-alert='{older.pk}']")).to_be_visible()  # the other stays
            page.locator(f"#alerts li[data-alert='{older.pk}'] button").click()
            expect(page.locator("#alerts")).to_be_hidden(timeout=5000)  # nothing open: the banner goes
            told = heard.result(timeout=30)

    assert told["alertId"] == ack["alertId"] and told["by"]["name"] == "Asha"
    assert SafetyAlert.objects.get(pk=ack["alertId"]).acknowledged_by.username == "opsalert"
    assert not problems, problems


def test_cockpit_lists_a_far_arrival_first_with_the_buttons_that_resolve_it(live_server_url, service):
    """Contract 10.3: ``attention: "arrived_far"`` shows like the other flags; Complete ends it."""
    from django.utils import timezone
    from playwright.sync_api import expect

    StaffFactory(username="opsfar", password="password123")
    partner = PartnerFactory(services=[service])
    far = BookingFactory(
        service=service,
        partner=partner,
        status="PARTNER_ARRIVED",
        arrived_far_at=timezone.now(),
        arrived_far_meters=2000,
    )
    BookingFactory(service=service, status="PENDING")  # a newer booking that needs nobody

    with staff_page(live_server_url, "opsfar", next=DASHBOARD, viewport=VIEWPORT) as (page, problems):
        expect(page.locator("#conn")).to_have_text("connected", timeout=5000)
        flagged = page.locator("#bookings tbody tr").first
        expect(flagged).to_have_attribute("data-booking", str(far.pk), timeout=5000)
        expect(flagged.locator("td.needs")).to_contain_text("arrived far")
        expect(flagged.locator("button")).to_have_count(2)
        flagged.locator("button[data-action=complete]").click()
        expect(page.locator(f"#bookings tr[data-booking='{far.pk}']")).to_have_count(0, timeout=5000)
    far.refresh_from_db()
    assert far.status == "COMPLETED"  # and with it the flag: only an active job is flagged
    assert not problems, problems


def test_an_alert_that_arrives_while_the_open_list_is_read_stays_on_top(live_server_url, customer):
    """The open list is read at each connect: an SOS that comes live while it is on its way (the
    list read before it was raised) stays on the page; it does not wait for its escalation."""
    import time

    from playwright.sync_api import expect

    from messaging import safety
    from tests.live import Client, eventually, run

    StaffFactory(username="opsrace", password="password123")
    older, _ = safety.safety_alert_raise(user=UserFactory(first_name="Early"), role="customer")
    pressed = threading.Event()
    answers: dict = {}

    async def phone() -> None:
        client = await Client(live_server_url, "/customer").connect(token_for(customer))
        await asyncio.to_thread(pressed.wait, 20)
        answers["ack"] = await client.call("safety:alert", {"note": "Help"})
        await client.close()

    def hold_the_first_list(route) -> None:
        """The list as the server read it before the press, handed to the page after the live event."""
        response = route.fetch()
        pressed.set()
        eventually(lambda: "ack" in answers, what="the press")
        time.sleep(1)  # the live safety:alert reaches the page first
        route.fulfill(response=response)

    def hold(page) -> None:
        page.route("**/api/safety/", hold_the_first_list, times=1)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        heard = pool.submit(run, phone())
        with staff_page(live_server_url, "opsrace", next=DASHBOARD, viewport=VIEWPORT, before_login=hold) as (
            page,
            problems,
        ):
            expect(page.locator("#conn")).to_have_text("connected", timeout=5000)
            expect(page.locator(f"#alerts li[data-alert='{older.pk}']")).to_be_visible(timeout=10000)  # the list
            heard.result(timeout=20)
            expect(page.locator(f"#alerts li[data-alert='{answers['ack']['alertId']}']")).to_be_visible(timeout=2000)
    assert not problems, problems
