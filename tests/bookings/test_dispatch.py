"""Dispatch in the field (contract 8.2): offers that lapse, one offer per partner, re-assign,
suspension, the unassigned flag, and the ring search."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings import services
from bookings.dispatch import CANDIDATES, dispatch_waiting_now, eligible_partners, nearest_eligible_partner
from bookings.models import Booking, BookingRejection, BookingStatusChange
from bookings.models import BookingStatus as S
from bookings.shapes import booking_data
from config.errors import Conflict, InvalidTransition
from partners import services as partner_services
from partners.models import Partner
from tests.conftest import events_named
from tests.factories import BookingFactory, PartnerFactory, book


def lapse(booking: Booking) -> Booking:
    """Let the booking's dispatch clock run out and sweep, as every server process does each second."""
    Booking.objects.filter(pk=booking.pk).update(dispatch_due_at=timezone.now() - timedelta(seconds=1))
    assert services.dispatch_sweep() >= 1
    return Booking.objects.get(pk=booking.pk)


def notes_to(emitted, user_id: int) -> list[str]:
    """Types of the notifications a user was sent (once each: counted in /customer)."""
    return [
        n["data"][0]["type"]
        for n in events_named(emitted, "notification:new")
        if n["room"] == f"user:{user_id}" and n["namespace"] == "/customer"
    ]


def near(service, km: float) -> object:
    """An eligible partner ``km`` kilometres north of the booking (28.61, 77.2)."""
    return PartnerFactory(services=[service], last_latitude=28.61 + km / 111.2, last_longitude=77.2)


def test_an_offer_lapses_to_the_next_nearest_partner(customer, service, emitted, settings):
    settings.OFFER_TIMEOUT_SECONDS = 30
    first, second = near(service, 1), near(service, 3)
    booking = book(customer, service)
    assert booking.partner_id == first.pk and booking.dispatch_state == "offered"
    deadline = booking.dispatch_due_at - booking.updated_at
    assert timedelta(seconds=29) < deadline <= timedelta(seconds=30)

    booking = lapse(booking)
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == second.pk
    assert booking.dispatch_attempts == 2 and booking.dispatch_state == "offered"
    [expired] = events_named(emitted, "booking:offer_expired")
    assert expired["room"] == f"user:{first.pk}" and expired["namespace"] == "/partner"
    assert expired["data"][0]["bookingId"] == str(booking.pk)
    assert set(expired["data"][0]) == {"bookingId", "bookingNumber", "expiredAt"}
    assert notes_to(emitted, first.pk) == ["booking_assigned", "offer_expired"]
    lapsed = BookingStatusChange.objects.get(booking=booking, to_status=S.PENDING, from_status=S.PARTNER_ASSIGNED)
    assert (lapsed.role, lapsed.actor, lapsed.note, lapsed.partner_id) == ("dispatch", None, "offer_expired", first.pk)
    # the partner who let it lapse is never offered it again, and cannot accept it late
    assert BookingRejection.objects.get(booking=booking, partner=first).reason == "offer_expired"
    with pytest.raises(InvalidTransition):
        services.booking_accept(booking_id=booking.pk, partner_user=first.user)

    booking = lapse(booking)  # nobody else: it waits, flagged for staff, and the customer hears why
    assert booking.status == S.PENDING and booking.partner is None
    assert booking.dispatch_state == "unassigned" and booking.dispatch_due_at is not None
    assert notes_to(emitted, customer.pk) == ["booking_searching"]
    assert events_named(emitted, "booking:updated")[-1]["data"][0]["dispatch"] == {"attempts": 2, "state": "unassigned"}


def test_after_the_last_offer_it_waits_for_staff(customer, service, emitted, settings):
    settings.DISPATCH_MAX_OFFERS = 2
    near(service, 1), near(service, 2), near(service, 3)
    booking = lapse(lapse(book(customer, service)))
    assert booking.status == S.PENDING and booking.dispatch_attempts == 2
    # No more automatic offers: the clock now only says when dispatch gives up (DISPATCH_GIVE_UP_MINUTES).
    give_up_at = booking.scheduled_at + timedelta(minutes=settings.DISPATCH_GIVE_UP_MINUTES)
    assert booking.dispatch_state == "unassigned" and booking.dispatch_due_at == give_up_at
    assert services.dispatch_sweep() == 0
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", "role", "note"))
    assert history == [
        ("PENDING", "customer", ""),
        ("PARTNER_ASSIGNED", "dispatch", ""),
        ("PENDING", "dispatch", "offer_expired"),
        ("PARTNER_ASSIGNED", "dispatch", ""),
        ("PENDING", "dispatch", "offer_expired"),
    ]


def test_a_waiting_booking_is_offered_when_a_partner_appears(customer, service, settings):
    booking = book(customer, service)
    assert booking.status == S.PENDING and booking.dispatch_state == "unassigned"
    retry = booking.dispatch_due_at - timezone.now()
    assert timedelta(0) < retry <= timedelta(seconds=settings.DISPATCH_RETRY_SECONDS)
    assert services.dispatch_sweep() == 0  # not due yet
    partner = near(service, 2)  # comes online
    booking = lapse(booking)
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == partner.pk


def test_a_partner_holds_one_open_offer_and_none_while_busy(customer, other_customer, service):
    partner = near(service, 1)
    first = book(customer, service)
    second = book(other_customer, service)
    assert first.partner_id == partner.pk and second.status == S.PENDING
    services.booking_accept(booking_id=first.pk, partner_user=partner.user)
    assert services.booking_dispatch(booking_id=second.pk) is None  # an active job: still busy


def test_staff_reassign_withdraws_the_open_offer(customer, staff, service, emitted):
    first, second = near(service, 1), near(service, 5)
    booking = book(customer, service)
    booking = services.booking_assign(booking_id=booking.pk, partner_id=second.pk, actor=staff)
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == second.pk
    [withdrawn] = [e for e in events_named(emitted, "booking:cancelled") if e["room"] == f"user:{first.pk}"]
    assert withdrawn["data"][0]["cancelledBy"] == "staff" and withdrawn["data"][0]["reason"] == "reassigned"
    assert [e["room"] for e in events_named(emitted, "booking:new_request")] == [
        f"user:{first.pk}",
        f"user:{second.pk}",
    ]
    moved = BookingStatusChange.objects.filter(booking=booking).last()
    assert (moved.from_status, moved.to_status, moved.role, moved.note) == (
        "PARTNER_ASSIGNED",
        "PARTNER_ASSIGNED",
        "staff",
        "reassigned",
    )
    with pytest.raises(InvalidTransition):  # the old partner's late accept
        services.booking_accept(booking_id=booking.pk, partner_user=first.user)
    other = BookingFactory(service=service, status=S.PENDING)
    with pytest.raises(Conflict):  # one open offer per partner, staff included
        services.booking_assign(booking_id=other.pk, partner_id=second.pk, actor=staff)


def test_suspension_withdraws_open_offers_and_dispatches_them_again(customer, staff, service, emitted):
    first, second = near(service, 1), near(service, 4)
    booking = book(customer, service)
    partner_services.partner_suspend(partner_id=first.pk, actor=staff)
    booking.refresh_from_db()
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == second.pk
    [withdrawn] = [e for e in events_named(emitted, "booking:cancelled") if e["room"] == f"user:{first.pk}"]
    assert withdrawn["data"][0]["reason"] == "partner_suspended"
    roles = list(BookingStatusChange.objects.filter(booking=booking).values_list("to_status", "role", "note"))
    assert roles[-2:] == [("PENDING", "staff", "partner_suspended"), ("PARTNER_ASSIGNED", "dispatch", "")]


def test_an_accepted_offer_does_not_lapse(customer, service):
    partner = near(service, 1)
    booking = book(customer, service)
    services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    booking.refresh_from_db()
    assert booking.dispatch_due_at is None and booking.dispatch_state == "done"
    assert services.dispatch_sweep() == 0


@pytest.mark.parametrize("km", [0.3, 0.5, 4, 16])
def test_the_ring_search_finds_the_nearest_at_any_distance_within_reach(customer, service, km):
    nearest = near(service, km)
    near(service, km * 1.5)
    PartnerFactory(services=[service], last_latitude=28.61, last_longitude=77.2 + km * 1.2 / 98)  # east, farther
    booking = BookingFactory(customer=customer, service=service, latitude=28.61, longitude=77.2)
    assert nearest_eligible_partner(booking).pk == nearest.pk


def test_nobody_past_dispatch_max_km_is_offered_a_booking(customer, service, settings):
    """A partner in Mumbai is never offered a booking in Delhi, whichever path dispatch takes; nor is
    one 10 m past the limit (a mutation spot-check found the limit could drift by 25 m unnoticed)."""
    settings.DISPATCH_MAX_KM = 25
    mumbai = PartnerFactory(services=[service], last_latitude=19.07, last_longitude=72.88)
    far = near(service, 25.01)
    booking = book(customer, service)  # in Delhi: nobody within 25 km
    assert booking.status == "PENDING" and booking.dispatch_state == "unassigned"
    assert dispatch_waiting_now(partner_ids=[mumbai.pk, far.pk]) == 0  # coming online changes nothing
    within = near(service, 24.99)
    assert dispatch_waiting_now(partner_ids=[within.pk]) == 1
    services.dispatch_sweep()
    booking.refresh_from_db()
    assert booking.status == "PARTNER_ASSIGNED" and booking.partner_id == within.pk


def test_a_box_corner_does_not_beat_a_nearer_partner_outside_the_box(customer, service):
    """Within the 2 km box's corner (2.8 km away) versus due north at 2.1 km (outside the box)."""
    PartnerFactory(services=[service], last_latitude=28.61 + 1.95 / 111.2, last_longitude=77.2 + 1.95 / 97.6)
    nearer = near(service, 2.1)
    booking = BookingFactory(customer=customer, service=service, latitude=28.61, longitude=77.2)
    assert nearest_eligible_partner(booking).pk == nearer.pk


def test_the_search_reads_every_partner_in_reach_once_nearest_first(customer, service):
    """Across the rings, each partner comes once: a ring's box holds the rings inside it too
    (cosmic-ray: twelve mutants of the ``tried`` exclusion survived without this)."""
    partners = [near(service, km) for km in (0.2, 0.8, 1.5, 4, 12)]
    booking = BookingFactory(customer=customer, service=service, latitude=28.61, longitude=77.2)
    assert [partner.pk for partner in eligible_partners(booking)] == [partner.pk for partner in partners]


def test_the_flat_estimate_scales_longitude_as_the_earth_does(customer, service):
    """At 50 N a degree of longitude is 0.64 of a degree of latitude. The estimate picks which
    rows of a ring are measured: a partner due east who is nearest must be among them, and so
    must one due north (cosmic-ray: mutants that scale longitude too much or too little survived)."""

    def around(lat: float, lng: float, nearest_km: float, others_km: float, nearest_east: bool) -> Partner:
        def east(km: float) -> dict[str, float]:
            return {"last_latitude": lat, "last_longitude": lng + km / (111.2 * math.cos(math.radians(lat)))}

        def north(km: float) -> dict[str, float]:
            return {"last_latitude": lat + km / 111.2, "last_longitude": lng}

        for _ in range(CANDIDATES):  # a ring's worth a little farther, the other way
            PartnerFactory(services=[service], **(north if nearest_east else east)(others_km))
        return PartnerFactory(services=[service], **(east if nearest_east else north)(nearest_km))

    for lng, nearest_east in ((10.0, True), (20.0, False)):
        nearest = around(50.0, lng, 0.85, 0.9, nearest_east)
        booking = BookingFactory(customer=customer, service=service, latitude=50.0, longitude=lng)
        assert nearest_eligible_partner(booking).pk == nearest.pk, "east" if nearest_east else "north"


def waiting(customer, service) -> Booking:
    """A booking that found nobody: it waits for its retry, ``DISPATCH_RETRY_SECONDS`` away."""
    booking = book(customer, service)
    assert booking.dispatch_state == "unassigned" and booking.dispatch_due_at > timezone.now()
    return booking


def due_now(booking: Booking) -> bool:
    return Booking.objects.get(pk=booking.pk).dispatch_due_at <= timezone.now()


def test_a_partner_who_finishes_a_job_is_offered_a_waiting_booking_at_once(customer, other_customer, service):
    partner = near(service, 1)
    job = book(customer, service)
    services.booking_accept(booking_id=job.pk, partner_user=partner.user)
    booking = waiting(other_customer, service)  # the only partner is busy
    services.booking_update_status(booking_id=job.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
    assert not due_now(booking)  # still busy: the retry stays where it was
    for status in (S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED):
        services.booking_update_status(booking_id=job.pk, partner_user=partner.user, status=status)
    assert due_now(booking)
    assert services.dispatch_sweep() == 1
    booking.refresh_from_db()
    assert (booking.status, booking.partner_id) == (S.PARTNER_ASSIGNED, partner.pk)


def test_a_rejected_offer_frees_the_partner_for_a_waiting_booking(customer, other_customer, service):
    partner = near(service, 1)
    offered = book(customer, service)
    booking = waiting(other_customer, service)
    services.booking_reject(booking_id=offered.pk, partner_user=partner.user)
    assert due_now(booking)
    assert services.dispatch_sweep() == 1
    booking.refresh_from_db()
    assert booking.partner_id == partner.pk


def test_a_partner_who_becomes_available_or_comes_online_is_offered_a_waiting_booking(customer, service):
    away = PartnerFactory(services=[service], last_latitude=28.62, last_longitude=77.2, is_available=False)
    offline = PartnerFactory(services=[service], last_latitude=28.63, last_longitude=77.2, online_until=None)
    booking = waiting(customer, service)

    partner_services.partner_set_availability(partner_id=away.pk, available=False)
    assert not due_now(booking)
    partner_services.partner_set_availability(partner_id=away.pk, available=True)
    assert due_now(booking)
    assert services.dispatch_sweep() == 1
    booking.refresh_from_db()
    assert booking.partner_id == away.pk

    services.booking_reject(booking_id=booking.pk, partner_user=away.user)  # waits again: `offline` is offline
    booking.refresh_from_db()
    Booking.objects.filter(pk=booking.pk).update(dispatch_due_at=timezone.now() + timedelta(seconds=10))
    partner_services.partners_online(partner_ids=[away.pk])  # a heartbeat of someone already online
    assert not due_now(booking)
    partner_services.partners_online(partner_ids=[offline.pk])  # comes online
    assert due_now(booking)
    assert services.dispatch_sweep() == 1
    booking.refresh_from_db()
    assert booking.partner_id == offline.pk


def test_a_freed_partner_brings_forward_one_waiting_booking_of_their_services(customer, other_customer, service):
    """They can take one offer: the longest-waiting booking is due now, the others keep their retry."""
    from tests.factories import ServiceFactory

    partner = near(service, 1)
    offered = book(customer, service)
    oldest, newer = waiting(other_customer, service), waiting(other_customer, service)
    elsewhere = waiting(other_customer, ServiceFactory())  # a service the partner does not offer
    services.booking_reject(booking_id=offered.pk, partner_user=partner.user)
    assert [due_now(b) for b in (oldest, newer, elsewhere)] == [True, False, False]
    # toggling availability brings forward one more, not every waiting booking
    partner_services.partner_set_availability(partner_id=partner.pk, available=True)
    assert [due_now(b) for b in (oldest, newer, elsewhere)] == [True, True, False]


def test_dispatch_gives_up_after_the_bookings_time(customer, service, emitted, settings):
    """Nobody came: DISPATCH_GIVE_UP_MINUTES after scheduledAt the booking is cancelled by dispatch."""
    settings.DISPATCH_GIVE_UP_MINUTES = 30
    booking = book(customer, service)  # nobody near
    assert booking.dispatch_state == "unassigned"
    Booking.objects.filter(pk=booking.pk).update(scheduled_at=timezone.now() - timedelta(minutes=31))
    booking = lapse(booking)
    assert booking.status == S.CANCELLED and booking.cancel_reason == "no_partner"
    data = booking_data(booking)
    assert data["cancelledBy"] == "dispatch" and data["attention"] is None
    last = BookingStatusChange.objects.filter(booking=booking).latest("created_at")
    assert (last.to_status, last.role, last.note) == ("CANCELLED", "dispatch", "no_partner")
    assert "booking_cancelled" in notes_to(emitted, customer.pk)
    [told] = [
        n["data"][0]["body"]
        for n in events_named(emitted, "notification:new")
        if n["room"] == f"user:{customer.pk}"
        and n["namespace"] == "/customer"
        and n["data"][0]["type"] == "booking_cancelled"
    ]
    assert told == f"We could not find a partner for {booking.number}"
    assert services.dispatch_sweep() == 0  # nothing left due


def test_lapses_are_swept_before_retries(customer, service, settings):
    """With many bookings waiting for a retry, a lapsed offer is still handled in the first sweep."""
    settings.DISPATCH_MAX_OFFERS = 5
    waiting = [book(customer, service) for _ in range(5)]  # nobody near: all wait for their retry
    offered = book(customer, service)
    partner = near(service, 1)
    Booking.objects.filter(pk=offered.pk).update(status=S.PARTNER_ASSIGNED, partner=partner)
    past = timezone.now() - timedelta(seconds=5)
    Booking.objects.filter(pk__in=[b.pk for b in waiting]).update(dispatch_due_at=past - timedelta(seconds=60))
    Booking.objects.filter(pk=offered.pk).update(dispatch_due_at=past)  # due after every retry
    assert services.dispatch_sweep(limit=1) == 1
    offered.refresh_from_db()
    assert offered.status != S.PARTNER_ASSIGNED or offered.partner_id != partner.pk  # the lapse came first
    assert services.dispatch_backlog() == 5


def test_a_customer_has_at_most_open_bookings_max(customer, service, settings, api_as):
    settings.OPEN_BOOKINGS_MAX = 2
    book(customer, service), book(customer, service)
    body = {
        "serviceId": service.pk,
        "scheduledAt": "2030-01-01T10:00:00Z",
        "address": "x",
        "latitude": 28.6,
        "longitude": 77.2,
    }
    r = api_as(customer).post("/api/bookings/", body, format="json")
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT"
    Booking.objects.filter(customer=customer).update(status=S.CANCELLED)  # finished ones do not count
    assert api_as(customer).post("/api/bookings/", body, format="json").status_code == 201


def test_the_database_itself_refuses_a_second_open_offer_and_staff_rest_gets_409(api_as, staff, service):
    """Whatever races above it, the one-open-offer constraint holds; over REST it is a 409."""
    from django.db import IntegrityError, transaction

    partner = near(service, 1)
    BookingFactory(service=service, partner=partner, status=S.PARTNER_ASSIGNED)
    second = BookingFactory(service=service, status=S.PENDING)
    with pytest.raises(IntegrityError), transaction.atomic():  # behind every service's back
        Booking.objects.filter(pk=second.pk).update(status=S.PARTNER_ASSIGNED, partner=partner)
    r = api_as(staff).post(f"/api/bookings/{second.pk}/assign/", {"partnerId": partner.pk}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "CONFLICT", r.json()
    second.refresh_from_db()
    assert (second.status, second.partner_id) == (S.PENDING, None)
