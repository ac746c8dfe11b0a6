"""The admin's booking page draws the job's trace (Debian's Chromium, driven by Playwright): the
route, a replay that moves a marker, the timeline; with the map tiles unreachable."""

import re
from pathlib import Path

import pytest

from bookings.models import BookingStatus as S
from messaging.models import SafetyAlert
from messaging.safety import safety_alert_raise
from tests.dashboard.trace_setup import job
from tests.factories import PartnerFactory, ServiceFactory, StaffFactory, UserFactory
from tests.live import staff_page

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOT = Path(__file__).resolve().parents[2] / "bench" / "results" / "trace-map.png"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, every tile fails


def vertices(d: str | None) -> int:
    """How many points an SVG path's ``d`` draws (Leaflet writes ``M x y L x y ...``)."""
    return len(re.findall(r"[ML]", d or ""))


def a_tile(message) -> bool:
    """The browser reports each tile it could not fetch (expected); any other console error is a problem."""
    return message.location.get("url", "").startswith(NOWHERE)


def test_the_admin_booking_page_draws_and_replays_a_finished_jobs_trace(live_server_url, settings):
    from playwright.sync_api import expect

    settings.MAP_TILE_URL = NOWHERE + "/{z}/{x}/{y}.png"
    StaffFactory(username="traceview", password="password123", is_superuser=True)
    service = ServiceFactory()
    partner = PartnerFactory(services=[service])
    booking, when, inside = job(UserFactory(), partner, service)
    alert, _ = safety_alert_raise(user=partner.user, role="partner", latitude=28.61, longitude=77.21, note="Dog")
    SafetyAlert.objects.filter(pk=alert.pk).update(booking=booking, raised_at=when[S.PARTNER_ARRIVED])
    viewport = {"width": 1280, "height": 1200}
    with staff_page(live_server_url, "traceview", viewport=viewport, expected=a_tile) as (page, problems):
        page.wait_for_load_state("networkidle")  # the index's own requests done before we count failures
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{live_server_url}/admin/bookings/booking/{booking.pk}/change/")

        expect(page.locator("#trace-status")).to_contain_text(f"{len(inside)} points", timeout=5000)
        route = page.locator("#trace-map path.trace-route")
        expect(route).to_have_count(1)
        assert vertices(route.get_attribute("d")) > 1
        # the timeline: every status change and both messages, in order
        entries = page.locator("#trace-timeline li")
        expect(page.locator("#trace-timeline li.kind-status")).to_have_count(6)
        expect(page.locator("#trace-timeline li.kind-message")).to_have_count(2)
        expect(page.locator("#trace-timeline li.kind-alert")).to_contain_text("SOS by the partner")
        expect(page.locator("#trace-map path.trace-alert")).to_have_count(1)  # where it was raised
        expect(entries.nth(2)).to_contain_text("Gate code is 4321")
        expect(entries.last).to_contain_text("COMPLETED")

        marker = page.locator("#trace-map path.trace-marker")
        start = marker.get_attribute("d")
        page.locator("#trace-slider").fill(str(len(inside) // 2))  # the slider moves it
        halfway = marker.get_attribute("d")
        assert halfway != start
        expect(page.locator("#trace-timeline li.current")).to_have_count(1)
        expect(page.locator("#trace-time")).to_contain_text(f"({len(inside) // 2 + 1}/{len(inside)})")

        page.locator("#trace-slider").fill("0")
        page.click("#trace-play")  # so does the replay
        expect(page.locator("#trace-play")).to_have_text("Pause")
        page.wait_for_function("Number(document.getElementById('trace-slider').value) > 10", timeout=5000)
        assert marker.get_attribute("d") != start
        page.click("#trace-play")
        expect(page.locator("#trace-play")).to_have_text("Play")
        paused = page.locator("#trace-slider").input_value()
        page.wait_for_timeout(300)
        assert page.locator("#trace-slider").input_value() == paused  # paused stays put

        entries.last.click()  # the completion's entry takes the replay to the route's end
        expect(page.locator("#trace-slider")).to_have_value(str(len(inside) - 1))
        expect(entries.last).to_have_class(re.compile(r"\bcurrent\b"))

        assert failed and all(url.startswith(NOWHERE) for url in failed)  # the tiles were asked for, and failed
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert not problems, problems


def test_a_tile_url_leaflet_cannot_fill_and_html_in_what_people_wrote_leave_the_trace_whole(live_server_url, settings):
    """A careless operator's MAP_TILE_URL (a placeholder left unfilled: Leaflet throws on every
    tile) draws no tiles but the route and timeline; what customers, partners and staff typed is
    shown as text, never run."""
    from playwright.sync_api import expect

    from bookings.models import BookingStatusChange
    from messaging.models import Message

    settings.MAP_TILE_URL = NOWHERE + "/{z}/{x}/{y}.png?key={apikey}"
    StaffFactory(username="traceview", password="password123", is_superuser=True)
    service = ServiceFactory()
    partner = PartnerFactory(services=[service])
    booking, when, inside = job(UserFactory(), partner, service)
    html = '<img src=x onerror="window.pwned=1">'
    Message.objects.filter(booking=booking).update(body=html)
    BookingStatusChange.objects.filter(booking=booking, to_status=S.COMPLETED).update(note=html)
    alert, _ = safety_alert_raise(user=partner.user, role="partner", latitude=28.61, longitude=77.21, note=html)
    SafetyAlert.objects.filter(pk=alert.pk).update(booking=booking, raised_at=when[S.PARTNER_ARRIVED])
    with staff_page(live_server_url, "traceview") as (page, problems):
        page.wait_for_load_state("networkidle")
        page.goto(f"{live_server_url}/admin/bookings/booking/{booking.pk}/change/")
        expect(page.locator("#trace-status")).to_contain_text(f"{len(inside)} points", timeout=5000)
        expect(page.locator("#trace-map path.trace-route")).to_have_count(1)
        expect(page.locator("#trace-timeline li.kind-message").first).to_contain_text(html)
        expect(page.locator("#trace-timeline li.kind-alert")).to_contain_text(html)
        expect(page.locator("#trace-timeline li.kind-status").last).to_contain_text(html)
        assert page.locator("#trace-timeline img").count() == 0 and page.evaluate("window.pwned") is None
    assert not problems, problems


@pytest.mark.parametrize(
    ("url", "drawn"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", True),
        ("https://{s}.tiles.example/{z}/{x}/{-y}{r}.png", True),
        ("https://tiles.example/{z}/{x}/{y}.png?key={apikey}", False),
        ("https://tiles.example/{ z }/{x}/{y}.png", False),  # Leaflet reads "z " there
        ("", False),
    ],
)
def test_the_tiles_are_drawn_only_from_a_url_leaflet_can_fill(settings, url, drawn):
    from dashboard.templatetags.trace_map import tile_url

    settings.MAP_TILE_URL = url
    assert tile_url() == (url if drawn else "")
