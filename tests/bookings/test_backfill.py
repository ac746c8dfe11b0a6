"""Offline backfill over the real server (contract 10.3): a partner back from a gap sends the fixes
their phone kept; they fill the job's trace once each, thinned, and never move the customer's marker
backwards."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bookings.models import BookingStatus as S
from config.formats import iso
from partners.models import LocationFix, Partner
from partners.tracking import locations
from tests.factories import BookingFactory
from tests.live import Client, eventually, require_node, run, token_for
from tests.realtime.test_recovery import NodeClient, kind, status_event

pytestmark = pytest.mark.django_db(transaction=True)
DEG_PER_M = 1 / 111_195


def fix(at: datetime, north_m: float = 0.0, **extra) -> dict:
    return {"latitude": 28.6 + north_m * DEG_PER_M, "longitude": 77.2, "recordedAt": iso(at), **extra}


def stored(partner) -> list[datetime]:
    points = LocationFix.objects.filter(partner=partner).order_by("recorded_at")
    return list(points.values_list("recorded_at", flat=True))


def on_a_job(customer, partner, service):
    return BookingFactory(customer=customer, partner=partner, status=S.PARTNER_EN_ROUTE, service=service)


async def tracking(url, customer, booking) -> Client:
    c = await Client(url, "/customer").connect(token_for(customer))
    assert (await c.call("booking:track", str(booking.pk)))["ok"]
    return c


def test_a_partner_back_from_a_gap_fills_it_thinned_and_the_marker_never_moves_backwards(
    live_server_url, customer, partner, service
):
    booking = on_a_job(customer, partner, service)
    now = datetime.now(UTC).replace(microsecond=0)
    at = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    # Offline from 90 s to 10 s ago, a fix every 5 s, 3 m apart: thinning keeps one per 10 s.
    gap = [fix(at(s), north_m=3 * (90 - s)) for s in range(90, 9, -5)]

    async def scenario():
        c = await tracking(live_server_url, customer, booking)
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        assert (await p.call("location:update", fix(at(100))))["relayed"] == 1
        assert (await p.call("location:update", fix(at(95))))["relayed"] == 1
        await p.close()  # the phone drives into a tunnel

        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        assert (await p.call("location:update", fix(at(5), north_m=300)))["relayed"] == 1  # live again first
        ack = await p.call("location:batch", {"fixes": gap})
        assert ack == {"ok": True, "accepted": len(gap), "duplicates": 0, "rejected": 0}
        late = await p.call("location:update", fix(at(47), north_m=130))  # a late fix on its own
        assert late == {"ok": True, "relayed": 0}
        replay = await p.call("location:batch", {"fixes": list(reversed(gap))})  # in any order
        assert replay == {"ok": True, "accepted": 0, "duplicates": len(gap), "rejected": 0}
        await c.wait_for("partner:location_update", count=3)
        await p.call("booking:status_update", {"bookingId": str(booking.pk), "status": "PARTNER_ARRIVED"})
        await c.wait_for("booking:status_updated")  # anything relayed by now has reached the customer
        await p.close()
        await c.close()
        return c.events["partner:location_update"]

    seen = run(scenario())
    # The customer saw the live fixes only, each with its recordedAt, in order: never the gap's.
    assert [u["timestamp"] for u in seen] == [iso(at(100)), iso(at(95)), iso(at(5))]
    assert seen[-1]["location"]["latitude"] == pytest.approx(28.6 + 300 * DEG_PER_M)
    # The trace: the live fixes, the gap thinned to a point per 10 s, the late fix, once each.
    gap_points = [at(s) for s in range(90, 9, -10)]
    expected = sorted([at(100), *gap_points, at(47), at(5)])  # 95 s: within 10 s and 25 m of 100 s
    eventually(lambda: stored(partner) == expected, what=f"the trace {expected}, not {stored(partner)}")
    assert Partner.objects.get(pk=partner.pk).last_location_at == at(5)
    # Nothing of the partner stays in the buffer once their last socket went.
    eventually(lambda: partner.pk not in locations.newest and partner.pk not in locations.kept, what="forgotten")


def test_a_batch_sent_first_moves_the_marker_to_its_newest_fix(live_server_url, customer, partner, service):
    booking = on_a_job(customer, partner, service)
    now = datetime.now(UTC)
    Partner.objects.filter(pk=partner.pk).update(last_location_at=now - timedelta(minutes=5))
    fixes = [fix(now - timedelta(seconds=s), north_m=40 * (60 - s), speed=8.0) for s in (60, 40, 20)]

    async def scenario():
        c = await tracking(live_server_url, customer, booking)
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        ack = await p.call("location:batch", {"fixes": fixes})
        assert ack == {"ok": True, "accepted": 3, "duplicates": 0, "rejected": 0}
        at_ack = await asyncio.to_thread(stored, partner)  # stored before the ack
        [update] = await c.wait_for("partner:location_update")
        # Older than the database's newest: not relayed, not stored as the position.
        assert (await p.call("location:update", fix(now - timedelta(minutes=6))))["relayed"] == 0
        await p.close()
        await c.close()
        return update, c.events["partner:location_update"], at_ack

    update, seen, at_ack = run(scenario())
    assert len(seen) == 1
    assert update["timestamp"] == fixes[-1]["recordedAt"]
    assert update["location"] == {"latitude": fixes[-1]["latitude"], "longitude": 77.2}
    assert update["etaSeconds"] == round(update["distanceMeters"] / 8.0)
    assert at_ack == [datetime.fromisoformat(f["recordedAt"]) for f in fixes]
    # The late live fix (older than the batch) fills the trace once its socket's buffer is written.
    eventually(lambda: len(stored(partner)) == 4, what="the late fix in the trace")
    newest = datetime.fromisoformat(fixes[-1]["recordedAt"])
    moved = lambda: Partner.objects.get(pk=partner.pk)  # noqa: E731
    eventually(lambda: moved().last_location_at == newest, what="the buffered position written")
    assert moved().last_latitude == fixes[-1]["latitude"]


def test_a_newer_fix_known_from_the_database_is_not_undone_on_connect(live_server_url, partner):
    now = datetime.now(UTC).replace(microsecond=0)
    Partner.objects.filter(pk=partner.pk).update(last_latitude=1.0, last_longitude=2.0, last_location_at=now)

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        ack = await p.call("location:update", fix(now - timedelta(seconds=30)))
        assert ack == {"ok": True, "relayed": 0}
        ack = await p.call("location:batch", {"fixes": [fix(now - timedelta(seconds=20))]})
        assert ack == {"ok": True, "accepted": 1, "duplicates": 0, "rejected": 0}
        await p.close()

    run(scenario())
    eventually(lambda: partner.pk not in locations.newest, what="the partner's socket gone")
    kept = Partner.objects.get(pk=partner.pk)
    assert (kept.last_latitude, kept.last_location_at) == (1.0, now)
    assert stored(partner) == []  # no job: nothing kept as a trace


def test_a_malformed_batch_is_refused_whole_and_fixes_out_of_bounds_are_rejected(
    live_server_url, customer, partner, service, settings
):
    # Nine batches at once: past the production limit (a refusal counts against it too).
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "location:batch": (1000, 10.0)}
    on_a_job(customer, partner, service)
    now = datetime.now(UTC)
    good = [fix(now - timedelta(seconds=s)) for s in (50, 40, 30)]

    async def scenario():
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        refusals = {}
        many = [fix(now - timedelta(seconds=s / 10)) for s in range(501)]
        for name, batch in {
            "too many": many,
            "latitude": [*good, {**good[0], "latitude": 95}],
            "no offset": [*good, {**good[0], "recordedAt": "2026-12-06T10:00:00"}],
            "not a time": [*good, {**good[0], "recordedAt": "soon"}],
            "no recordedAt": [*good, {"latitude": 1, "longitude": 2}],
            "not a list": {"latitude": 1},
        }.items():
            ack = await p.call("location:batch", {"fixes": batch})
            assert ack["ok"] is False, name
            refusals[name] = ack["error"]
        for name in ("no fixes", "a list"):
            ack = await p.call("location:batch", [] if name == "a list" else {})
            refusals[name] = ack["error"]
        ahead = fix(now + timedelta(minutes=3))
        old = fix(now - timedelta(hours=25))
        ack = await p.call("location:batch", {"fixes": [ahead, *good, old]})
        single = [await p.call("location:update", f) for f in (ahead, old, {**good[0], "recordedAt": "today"})]
        await p.close()
        return refusals, ack, single

    refusals, ack, single = run(scenario())
    assert {error["code"] for error in refusals.values()} == {"VALIDATION_ERROR"}, refusals
    assert refusals["too many"]["details"] == {"fixes": ["maxItems"]}
    assert refusals["latitude"]["details"] == {"fixes.3.latitude": ["maximum"]}
    assert refusals["no offset"]["details"] == {"fixes.3.recordedAt": ["not a date and time with an offset"]}
    assert ack == {"ok": True, "accepted": 3, "duplicates": 0, "rejected": 2}
    assert [s["error"]["details"] for s in single] == [
        {"recordedAt": ["out of bounds"]},
        {"recordedAt": ["out of bounds"]},
        {"recordedAt": ["not a date and time with an offset"]},
    ]
    # Only the last batch's three good fixes were stored: nothing of the refused ones.
    eventually(lambda: stored(partner) == [datetime.fromisoformat(f["recordedAt"]) for f in good], what="3 points")


@pytest.mark.node
def test_the_official_client_sends_its_batch_on_reconnect_and_the_marker_never_goes_back(
    live_server_url, customer, partner, service
):
    require_node()
    booking = on_a_job(customer, partner, service)
    now = datetime.now(UTC).replace(microsecond=0)
    at = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    gap = [fix(at(s), north_m=3 * (90 - s)) for s in range(90, 9, -5)]
    c = NodeClient(live_server_url, "/customer", token_for(customer))
    p = NodeClient(live_server_url, "/partner", token_for(partner.user))

    def call(node: NodeClient, event: str, payload) -> dict:
        node.send("emit", event, payload)
        return node.wait(lambda line: line["type"] == "ack" and line["event"] == event)["ack"]

    try:
        c.wait(kind("connect"))
        assert call(c, "booking:track", str(booking.pk))["ok"]
        p.wait(kind("connect"))
        assert call(p, "location:update", fix(at(100)))["relayed"] == 1
        assert call(p, "location:update", fix(at(95)))["relayed"] == 1
        p.send("drop")  # the network goes: the client reconnects by itself, then sends what it kept
        p.wait(kind("disconnect"))
        p.wait(kind("connect"))
        assert call(p, "location:batch", {"fixes": gap}) == {"ok": True, "accepted": 17, "duplicates": 0, "rejected": 0}
        assert call(p, "location:update", fix(at(5), north_m=300))["relayed"] == 1
        assert call(p, "location:update", fix(at(47)))["relayed"] == 0  # late: the trace only
        replay = call(p, "location:batch", {"fixes": gap})
        assert replay == {"ok": True, "accepted": 0, "duplicates": 17, "rejected": 0}
        assert call(p, "booking:status_update", {"bookingId": str(booking.pk), "status": "PARTNER_ARRIVED"})["ok"]
        c.wait(status_event("PARTNER_ARRIVED"))
    finally:
        p.close()
        c.close()
    seen = [line["payload"]["timestamp"] for line in c.lines if line.get("name") == "partner:location_update"]
    # The gap's newest fix (10 s ago) moved the marker on reconnect; nothing older ever reached it.
    assert seen == [iso(at(100)), iso(at(95)), iso(at(10)), iso(at(5))]
    assert seen == sorted(seen)
    gap_points = [at(s) for s in range(90, 9, -10)]
    expected = sorted([at(100), *gap_points, at(47), at(5)])
    eventually(lambda: stored(partner) == expected, what=f"the trace {expected}, not {stored(partner)}")


def test_a_phone_clock_ahead_of_the_servers_does_not_freeze_the_marker(live_server_url, customer, partner, service):
    """A phone whose clock runs 2 minutes fast (within bounds) sent one fix with its recordedAt: the
    updates after it (server-timed, no recordedAt) were "not newer" and froze the marker for 2
    minutes. A fix from the future counts as recorded at the server's now for the live position
    (its trace point keeps the phone's instant); the customer's timestamps still only go forward."""
    booking = on_a_job(customer, partner, service)
    ahead = datetime.now(UTC) + timedelta(seconds=110)

    async def scenario():
        c = await tracking(live_server_url, customer, booking)
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        assert (await p.call("location:update", fix(ahead)))["relayed"] == 1
        before = datetime.now(UTC)
        live = {"latitude": 28.6 + 50 * DEG_PER_M, "longitude": 77.2}  # server-timed
        assert (await p.call("location:update", live))["relayed"] == 1
        await c.wait_for("partner:location_update", count=2)
        await p.close()
        await c.close()
        return before, c.events["partner:location_update"]

    before, seen = run(scenario())
    stamps = [datetime.fromisoformat(u["timestamp"]) for u in seen]
    assert stamps == sorted(stamps) and all(stamp <= before + timedelta(seconds=5) for stamp in stamps)
    assert seen[-1]["location"]["latitude"] == pytest.approx(28.6 + 50 * DEG_PER_M)
    # The trace keeps the phone's own instant (the point's key: a replay is still a duplicate).
    eventually(
        lambda: len(stored(partner)) == 2 and stored(partner)[-1] > before + timedelta(seconds=100), what="trace"
    )
    last = Partner.objects.get(pk=partner.pk).last_location_at
    assert last <= datetime.now(UTC)  # never a position "recorded" in the future
