"""Property-based fuzz over every client event and every REST write (hypothesis).

Each generated input is one a hostile or broken client could send: wrong types, out of
range, huge, deeply nested, lone surrogates, unknown ids, other users' ids. Frames are
encoded by the standard library (``RawSocket``), which writes what orjson-based clients
cannot (lone surrogates, integers past 64 bits). Every
answer must be the contract's error; nothing may be written; sockets stay up; the
server logs no traceback.
"""

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookings.models import Booking, BookingStatusChange
from config.errors import ValidationError
from config.parsing import parse_id
from config.realtime import catalogue
from messaging.models import Message, Notification, SafetyAlert
from partners.models import KycSubmission, LocationFix, Partner
from tests.factories import BookingFactory, UserFactory
from tests.live import RawSocket, token_for

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_CODES = {"VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", "INVALID_TRANSITION", "TOKEN_EXPIRED"}
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
FUZZ_EACH_EVENT = settings(FUZZ, max_examples=25)

surrogates = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3)
with_surrogate = st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), surrogates, st.text(max_size=5))


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def huge(size: int) -> str:
    return "x" * size


deep = st.integers(min_value=50, max_value=400).map(nested)
huge_text = st.sampled_from([20_000, 200_000]).map(
    huge
)  # under the 1 MB packet cap (a larger packet closes the transport)
not_a_value = st.one_of(
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    with_surrogate,
    deep,
    huge_text,
)
big_numbers = st.one_of(st.integers(min_value=2**63, max_value=2**80), st.integers(max_value=0, min_value=-(2**70)))
unknown_uuid = st.uuids().map(str)


def bad_id(*known_foreign: str) -> st.SearchStrategy:
    """An id that is not one the caller may act on: garbage, unknown, or someone else's."""
    foreign = [st.sampled_from(known_foreign)] if known_foreign else []
    return st.one_of(not_a_value, big_numbers, unknown_uuid, st.text(max_size=20), *foreign)


def bad_coordinate() -> st.SearchStrategy:
    out_of_range = st.floats(min_value=181, max_value=1e300) | st.floats(max_value=-181, min_value=-1e300)
    return st.one_of(not_a_value, out_of_range, st.text(max_size=8))


def socket_cases(world: dict) -> dict[tuple[str, str], st.SearchStrategy]:
    """``(namespace, event) -> payloads``, each one the server must refuse."""
    foreign_booking, stranger = world["foreign_booking"], world["stranger"]
    booking = bad_id(foreign_booking)
    person = bad_id(stranger, "999999999")
    nobody = bad_id("999999999")
    anything = st.one_of(not_a_value, st.text(max_size=30), st.integers())
    not_boolean = anything.filter(lambda value: not isinstance(value, bool))
    chat = [
        ("message:send", st.fixed_dictionaries({"recipientId": person, "message": anything})),
        (
            "message:send",
            st.fixed_dictionaries({"recipientId": person, "message": st.just("hi"), "bookingId": booking}),
        ),
        ("message:mark_read", st.one_of(bad_id("999999999"), st.fixed_dictionaries({"messageId": bad_id()}))),
        ("typing:start", person),
        ("typing:stop", st.fixed_dictionaries({"recipientId": person})),
        ("auth:refresh", st.one_of(not_a_value, st.fixed_dictionaries({"token": anything}))),
    ]
    staff_chat = [  # staff may message anyone who exists: only ids of nobody
        ("message:send", st.fixed_dictionaries({"recipientId": nobody, "message": anything})),
        ("typing:start", nobody),
        ("typing:stop", st.fixed_dictionaries({"recipientId": nobody})),
    ]
    # A bare SOS (no payload, or an empty one) is a real alert: only what must be refused here.
    sos = [
        ("safety:alert", not_a_value.filter(lambda value: value is not None and not isinstance(value, dict))),
        ("safety:alert", st.fixed_dictionaries({"bookingId": booking.filter(lambda value: value is not None)})),
        ("safety:alert", st.fixed_dictionaries({"latitude": bad_coordinate(), "longitude": st.just(77.2)})),
        ("safety:alert", st.fixed_dictionaries({"latitude": st.just(28.6)})),  # half a place
    ]
    recorded = st.just(datetime.now(UTC).isoformat())
    bad_fix = st.one_of(
        st.fixed_dictionaries({"latitude": bad_coordinate(), "longitude": st.just(77.2), "recordedAt": recorded}),
        st.fixed_dictionaries({"latitude": st.just(28.6), "longitude": st.just(77.2), "recordedAt": anything}),
    )
    not_a_list = not_a_value.filter(lambda value: not isinstance(value, list))
    by_namespace = {
        "/customer": [
            ("booking:track", st.one_of(booking, st.fixed_dictionaries({"bookingId": booking}))),
            ("booking:untrack", booking),
            ("booking:cancel", st.fixed_dictionaries({"bookingId": booking, "reason": anything})),
            *sos,
            *chat,
        ],
        "/partner": [
            ("booking:accept", st.one_of(booking, st.fixed_dictionaries({"bookingId": booking}))),
            ("booking:reject", st.fixed_dictionaries({"bookingId": booking, "reason": anything})),
            ("booking:status_update", st.fixed_dictionaries({"bookingId": booking, "status": anything})),
            ("location:update", st.fixed_dictionaries({"latitude": bad_coordinate(), "longitude": st.just(77.2)})),
            ("location:update", st.fixed_dictionaries({"latitude": st.just(28.6), "longitude": bad_coordinate()})),
            ("location:update", not_a_value),
            ("availability:update", st.one_of(not_a_value, st.fixed_dictionaries({"available": not_boolean}))),
            ("location:batch", st.one_of(not_a_value, st.fixed_dictionaries({"fixes": not_a_list}))),
            ("location:batch", st.fixed_dictionaries({"fixes": st.lists(bad_fix, min_size=1, max_size=3)})),
            *sos,
            *chat,
        ],
        "/admin": [
            *staff_chat,
            chat[2],
            chat[5],
            ("safety:acknowledge", st.one_of(not_a_value, st.fixed_dictionaries({"alertId": bad_id("999999999")}))),
        ],
    }
    payloads: dict[tuple[str, str], list[st.SearchStrategy]] = {}
    for namespace, cases in by_namespace.items():
        for event, payload in cases:
            payloads.setdefault((namespace, event), []).append(payload)
    return {pair: st.one_of(strategies) for pair, strategies in payloads.items()}


# Client events that take no payload: nothing to refuse (their own tests cover them).
NO_PAYLOAD = {("/admin", "monitor:bookings"), ("/admin", "request:stats")}


def refusable_events() -> set[tuple[str, str]]:
    return {(spec.namespaces[0], spec.name) for spec in catalogue.events() if spec.direction == "client"} - NO_PAYLOAD


def row_counts() -> dict[str, int]:
    models = (Booking, BookingStatusChange, Message, Notification, KycSubmission, SafetyAlert, LocationFix)
    return {m.__name__: m.objects.count() for m in models}


def test_every_client_event_refuses_hostile_payloads(
    live_server_url, customer, other_customer, partner, staff, service, caplog, settings
):
    settings.RATE_LIMITS = {key: (1_000_000, 1.0) for key in settings.RATE_LIMITS}
    world = {"foreign_booking": str(BookingFactory(customer=other_customer, service=service).pk)}
    world["stranger"] = str(UserFactory(username="stranger").pk)
    partner_before = Partner.objects.values().get(pk=partner.pk)
    counts = row_counts()
    loop = asyncio.new_event_loop()
    users = {"/customer": customer, "/partner": partner.user, "/admin": staff}
    clients = {
        ns: loop.run_until_complete(RawSocket(live_server_url, ns).connect(token_for(user)))
        for ns, user in users.items()
    }
    caplog.set_level(logging.ERROR)
    cases = socket_cases(world)
    assert set(cases) == refusable_events()  # every declared client event is fuzzed

    def refusals_of(namespace: str, event: str) -> None:
        @FUZZ_EACH_EVENT
        @given(payload=cases[(namespace, event)])
        def refuses(payload: object) -> None:
            ack = loop.run_until_complete(clients[namespace].call(event, payload))
            assert ack["ok"] is False, (namespace, event, payload, ack)
            assert ack["error"]["code"] in ERROR_CODES, (namespace, event, payload, ack)
            assert "Traceback" not in ack["error"]["message"]

        refuses()

    try:
        for namespace, event in cases:  # each event its own examples: none left untried
            refusals_of(namespace, event)
        assert all(c.open for c in clients.values())
    finally:
        for client in clients.values():
            loop.run_until_complete(client.close())
        loop.close()
    assert row_counts() == counts
    partner_after = Partner.objects.values().get(pk=partner.pk)
    assert {k: partner_after[k] for k in ("last_latitude", "last_longitude", "is_available")} == {
        k: partner_before[k] for k in ("last_latitude", "last_longitude", "is_available")
    }
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


# ---------------------------------------------------------------- REST writes
text_bad = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=2), with_surrogate, huge_text)
number_bad = st.one_of(st.none(), st.booleans(), st.text(max_size=5), with_surrogate, st.floats(min_value=181))
id_bad = st.one_of(st.none(), st.booleans(), with_surrogate, big_numbers, st.text(max_size=5), st.just(999_999))


# What a bad field may be answered with: malformed (400) or naming nothing (404), never a
# refusal of the caller (401, 403, 429) that would hide whether the body was checked at all.
BAD_BODY = {400: "VALIDATION_ERROR", 404: "NOT_FOUND"}
# ... except where the caller's standing is what is wrong: a login whose password cannot match,
# a booking that is someone else's.
ANSWERS = {"/api/auth/token/": {**BAD_BODY, 401: None}, "cancel/": {**BAD_BODY, 403: "FORBIDDEN"}}


def expected_answers(path: str) -> dict[int, str | None]:
    return next((answers for end, answers in ANSWERS.items() if path.endswith(end)), BAD_BODY)


def not_an_id(value: object) -> bool:
    try:
        parse_id(value, field="id")
    except ValidationError:
        return True
    return False


def rest_cases(world: dict) -> st.SearchStrategy:
    """``(role, path, body)`` where the body has one field made bad (the rest valid)."""
    register = {"username": "newbie", "password": "tangerine-kettle-42", "email": "", "name": "New", "phone": "1"}
    booking = {
        "serviceId": world["service"],
        "scheduledAt": "2030-01-01T10:00:00Z",
        "address": "1 Road",
        "latitude": 28.6,
        "longitude": 77.2,
    }
    partner = {"username": "newpartner", "password": "tangerine-kettle-42", "name": "P", "phone": "1", "services": []}

    def one_bad(base: dict, field: str, bad: st.SearchStrategy) -> st.SearchStrategy:
        return bad.map(lambda value: {**base, field: value})

    cases = [
        ("anon", "/api/auth/register/", one_bad(register, "username", text_bad)),
        ("anon", "/api/auth/register/", one_bad(register, "name", text_bad)),
        ("anon", "/api/auth/register/", one_bad(register, "password", text_bad)),
        ("anon", "/api/partners/register/", one_bad(partner, "services", st.lists(id_bad, min_size=1, max_size=2))),
        ("anon", "/api/partners/register/", one_bad(partner, "phone", text_bad)),
        ("anon", "/api/auth/token/", one_bad({"username": "alice", "password": "x"}, "password", text_bad)),
        ("customer", "/api/bookings/", one_bad(booking, "latitude", number_bad)),
        ("customer", "/api/bookings/", one_bad(booking, "longitude", number_bad)),
        ("customer", "/api/bookings/", one_bad(booking, "serviceId", id_bad)),
        ("customer", "/api/bookings/", one_bad(booking, "address", text_bad)),
        ("customer", "/api/bookings/", one_bad(booking, "scheduledAt", text_bad)),
        ("customer", f"/api/bookings/{world['foreign_booking']}/cancel/", st.fixed_dictionaries({"reason": text_bad})),
        (
            "partner",
            "/api/partners/me/kyc/",
            one_bad({"documentType": "PAN", "documentNumber": "X1"}, "documentNumber", text_bad),
        ),
        (
            "partner",
            "/api/partners/me/kyc/",
            one_bad({"documentType": "PAN", "documentNumber": "X1"}, "documentType", text_bad),
        ),
        ("staff", f"/api/bookings/{world['booking']}/assign/", st.fixed_dictionaries({"partnerId": id_bad})),
        # (an unknown but well-formed user id marks nothing read: 200 {marked: 0}, no write)
        ("customer", "/api/messages/read/", st.fixed_dictionaries({"with": id_bad.filter(not_an_id)})),
        ("customer", "/api/notifications/99999999999999999999/read/", st.just({})),
    ]
    return st.one_of([st.tuples(st.just(role), st.just(path), body) for role, path, body in cases])


def test_every_rest_write_refuses_hostile_bodies(customer, other_customer, partner, staff, service, caplog):
    from rest_framework.test import APIClient

    world = {
        "service": service.pk,
        "foreign_booking": str(BookingFactory(customer=other_customer, service=service).pk),
        "booking": str(BookingFactory(customer=customer, service=service).pk),
    }
    counts = row_counts()
    users = {"customer": customer, "partner": partner.user, "staff": staff}
    caplog.set_level(logging.ERROR)

    @FUZZ
    @given(case=rest_cases(world))
    def refuses(case: tuple) -> None:
        role, path, body = case
        client = APIClient()
        if role in users:
            client.force_authenticate(users[role])
        # The standard library escapes lone surrogates as a JavaScript client would ("\\ud800").
        response = client.post(path, json.dumps(body), content_type="application/json")
        answers = expected_answers(path)
        assert response.status_code in answers, (case, response.status_code, response.content[:300])
        assert {"code", "message"} <= set(response.json()), response.json()
        assert answers[response.status_code] in (None, response.json()["code"]), (case, response.json())

    refuses()
    assert row_counts() == counts
    assert not type(customer).objects.filter(username__in=["newbie", "newpartner"]).exists()
    assert not [r for r in caplog.records if r.exc_info]


def test_query_strings_with_invalid_text_are_refused(api_as, customer):
    client = api_as(customer)
    for query in ("with=%ED%A0%80", "after=%C0%AF", "with=%F0%9F", f"booking={uuid.uuid4()}%00", "after=²"):
        response = client.get(f"/api/messages/?{query}")
        assert response.status_code in (400, 404), (query, response.status_code)
        assert response.json()["code"] in {"VALIDATION_ERROR", "NOT_FOUND"}
