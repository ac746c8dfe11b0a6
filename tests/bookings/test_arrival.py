"""Arrival (contract 10.3), in the services: partner:nearby claimed once per booking, and a partner
who sets PARTNER_ARRIVED far from the place flagged for staff. The real servers' side (another
process, reconnects, the buffered position) is in tests/realtime/test_arrival.py."""

import asyncio

import pytest

from bookings import arrival, geo, selectors, services
from bookings.models import Booking
from bookings.models import BookingStatus as S
from bookings.shapes import booking_data
from partners.geo import METERS_PER_DEGREE, distance_m
from partners.services import partner_suspend
from tests.conftest import events_named
from tests.factories import CITY, BookingFactory, PartnerFactory

pytestmark = pytest.mark.django_db


def north(meters: float) -> tuple[float, float]:
    """A point ``meters`` due north of the city centre (where the factories put bookings)."""
    return CITY[0] + meters / METERS_PER_DEGREE, CITY[1]


def fresh(booking: Booking) -> Booking:
    return Booking.objects.select_related("service", "customer", "partner").get(pk=booking.pk)


def place_partner(partner, meters: float) -> None:
    partner.last_latitude, partner.last_longitude = north(meters)
    partner.save(update_fields=["last_latitude", "last_longitude"])


def test_arrived_2_km_away_is_recorded_and_flagged_for_staff(customer, partner, emitted):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    place_partner(partner, 2000)
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    booking = fresh(booking)
    away = round(distance_m(*north(2000), *CITY))
    assert away == 2000 and booking.arrived_far_meters == away and booking.arrived_far_at is not None
    assert booking_data(booking)["attention"] == "arrived_far"
    assert list(selectors.bookings_needing_staff()) == [booking]  # the dashboard's first rows
    [monitored] = [e["data"][0] for e in events_named(emitted, "booking:updated")]  # staff see it live
    assert (monitored["id"], monitored["status"], monitored["attention"]) == (
        str(booking.pk),
        "PARTNER_ARRIVED",
        "arrived_far",
    )


def test_arrived_within_1_km_or_with_no_known_position_is_not_flagged(customer, partner, service):
    near = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    place_partner(partner, 900)
    services.booking_update_status(booking_id=near.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    near = fresh(near)
    assert (near.arrived_far_at, near.arrived_far_meters) == (None, None)
    assert booking_data(near)["attention"] is None
    unknown = PartnerFactory(services=[service], last_latitude=None, last_longitude=None)
    nowhere = BookingFactory(customer=customer, partner=unknown, status=S.PARTNER_ACCEPTED)
    services.booking_update_status(booking_id=nowhere.pk, partner_user=unknown.user, status=S.PARTNER_ARRIVED)
    assert booking_data(fresh(nowhere))["attention"] is None
    assert list(selectors.bookings_needing_staff()) == []


def test_the_far_arrival_flag_clears_when_the_partner_comes_near_or_the_booking_ends(customer, partner, emitted):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    place_partner(partner, 5000)
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    assert booking_data(fresh(booking))["attention"] == "arrived_far"
    # The partner walks in afterwards: partner:nearby, and staff's monitor drops the flag.
    assert arrival.nearby_claim(booking_id=booking.pk, partner_id=partner.pk, meters=40, eta_seconds=7) is True
    booking = fresh(booking)
    assert booking.arrived_far_meters == 5000  # still recorded (the job's trace shows it)
    assert booking_data(booking)["attention"] is None and list(selectors.bookings_needing_staff()) == []
    assert [e["data"][0] for e in events_named(emitted, "partner:nearby")] == [
        {"bookingId": str(booking.pk), "distanceMeters": 40, "etaSeconds": 7}
    ]
    assert events_named(emitted, "booking:updated")[-1]["data"][0]["attention"] is None
    # Near first, far later: the flag stays until the booking ends.
    other = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    assert arrival.nearby_claim(booking_id=other.pk, partner_id=partner.pk, meters=100, eta_seconds=18) is True
    services.booking_update_status(booking_id=other.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    assert booking_data(fresh(other))["attention"] == "arrived_far"
    for status in (S.IN_PROGRESS, S.COMPLETED):
        services.booking_update_status(booking_id=other.pk, partner_user=partner.user, status=status)
    assert booking_data(fresh(other))["attention"] is None


def test_nearby_is_claimed_once_per_booking_by_its_partner_while_the_job_is_tracked(
    customer, partner, service, emitted
):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ACCEPTED)
    stranger = PartnerFactory(services=[service])
    assert arrival.nearby_claim(booking_id=booking.pk, partner_id=stranger.pk, meters=10, eta_seconds=2) is False
    assert arrival.nearby_claim(booking_id=booking.pk, partner_id=partner.pk, meters=120, eta_seconds=22) is True
    assert arrival.nearby_claim(booking_id=booking.pk, partner_id=partner.pk, meters=5, eta_seconds=1) is False
    booking = fresh(booking)
    assert booking.nearby_meters == 120 and booking.nearby_at is not None
    [nearby] = events_named(emitted, "partner:nearby")
    assert nearby["room"] == f"booking:{booking.pk}" and nearby["namespace"] == "/customer"
    assert nearby["data"] == [{"bookingId": str(booking.pk), "distanceMeters": 120, "etaSeconds": 22}]
    # Not yet accepted, or finished: nothing to claim.
    for status in (S.PARTNER_ASSIGNED, S.COMPLETED, S.CANCELLED):
        other = BookingFactory(customer=customer, partner=partner, status=status)
        assert arrival.nearby_claim(booking_id=other.pk, partner_id=partner.pk, meters=10, eta_seconds=2) is False
    assert len(events_named(emitted, "partner:nearby")) == 1


def test_a_job_back_at_dispatch_forgets_its_partners_arrival(customer, partner, staff):
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE)
    place_partner(partner, 3000)
    assert arrival.nearby_claim(booking_id=booking.pk, partner_id=partner.pk, meters=90, eta_seconds=16)
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    partner_suspend(partner_id=partner.pk, actor=staff)  # the job goes back to dispatch
    booking = fresh(booking)
    assert booking.status in (S.PENDING, S.PARTNER_ASSIGNED) and booking.partner_id != partner.pk
    assert (booking.nearby_at, booking.nearby_meters, booking.arrived_far_at, booking.arrived_far_meters) == (
        None,
        None,
        None,
        None,
    )


def test_the_relay_asks_the_database_at_most_once_per_booking_per_session(monkeypatch, settings):
    """``nearby_seen`` runs in the relay, per update: within the radius it claims once per session
    (and again after a failure, once ``NEARBY_RETRY_SECONDS`` passed), never outside it."""
    settings.ARRIVAL_RADIUS_METERS = 150
    monkeypatch.setattr(arrival, "NEARBY_RETRY_SECONDS", 0.0)
    asked: list[tuple[str, int]] = []
    failures = [RuntimeError("database away")]

    def claim(*, booking_id: str, partner_id: int, meters: int, eta_seconds: int) -> bool:
        asked.append((booking_id, meters))
        if failures:
            raise failures.pop()
        return True

    monkeypatch.setattr(arrival, "nearby_claim", claim)

    async def updates(session: dict, booking_id: str, meters: list[int]) -> None:
        for distance in meters:
            arrival.nearby_seen(session, booking_id, geo.arrival(*north(distance), *CITY))
            await asyncio.gather(*arrival._claims)

    session = {"uid": 7}
    asyncio.run(updates(session, "b1", [400, 151]))
    assert asked == [] and "b1" not in session.get(arrival.NEARBY, set())  # outside the radius: no query
    asyncio.run(updates(session, "b1", [149, 90]))  # the first claim failed: the next position tries again
    assert asked == [("b1", 149), ("b1", 90)]
    asyncio.run(updates(session, "b1", [40, 10, 0]))
    asyncio.run(updates(session, "b2", [30, 20]))
    assert asked == [("b1", 149), ("b1", 90), ("b2", 30)]
    asyncio.run(updates({"uid": 7}, "b1", [60]))  # a new session (a reconnect) asks once again
    assert asked[-1] == ("b1", 60) and len(asked) == 4
    assert not arrival._claims


def test_a_failed_claim_waits_before_asking_again_not_a_query_per_position(monkeypatch, settings):
    """The database away: every position within the radius asked it again at once, a query (an ORM
    thread, the pool's wait) per update per booking for as long as the outage lasted."""
    settings.ARRIVAL_RADIUS_METERS = 150
    monkeypatch.setattr(arrival, "NEARBY_RETRY_SECONDS", 0.3)
    asked: list[int] = []

    def claim(*, booking_id: str, partner_id: int, meters: int, eta_seconds: int) -> bool:
        asked.append(meters)
        raise RuntimeError("database away")

    monkeypatch.setattr(arrival, "nearby_claim", claim)

    async def updates() -> float:
        session = {"uid": 7}
        started = asyncio.get_running_loop().time()
        for meters in range(100, 50, -1):  # 50 positions, 10 ms apart, all within the radius
            arrival.nearby_seen(session, "b1", geo.arrival(*north(meters), *CITY))
            await asyncio.gather(*arrival._claims)
            await asyncio.sleep(0.01)
        streamed = asyncio.get_running_loop().time() - started
        await asyncio.sleep(0.3)
        arrival.nearby_seen(session, "b1", geo.arrival(*north(40), *CITY))  # the wait over: asked again
        await asyncio.gather(*arrival._claims)
        return streamed

    streamed = asyncio.run(updates())
    # one ask per 0.3 s window while the positions came (however slow the machine), not one per position
    assert asked[0] == 100 and asked[-1] == 40 and len(asked) <= 2 + streamed / 0.3 < 50
