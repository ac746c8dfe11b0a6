"""The booking lifecycle: every transition allowed and refused, with its exact events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from bookings import services
from bookings.models import BookingStatus as S
from bookings.models import BookingStatusChange
from config.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from partners.models import Earning
from tests.conftest import events_named
from tests.factories import BookingFactory, PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db


def create(customer, service, **kw):
    return services.booking_create(
        customer=customer,
        service=service,
        scheduled_at=timezone.now() + timedelta(hours=3),
        address="12 MG Road",
        latitude=kw.get("lat", 28.6139),
        longitude=kw.get("lng", 77.2090),
    )


def test_create_dispatches_to_nearest_partner_and_announces(customer, service, emitted):
    near = PartnerFactory(services=[service], last_latitude=28.62, last_longitude=77.21)
    PartnerFactory(services=[service], last_latitude=28.90, last_longitude=77.50)
    booking = create(customer, service)
    assert booking.status == S.PARTNER_ASSIGNED
    assert booking.partner_id == near.pk
    assert booking.number.startswith("BK") and len(booking.number) == 8
    created = events_named(emitted, "booking:created")
    assert created[0]["namespace"] == "/admin" and created[0]["room"] == "monitor:bookings"
    assert created[0]["data"][0]["status"] == "PENDING"
    offer = events_named(emitted, "booking:new_request")[0]
    assert offer["room"] == f"user:{near.pk}" and offer["namespace"] == "/partner"
    assert set(offer["data"][0]) == {
        "bookingId",
        "bookingNumber",
        "service",
        "scheduledAt",
        "address",
        "amount",
        "location",
        "customer",
        "distanceMeters",  # contract 9.3: how far the offer is
        "etaSeconds",
    }
    assert 0 < offer["data"][0]["distanceMeters"] < 2000
    assert offer["data"][0]["service"] == service.name
    history = list(BookingStatusChange.objects.filter(booking=booking).values_list("from_status", "to_status"))
    assert history == [("", "PENDING"), ("PENDING", "PARTNER_ASSIGNED")]


@pytest.mark.parametrize(
    "field,value",
    [
        ("kyc_status", "PENDING"),
        ("is_suspended", True),
        ("is_available", False),
        ("online_until", None),
    ],
)
def test_dispatch_skips_ineligible_partners(customer, service, field, value):
    far = PartnerFactory(services=[service], last_latitude=28.7, last_longitude=77.3)  # ~14 km: within reach
    PartnerFactory(services=[service], **{field: value})  # nearest, but not eligible
    assert create(customer, service).partner_id == far.pk


def test_dispatch_skips_busy_partner_and_other_services(customer, service):
    busy = PartnerFactory(services=[service])
    BookingFactory(partner=busy, status=S.IN_PROGRESS, service=service)
    PartnerFactory()  # offers no service of ours
    booking = create(customer, service)
    assert booking.status == S.PENDING and booking.partner is None


def test_reject_redispatches_never_to_the_rejecter(customer, service, emitted):
    first = PartnerFactory(services=[service], last_latitude=28.6139, last_longitude=77.2090)
    second = PartnerFactory(services=[service], last_latitude=28.7, last_longitude=77.3)
    booking = create(customer, service)
    assert booking.partner_id == first.pk
    booking = services.booking_reject(booking_id=booking.pk, partner_user=first.user, reason="busy")
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == second.pk
    booking = services.booking_reject(booking_id=booking.pk, partner_user=second.user)
    assert booking.status == S.PENDING and booking.partner is None


def test_full_lifecycle_and_earnings(customer, service, partner, emitted, settings):
    booking = create(customer, service)
    services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    for status in (S.PARTNER_EN_ROUTE, S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED):
        booking = services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=status)
    assert booking.status == S.COMPLETED and booking.completed_at
    earning = Earning.objects.get(booking=booking)
    assert earning.amount == booking.amount * (1 - settings.PLATFORM_COMMISSION)
    statuses = [m["data"][0]["status"] for m in events_named(emitted, "booking:status_updated")]
    assert statuses == [
        "PARTNER_ASSIGNED",
        "PARTNER_ACCEPTED",
        "PARTNER_EN_ROUTE",
        "PARTNER_ARRIVED",
        "IN_PROGRESS",
        "COMPLETED",
    ]
    assigned = events_named(emitted, "partner:assigned")[0]
    assert assigned["room"] == [f"booking:{booking.pk}", f"user:{customer.pk}"]
    assert set(assigned["data"][0]["partner"]) == {"id", "name", "phone", "rating", "location"}
    assert assigned["data"][0]["partner"]["id"] == str(partner.pk)
    earned = events_named(emitted, "earnings:updated")[0]["data"][0]
    assert earned == {
        "bookingId": str(booking.pk),
        "amount": 799.2,
        "todayEarnings": 799.2,
        "totalEarnings": 799.2,
        "currency": "INR",
    }
    # Each process re-reads the relay list: the control carries who (and the read its commit follows,
    # ``relay.read_mark``), never a list that could be stale.
    controls = emitted.controls("partner_bookings")
    assert controls and all(m.keys() - {"host_id"} == {"method", "user_id", "read_mark"} for m in controls)
    assert all(isinstance(m["read_mark"], int) for m in controls)
    assert {m["user_id"] for m in controls} == {str(partner.pk)}
    closed = [(m["room"], m["namespace"]) for m in emitted.all() if m["method"] == "close_room"]
    assert closed == [(f"booking:{booking.pk}", "/customer")]


def test_skipping_en_route_and_arrived_is_allowed(customer, service, partner):
    booking = create(customer, service)
    services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    booking = services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.IN_PROGRESS)
    assert booking.status == S.IN_PROGRESS


@pytest.mark.parametrize(
    "start,target",
    [
        (S.PARTNER_ASSIGNED, S.IN_PROGRESS),
        (S.PARTNER_ACCEPTED, S.COMPLETED),
        (S.IN_PROGRESS, S.PARTNER_EN_ROUTE),
        (S.COMPLETED, S.IN_PROGRESS),
        (S.CANCELLED, S.PARTNER_EN_ROUTE),
        (S.PARTNER_ARRIVED, S.PARTNER_EN_ROUTE),
    ],
)
def test_partner_invalid_transitions_are_refused_without_events(partner, start, target, emitted):
    booking = BookingFactory(partner=partner, status=start)
    with pytest.raises(InvalidTransition):
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=target)
    booking.refresh_from_db()
    assert booking.status == start
    assert emitted.all() == []


def test_partner_cannot_set_pending_or_cancelled(partner):
    booking = BookingFactory(partner=partner, status=S.PARTNER_ACCEPTED)
    for status in (S.PENDING, S.CANCELLED, S.PARTNER_ACCEPTED):
        with pytest.raises(InvalidTransition):
            services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=status)


def test_only_the_assigned_partner_may_act(partner, service):
    other = PartnerFactory(services=[service])
    booking = BookingFactory(partner=partner, status=S.PARTNER_ASSIGNED)
    with pytest.raises(Forbidden):
        services.booking_accept(booking_id=booking.pk, partner_user=other.user)
    with pytest.raises(Forbidden):
        services.booking_reject(booking_id=booking.pk, partner_user=other.user)


def test_accept_twice_is_invalid(partner):
    booking = BookingFactory(partner=partner, status=S.PARTNER_ASSIGNED)
    services.booking_accept(booking_id=booking.pk, partner_user=partner.user)
    with pytest.raises(InvalidTransition):
        services.booking_accept(booking_id=booking.pk, partner_user=partner.user)


@pytest.mark.parametrize("status", [S.PENDING, S.PARTNER_ASSIGNED, S.PARTNER_ACCEPTED, S.PARTNER_EN_ROUTE])
def test_customer_cancels_and_partner_is_told(customer, partner, status, emitted):
    booking = BookingFactory(customer=customer, partner=None if status == S.PENDING else partner, status=status)
    booking = services.booking_cancel(booking_id=booking.pk, actor=customer, reason="Changed my mind")
    assert booking.status == S.CANCELLED and booking.cancelled_by_id == customer.pk
    cancelled = events_named(emitted, "booking:cancelled")
    if status == S.PENDING:
        assert cancelled == []
    else:
        data = cancelled[0]["data"][0]
        assert cancelled[0]["room"] == f"user:{partner.pk}"
        assert data["reason"] == "Changed my mind" and data["cancelledBy"] == "customer"
        assert set(data) == {"bookingId", "bookingNumber", "reason", "cancelledBy", "cancelledAt"}


@pytest.mark.parametrize("status", [S.PARTNER_ARRIVED, S.IN_PROGRESS, S.COMPLETED, S.CANCELLED])
def test_cancel_too_late_is_invalid(customer, partner, status):
    booking = BookingFactory(customer=customer, partner=partner, status=status)
    with pytest.raises(InvalidTransition):
        services.booking_cancel(booking_id=booking.pk, actor=customer)


def test_strangers_cannot_cancel_staff_can(customer, other_customer, staff):
    booking = BookingFactory(customer=customer)
    with pytest.raises(Forbidden):
        services.booking_cancel(booking_id=booking.pk, actor=other_customer)
    booking = services.booking_cancel(booking_id=booking.pk, actor=staff, reason="fraud")
    assert booking.status == S.CANCELLED


def test_staff_assign_rules(staff, customer, partner, service):
    booking = BookingFactory(customer=customer, status=S.PENDING)
    with pytest.raises(Forbidden):
        services.booking_assign(booking_id=booking.pk, partner_id=partner.pk, actor=customer)
    suspended = PartnerFactory(is_suspended=True)
    with pytest.raises(Conflict):
        services.booking_assign(booking_id=booking.pk, partner_id=suspended.pk, actor=staff)
    with pytest.raises(NotFound):
        services.booking_assign(booking_id=booking.pk, partner_id=999999, actor=staff)
    offline = PartnerFactory(online_until=None, kyc_status="PENDING")  # ops override: any non-suspended partner
    booking = services.booking_assign(booking_id=booking.pk, partner_id=offline.pk, actor=staff)
    assert booking.status == S.PARTNER_ASSIGNED and booking.partner_id == offline.pk
    accepted = BookingFactory(customer=customer, partner=offline, status=S.PARTNER_ACCEPTED)
    with pytest.raises(InvalidTransition):  # re-assign moves open offers only (tests/bookings/test_dispatch.py)
        services.booking_assign(booking_id=accepted.pk, partner_id=partner.pk, actor=staff)


def test_a_malformed_booking_id_is_invalid_and_an_unknown_one_not_found(partner):
    for bad in ("nope", None, 12, "x" * 46):
        with pytest.raises(ValidationError):
            services.booking_accept(booking_id=bad, partner_user=partner.user)
    with pytest.raises(NotFound):
        services.booking_accept(booking_id="00000000-0000-0000-0000-000000000000", partner_user=partner.user)


def test_booking_in_the_past_is_refused(customer, service):
    with pytest.raises(ValidationError):
        services.booking_create(
            customer=customer,
            service=service,
            scheduled_at=timezone.now() - timedelta(days=1),
            address="x",
            latitude=1,
            longitude=1,
        )


def test_partner_never_dispatched_own_booking(service):
    partner = PartnerFactory(services=[service])
    booking = create(partner.user, service)
    assert booking.partner is None


def test_each_role_is_refused_the_moves_of_the_others(customer, partner, staff):
    """Customers do not accept or progress, partners do not cancel, staff do not accept for a partner."""
    booking = BookingFactory(customer=customer, partner=partner, status=S.PARTNER_ASSIGNED)
    for actor in (customer, staff):
        with pytest.raises(Forbidden):
            services.booking_accept(booking_id=booking.pk, partner_user=actor)
        with pytest.raises(Forbidden):
            services.booking_update_status(booking_id=booking.pk, partner_user=actor, status=S.PARTNER_EN_ROUTE)
    with pytest.raises(Forbidden):
        services.booking_cancel(booking_id=booking.pk, actor=partner.user)
    with pytest.raises(Forbidden):
        services.booking_assign(booking_id=booking.pk, partner_id=partner.pk, actor=partner.user)
    booking.refresh_from_db()
    assert booking.status == S.PARTNER_ASSIGNED


def test_what_each_ending_records_and_tells_the_customer(staff, partner, service, emitted):
    """Found by cosmic-ray (docs/claims.md): the customer's notification says why a booking ended
    (dispatch gave up, staff's reason, the number when no reason was given), only a completion
    records ``completedAt``, a status sent as plain text (as a socket sends it) completes like the
    enum, and a customer whose id is past the small integers Python caches may cancel their own
    booking (``is`` compares those by identity only)."""
    customer = UserFactory(id=100_000, username="late-customer")

    def notes() -> list[str]:
        return [
            n["data"][0]["body"]
            for n in events_named(emitted, "notification:new")
            if n["room"] == f"user:{customer.pk}"
            and n["namespace"] == "/customer"
            and n["data"][0]["type"] == "booking_cancelled"
        ]

    own = BookingFactory(customer=customer, service=service)
    cancelled = services.booking_cancel(booking_id=own.pk, actor=customer)
    assert cancelled.status == S.CANCELLED and cancelled.completed_at is None and notes() == []

    by_staff = BookingFactory(customer=customer, service=service, partner=partner, status=S.PARTNER_ARRIVED)
    services.booking_cancel(booking_id=by_staff.pk, actor=staff, reason="duplicate booking")  # staff's id is lower
    assert notes() == ["duplicate booking"]

    working = BookingFactory(customer=customer, service=service, partner=partner, status=S.IN_PROGRESS)
    done = services.booking_update_status(booking_id=working.pk, partner_user=partner.user, status="COMPLETED")
    assert done.status == S.COMPLETED and done.completed_at is not None

    stuck = BookingFactory(customer=customer, service=service, partner=partner, status=S.IN_PROGRESS)
    services.booking_complete(booking_id=stuck.pk, actor=staff)
    last = BookingStatusChange.objects.filter(booking=stuck).latest("created_at")
    assert (last.to_status, last.note) == (S.COMPLETED, "completed by staff")


def test_the_table_of_announcements_has_a_row_for_every_status():
    """``ANNOUNCEMENTS`` is read for the status a move arrives in and the one it leaves: every
    status has a row, the partner's position is relayed in the active ones, only completion pays,
    and the two terminal statuses close the booking's room."""
    from bookings.models import ACTIVE_STATUSES, TERMINAL_STATUSES
    from bookings.services.lifecycle import ANNOUNCEMENTS

    assert set(ANNOUNCEMENTS) == set(S.values)
    assert {status for status, row in ANNOUNCEMENTS.items() if row.tracked} == set(ACTIVE_STATUSES)
    assert {status for status, row in ANNOUNCEMENTS.items() if row.final} == set(TERMINAL_STATUSES)
    assert [status for status, row in ANNOUNCEMENTS.items() if row.pays] == [S.COMPLETED]
    assert all(row.tells[:2] == ANNOUNCEMENTS[S.PENDING].tells for row in ANNOUNCEMENTS.values())


def test_each_move_says_exactly_what_it_should(customer, service, partner, emitted):
    """A partner's moves, with statuses sent as text (as the socket's serializer hands them over):
    each says its own events and notifications and no other, and only completion records the
    time and the earning. (cosmic-ray: mutants that sent partner:assigned, a cancellation or an
    earning on the wrong move survived the tests that check only the whole journey.)"""
    booking = BookingFactory(customer=customer, service=service, partner=partner, status=S.PARTNER_ACCEPTED)

    def said_by(move) -> list[str]:
        before = len(emitted.all())
        move()
        return sorted(
            m["event"] + ("/" + m["data"][0]["type"] if m["event"] == "notification:new" else "")
            for m in emitted.all()[before:]
            if (m["method"] == "emit" and m.get("namespace") != "/partner") or m.get("event") == "earnings:updated"
        )

    progress = ["booking:status_updated", "booking:updated"]
    for status in ("PARTNER_EN_ROUTE", "PARTNER_ARRIVED", "IN_PROGRESS"):
        said = said_by(
            lambda s=status: services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=s)
        )
        assert said == progress, status
        booking.refresh_from_db()
        assert booking.status == status and booking.completed_at is None
        assert not Earning.objects.filter(booking=booking).exists()
    said = said_by(
        lambda: services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status="COMPLETED")
    )
    assert said == sorted(
        [*progress, "earnings:updated", "notification:new/booking_completed", "notification:new/earnings"]
    )
    booking.refresh_from_db()
    assert booking.completed_at is not None and Earning.objects.filter(booking=booking).count() == 1
    # Every move into, within or out of a job tells every process to re-read the partner's relay list.
    relays = [c["user_id"] for c in emitted.controls("partner_bookings")]
    assert relays == [str(partner.pk)] * 4


def test_an_offer_accepted_or_a_job_taken_back_re_reads_the_partners_relay_list(
    customer, service, partner, staff, emitted
):
    offered = BookingFactory(customer=customer, service=service, partner=partner, status=S.PARTNER_ASSIGNED)
    services.booking_accept(booking_id=offered.pk, partner_user=partner.user)
    assert [c["user_id"] for c in emitted.controls("partner_bookings")] == [str(partner.pk)]
    services.partner_jobs_release(partner_id=partner.pk, actor=staff)  # back to PENDING: no partner on it now
    assert [c["user_id"] for c in emitted.controls("partner_bookings")][:2] == [str(partner.pk)] * 2
