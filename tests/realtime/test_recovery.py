"""Connection state recovery (contract 8.3) with the official socket.io-client 4.8.

The transport is cut for real: the client talks through a TCP proxy the test owns, which
drops every connection and refuses new ones while events happen, then lets the client
back in, to the same server process or to another one.
"""

import asyncio
import collections
import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async as sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from bookings import events, services
from bookings.models import BookingStatus as S
from config import rooms
from config.realtime import recovery, recovery_store
from config.realtime.emit import emit, emit_message
from config.realtime.identity import user_room
from config.realtime.lanes import Lane
from config.realtime.routing import group_of, room_group
from config.realtime.server import sio
from messaging.notify import notification_create
from tests.factories import BookingFactory, StaffFactory
from tests.live import (
    Client,
    RawSocket,
    ServerProcess,
    TcpProxy,
    eventually,
    require_node,
    run,
    server_processes,
    token_for,
    wait_until,
)
from tests.realtime.test_cluster import cluster_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.node]
JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(autouse=True)
def _node_available():
    require_node()


class NodeClient:
    """``tests/js/recovery_client.mjs``: the official client, one JSON line per happening."""

    def __init__(self, url: str, namespace: str, token: str) -> None:
        self.proc = subprocess.Popen(
            ["node", "recovery_client.mjs", url, namespace],
            cwd=JS,
            env={**os.environ, "ACCESS_TOKEN": token},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._new: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._new.put(json.loads(line))

    def wait(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        """The next line matching ``predicate`` (earlier ones are kept in ``lines``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout} s; saw {self.lines[-8:]}") from None
            self.lines.append(line)
            if predicate(line):
                return line

    def send(self, *command: Any) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def events_after(self, marker: dict[str, Any]) -> list[tuple[str, Any]]:
        start = next(i for i, line in enumerate(self.lines) if line is marker)
        return [(line["name"], line["payload"]) for line in self.lines[start:] if line["type"] == "event"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("exit")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def kind(name: str):
    return lambda line: line["type"] == name


def status_event(status: str):
    return lambda line: line.get("name") == "booking:status_updated" and line["payload"]["status"] == status


def tracking_customer(url: str, customer, booking) -> tuple[NodeClient, dict[str, Any]]:
    """The official client connected, tracking ``booking``, having seen one logged event."""
    node = NodeClient(url, "/customer", token_for(customer))
    first = node.wait(kind("connect"))
    assert first["recovered"] is False
    node.send("emit", "booking:track", str(booking.pk))
    assert node.wait(kind("ack"))["ack"]["ok"] is True
    return node, first


@contextlib.contextmanager
def through_proxy(url: str, customer, booking) -> Iterator[tuple[TcpProxy, NodeClient, dict[str, Any]]]:
    """A proxy in front of ``url`` and the official client tracking ``booking`` through it."""
    proxy = TcpProxy(url).start()
    node, first = tracking_customer(proxy.url, customer, booking)
    try:
        yield proxy, node, first
    finally:
        node.close()
        proxy.stop()


def the_gap(booking, customer, partner) -> None:
    """What happens while the phone is away: socket events, a notification, a REST-side change."""
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
    notification_create(user_id=customer.pk, type="promo", title="While you were away", body="", data={})
    services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.IN_PROGRESS)


GAP = [
    ("booking:status_updated", "PARTNER_ARRIVED"),
    ("notification:new", "While you were away"),
    ("booking:status_updated", "IN_PROGRESS"),
]


def gap_seen(node: NodeClient, marker: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (name, payload.get("status") or payload.get("title"))
        for name, payload in node.events_after(marker)
        if name in ("booking:status_updated", "notification:new")
    ]


def cut_connection(proxy: TcpProxy, node: NodeClient, sid: str) -> dict[str, Any]:
    """Cut the client's TCP connection; its ``disconnect``, once this server has seen the socket go."""
    proxy.cut()
    gone = node.wait(kind("disconnect"))
    eventually(lambda: not sio.manager.is_connected(sid, rooms.CUSTOMER), what="server saw the cut")
    return gone


def test_a_cut_is_recovered_on_the_same_process(live_server_url, customer, partner, service):
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
        node.wait(status_event("PARTNER_EN_ROUTE"))

        cut = cut_connection(proxy, node, first["id"])
        assert cut["reason"] == "transport close"
        the_gap(booking, customer, partner)

        async def partner_moves(latitude: float) -> int:
            p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
            relayed = (await p.call("location:update", {"latitude": latitude, "longitude": 77.21}))["relayed"]
            await p.close()
            return relayed

        run(partner_moves(28.615))  # volatile: superseded by the next, never logged nor replayed
        proxy.reopen()

        back = node.wait(kind("connect"))
        assert back["recovered"] is True and back["id"] == first["id"]
        assert gap_seen(node, cut) == GAP  # every missed event, once, in order, none from before the cut

        # its booking room came back with it: the partner's position arrives without re-tracking
        assert run(partner_moves(28.62)) == 1
        moved = node.wait(lambda line: line.get("name") == "partner:location_update")
        assert moved["payload"]["bookingId"] == str(booking.pk)
        # The replay came before ``connect``: the gap's position, had it been replayed, would be first.
        positions = [p["location"]["latitude"] for n, p in node.events_after(cut) if n == "partner:location_update"]
        assert positions == [28.62]
        node.send("emit", "booking:untrack", str(booking.pk))
        assert node.wait(kind("ack"))["ack"]["ok"] is True
        # A barrier: a last event to the user's room, through the same process, read up to it. A
        # second copy of anything replayed, or a late position, would have come before it.
        notification_create(user_id=customer.pk, type="promo", title="Barrier", body="", data={})
        node.wait(lambda line: line.get("name") == "notification:new" and line["payload"]["title"] == "Barrier")
        assert gap_seen(node, cut) == [*GAP, ("notification:new", "Barrier")]  # nothing came twice
        positions = [p["location"]["latitude"] for n, p in node.events_after(cut) if n == "partner:location_update"]
        assert positions == [28.62]


def test_a_cut_is_recovered_on_another_process(cluster_env, customer, partner, service):  # noqa: F811
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    staff = StaffFactory()
    with server_processes(cluster_env) as (a, b):
        proxy = TcpProxy(a.url).start()
        node, first = tracking_customer(proxy.url, customer, booking)
        try:
            services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
            node.wait(status_event("PARTNER_EN_ROUTE"))
            proxy.cut()
            cut = node.wait(kind("disconnect"))
            time.sleep(0.5)  # process A notices the closed transport and keeps the session
            notification_create(user_id=customer.pk, type="promo", title="While you were away", body="", data={})
            services.booking_cancel(booking_id=booking.pk, actor=staff, reason="ops")  # as REST and the admin do
            proxy.reopen(upstream=b.url)

            back = node.wait(kind("connect"))
            assert back["recovered"] is True and back["id"] == first["id"]  # missed events come before "connect"
            assert gap_seen(node, cut) == [
                ("notification:new", "While you were away"),
                ("booking:status_updated", "CANCELLED"),
                ("notification:new", "Booking cancelled"),
            ]
            # a second cut, now on B, recovers too (the recovered session was kept again)
            proxy.cut()
            again = node.wait(kind("disconnect"))
            time.sleep(0.5)
            notification_create(user_id=customer.pk, type="promo", title="Second gap", body="", data={})
            proxy.reopen(upstream=a.url)
            back = node.wait(kind("connect"))
            assert back["recovered"] is True and back["id"] == first["id"]
            assert gap_seen(node, again) == [("notification:new", "Second gap")]
        finally:
            node.close()
            proxy.stop()


def test_events_sent_while_a_session_recovers_arrive_once_and_in_order(
    cluster_env,  # noqa: F811
    customer,
    partner,
    service,
):
    """Events stream to a booking's room without a pause while the phone is cut and recovers, on
    the other process and back, four times: it gets every one, once, in order. The recovering
    process listens to the rooms it gives back before it reads what was missed, so nothing falls
    between the log's read and the room's subscription (contract 8.3, 9.4)."""
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    stop, sent = threading.Event(), []

    def stream() -> None:  # to the booking's room (rejoined in the recovery) and to the user's (at connect)
        try:
            while not stop.is_set():
                title = f"n{len(sent)}"
                payload = {**events.status_updated(booking), "message": title}
                emit("booking:status_updated", payload, namespace=rooms.CUSTOMER, room=rooms.booking(booking.pk))
                sent.append(title)
                time.sleep(0.003)
        finally:
            connections.close_all()

    with server_processes(cluster_env) as (a, b):
        proxy = TcpProxy(a.url).start()
        node, first = tracking_customer(proxy.url, customer, booking)
        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            for upstream in (b, a, b, a):
                time.sleep(0.3)
                proxy.cut()
                node.wait(kind("disconnect"))
                time.sleep(0.3)  # the old process keeps the session; events go on meanwhile
                proxy.reopen(upstream=upstream.url)
                back = node.wait(kind("connect"))
                assert back["recovered"] is True and back["id"] == first["id"]
            time.sleep(0.3)
        finally:
            stop.set()
            streamer.join(30)
        try:
            last = sent[-1]
            node.wait(
                lambda line: line.get("name") == "booking:status_updated" and line["payload"]["message"] == last,
                timeout=30,
            )
            got = [p["message"] for name, p in node.events_after(first) if name == "booking:status_updated"]
            assert len(sent) >= 50, len(sent)  # events really flowed through the cuts
            missing = sorted(set(sent) - set(got), key=lambda t: int(t[1:]))
            assert missing == [] and got == sent, (missing, [t for t, n in collections.Counter(got).items() if n > 1])
        finally:
            node.close()
            proxy.stop()


# How long the broker takes to subscribe the in-process server to a room (at most JOIN_SETTLE_SECONDS
# is waited for), and how far a publisher's PUBLISH trails its log entry.
SUBSCRIBE_DELAY, PUBLISH_LAG = 0.3, 0.05


def slow_subscriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every subscription change a lane would send waits ``SUBSCRIBE_DELAY`` first, as on a busy
    shard: the round leaves it (and the joins waiting on it) pending and comes back when it is due."""
    reconcile = Lane._reconcile
    due: dict[int, float] = {}

    def late(lane: Lane, subscriber: Any) -> None:
        if lane.dirty:
            loop = asyncio.get_running_loop()
            when = due.setdefault(id(lane), loop.time() + SUBSCRIBE_DELAY)
            if loop.time() < when:
                loop.call_at(when, lane.wake.set)
                return
            del due[id(lane)]
        reconcile(lane, subscriber)

    monkeypatch.setattr(Lane, "_reconcile", late)


def stream_late(booking, stop: threading.Event, sent: list[str]) -> None:
    """Another process's events, in turn to ``booking``'s room and to its customer's own room, each
    logged at once and published ``PUBLISH_LAG`` later (in order): at any moment some are in the log
    but not yet on the broker."""
    payload = events.status_updated(booking)
    targets = (rooms.booking(booking.pk), user_room(booking.customer_id))

    async def publish_each(due: asyncio.Queue) -> None:
        layer, loop = get_channel_layer(), asyncio.get_running_loop()
        while (item := await due.get()) is not None:
            when, message = item
            await asyncio.sleep(max(0.0, when - loop.time()))
            await layer.group_send(group_of(sio.manager.channel, message), {"type": "sio.message", "data": message})

    async def main() -> None:
        store, due, loop = recovery.build(), asyncio.Queue(), asyncio.get_running_loop()
        publisher = asyncio.create_task(publish_each(due))
        try:
            while not stop.is_set():
                title = f"n{len(sent)}"
                message = emit_message(
                    "booking:status_updated",
                    {**payload, "message": title},
                    namespace=rooms.CUSTOMER,
                    room=targets[len(sent) % 2],
                )
                message["host_id"] = "a-slow-publisher"
                [message["offset"]] = await store.append([(rooms.CUSTOMER, message)])
                assert message["offset"] is not None
                sent.append(title)
                due.put_nowait((loop.time() + PUBLISH_LAG, message))
                await asyncio.sleep(0.003)
        finally:
            due.put_nowait(None)
            await publisher
            await store.close()

    asyncio.run(main())


@pytest.mark.redis
def test_a_recovery_while_a_slow_publisher_streams_has_no_gap_and_no_repeat(
    live_server_url, customer, service, monkeypatch
):
    """The race of the recovery, made to happen every run: the broker takes ``SUBSCRIBE_DELAY`` to
    subscribe to a room, and the publisher logs each event ``PUBLISH_LAG`` before it publishes it.

    - An event logged after the log is read and published before the room is subscribed would be
      lost: the recovering socket listens to its rooms before the read (without that wait, about
      ``SUBSCRIBE_DELAY`` of events go missing).
    - An event logged before the read and published after it comes both ways, in the replay and
      live: the live copy is dropped. While the socket waits for its booking room, its own room
      (joined first) already delivers: those live copies are held and dropped when the replay has
      carried them; the booking room's come after the replay and are dropped as they arrive.
      Without either drop, events come twice.
    """
    if not settings.REDIS_URL:
        pytest.skip("the room's subscription is the broker's (set REDIS_URL); .ci/run runs it")
    booking = BookingFactory(customer=customer, service=service, status=S.PARTNER_ACCEPTED)
    group = room_group(sio.manager.channel, rooms.CUSTOMER, rooms.booking(booking.pk))
    stop, sent = threading.Event(), []
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        assert sio.manager._lanes, "the in-process server publishes through no broker"
        lane = sio.manager.lane_of(group)  # once the server runs
        slow_subscriptions(monkeypatch)
        streamer = threading.Thread(target=stream_late, args=(booking, stop, sent))
        streamer.start()
        try:
            node.wait(lambda line: line.get("name") == "booking:status_updated")  # live, before the cut
            cut_connection(proxy, node, first["id"])
            # The room's last socket here is gone: the process leaves its group, so the recovery
            # has to subscribe again (the race), while the log fills up for the replay.
            eventually(lambda: group not in lane.subscribed, what="the room's group left")
            proxy.reopen()
            back = node.wait(kind("connect"))
            assert back["recovered"] is True and back["id"] == first["id"]
            # The stream goes on past any subscription still pending and every late live copy.
            time.sleep(SUBSCRIBE_DELAY + 4 * PUBLISH_LAG)
        finally:
            stop.set()
            streamer.join(30)
        last = sent[-1]
        node.wait(lambda line: line.get("name") == "booking:status_updated" and line["payload"]["message"] == last)
    got = [p["message"] for name, p in node.events_after(first) if name == "booking:status_updated"]
    missing = sorted(set(sent) - set(got), key=lambda t: int(t[1:]))
    twice = sorted((t for t, n in collections.Counter(got).items() if n > 1), key=lambda t: int(t[1:]))
    assert (missing, twice) == ([], []), f"{len(missing)} missing: {missing[:5]}; {len(twice)} twice: {twice[:5]}"
    assert got == sent  # and in order


def test_no_recovery_after_a_voluntary_disconnect_or_outside_the_window(
    live_server_url, customer, service, monkeypatch
):
    booking = BookingFactory(customer=customer, service=service, status=S.PENDING)
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        node.send("disconnect")  # the app closed it: nothing kept
        node.wait(kind("disconnect"))
        node.send("connect")
        again = node.wait(kind("connect"))
        assert again["recovered"] is False and again["id"] != first["id"]

        monkeypatch.setattr(sio.recovery.store, "window", 1)  # sessions kept one second
        proxy.cut()
        node.wait(kind("disconnect"))
        time.sleep(2.5)
        proxy.reopen()
        late = node.wait(kind("connect"))
        assert late["recovered"] is False and late["id"] != again["id"]


def test_recovery_needs_a_user_who_may_still_connect(live_server_url, customer, service):
    booking = BookingFactory(customer=customer, service=service, status=S.PENDING)
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        cut_connection(proxy, node, first["id"])
        type(customer).objects.filter(pk=customer.pk).update(is_active=False)
        proxy.reopen()
        refused = node.wait(kind("connect_error"))
        assert refused["data"]["code"] == "FORBIDDEN"


def test_a_partner_suspended_during_the_gap_is_refused(live_server_url, partner):
    proxy = TcpProxy(live_server_url).start()
    node = NodeClient(proxy.url, "/partner", token_for(partner.user))
    try:
        first = node.wait(kind("connect"))
        proxy.cut()
        node.wait(kind("disconnect"))
        eventually(lambda: not sio.manager.is_connected(first["id"], rooms.PARTNER), what="server saw the cut")
        type(partner).objects.filter(pk=partner.pk).update(is_suspended=True)  # no signal: nothing announced
        proxy.reopen()
        refused = node.wait(kind("connect_error"))
        assert refused["data"]["code"] == "FORBIDDEN"
    finally:
        node.close()
        proxy.stop()


def test_a_socket_the_server_kicked_is_not_recovered(live_server_url, customer, service):
    booking = BookingFactory(customer=customer, service=service, status=S.PENDING)
    node, first = tracking_customer(live_server_url, customer, booking)
    try:
        customer.is_active = False
        customer.save()  # kicked on every process
        gone = node.wait(kind("disconnect"))
        assert gone["reason"] == "io server disconnect"
        type(customer).objects.filter(pk=customer.pk).update(is_active=True)
        node.send("connect")
        back = node.wait(kind("connect"))
        assert back["recovered"] is False and back["id"] != first["id"]
    finally:
        node.close()


def test_python_socketio_clients_get_the_offset_as_a_last_argument(live_server_url, customer, partner, service):
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)

    async def scenario():
        c = await Client(live_server_url, "/customer").connect(token_for(customer))
        await c.call("booking:track", str(booking.pk))
        await sync_to_async(services.booking_update_status)(
            booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE
        )
        [update] = await c.wait_for("booking:status_updated")
        assert update["status"] == "PARTNER_EN_ROUTE"
        assert [event for event, _ in c.offsets] == ["booking:status_updated"]
        p = await Client(live_server_url, "/partner").connect(token_for(partner.user))
        await p.call("location:update", {"latitude": 28.62, "longitude": 77.21})
        await c.wait_for("partner:location_update")
        assert [event for event, _ in c.offsets] == ["booking:status_updated"]  # volatile: no offset
        await p.close()
        await c.close()

    run(scenario())


def empty_the_log(namespace: str) -> None:
    """Trim the namespace's log to nothing, as its length or age limit would in time."""
    store = sio.recovery.store
    if isinstance(store, recovery_store.RedisStore):  # a client of its own: the store's belongs to the server's loop
        redis.Redis.from_url(settings.REDIS_URL).xtrim(store._stream(namespace), maxlen=0, approximate=False)
    else:
        log = store.logs.get(namespace, collections.deque())
        if log:
            store.deleted[namespace] = log[-1][0]
        log.clear()


def test_no_recovery_when_the_log_lost_the_missed_events(live_server_url, customer, partner, service):
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
        node.wait(status_event("PARTNER_EN_ROUTE"))
        cut = cut_connection(proxy, node, first["id"])
        the_gap(booking, customer, partner)
        empty_the_log(rooms.CUSTOMER)
        proxy.reopen()
        back = node.wait(kind("connect"))
        assert back["recovered"] is False and gap_seen(node, cut) == []  # the app refetches
        assert not any(room.startswith("booking:") for room in sio.manager.get_rooms(back["id"], rooms.CUSTOMER))


# ---------------------------------------------------------------- recovery authorises (contract 9.2)
def test_recovery_after_demotion_restores_no_booking_room_and_replays_nothing_of_it(
    live_server_url, customer, partner, service
):
    """Staff tracking a customer's booking lose staff rights during the gap."""
    staff = StaffFactory()
    booking = BookingFactory(customer=customer, partner=partner, service=service, status=S.PARTNER_ACCEPTED)
    with through_proxy(live_server_url, staff, booking) as (proxy, node, first):
        notification_create(user_id=staff.pk, type="promo", title="Before", body="", data={})
        node.wait(lambda line: line.get("name") == "notification:new")  # the client holds an offset
        cut = cut_connection(proxy, node, first["id"])
        type(staff).objects.filter(pk=staff.pk).update(is_staff=False)  # no signal: the connect reads it
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_EN_ROUTE)
        notification_create(user_id=staff.pk, type="promo", title="Yours still", body="", data={})
        proxy.reopen()
        back = node.wait(kind("connect"))
        assert back["recovered"] is True and back["id"] == first["id"]
        assert gap_seen(node, cut) == [("notification:new", "Yours still")]  # the user's own, not the booking's
        assert f"booking:{booking.pk}" not in set(sio.manager.get_rooms(back["id"], rooms.CUSTOMER))
        services.booking_update_status(booking_id=booking.pk, partner_user=partner.user, status=S.PARTNER_ARRIVED)
        notification_create(user_id=staff.pk, type="promo", title="Barrier", body="", data={})
        node.wait(lambda line: line.get("name") == "notification:new" and line["payload"]["title"] == "Barrier")
        assert gap_seen(node, cut) == [("notification:new", "Yours still"), ("notification:new", "Barrier")]


def test_a_refused_recovery_leaves_the_session_for_the_next_valid_attempt(live_server_url, customer, service):
    booking = BookingFactory(customer=customer, service=service, status=S.PENDING)
    with through_proxy(live_server_url, customer, booking) as (proxy, node, first):
        cut = cut_connection(proxy, node, first["id"])
        notification_create(user_id=customer.pk, type="promo", title="While you were away", body="", data={})
        node.send("auth", token_for(customer, lifetime=-30))  # a phone back after its token lapsed
        proxy.reopen()
        refused = node.wait(kind("connect_error"))
        assert refused["data"]["code"] == "TOKEN_EXPIRED"
        node.send("auth", token_for(customer))  # the app refreshed its token
        node.send("connect")
        back = node.wait(kind("connect"))
        assert back["recovered"] is True and back["id"] == first["id"]
        assert gap_seen(node, cut) == [("notification:new", "While you were away")]


async def raw_connect(url: str, token: str, auth: dict[str, Any] | None = None) -> RawSocket:
    """A hand-spoken client: it sends whatever pid and offset it likes (``answer``: the CONNECT answer)."""
    return await RawSocket(url, rooms.CUSTOMER).connect(token, auth)


async def cut_raw(proxy: TcpProxy, raw: RawSocket) -> None:
    proxy.cut()
    await wait_until(lambda: not sio.manager.is_connected(raw.answer["sid"], rooms.CUSTOMER), what="server saw it")
    await raw.close()


def replayed(raw: RawSocket) -> list[str]:
    """The notifications that came before the CONNECT answer (a replay)."""
    return [frame for frame in raw.frames if "notification:new" in frame]


def test_a_replay_never_reads_before_the_sessions_own_offset_nor_past_its_cap(live_server_url, customer, monkeypatch):
    monkeypatch.setattr(sio.recovery, "replay_max", 5)
    proxy = TcpProxy(live_server_url).start()
    token = token_for(customer)
    notify = sync_to_async(notification_create)

    async def scenario() -> None:
        raw = await raw_connect(proxy.url, token)
        sid, pid = raw.answer["sid"], raw.answer["pid"]
        old_offset = "0-0"  # older than anything: the client may send any offset it likes

        async def cut_then_recover(missed: int) -> RawSocket:
            await cut_raw(proxy, raw)
            for i in range(missed):
                await notify(user_id=customer.pk, type="promo", title=f"gap {i}", body="", data={})
            proxy.reopen()
            return await raw_connect(proxy.url, token, {"pid": pid, "offset": old_offset})

        raw = await cut_then_recover(3)
        assert raw.answer == {"sid": sid, "pid": pid} and len(replayed(raw)) == 3  # recovered: the same pid
        # Again with the same old offset: the replay starts at the session's own offset, not the client's.
        raw = await cut_then_recover(0)
        assert raw.answer == {"sid": sid, "pid": pid} and replayed(raw) == []
        # A gap past RECOVERY_REPLAY_MAX: a fresh session (a new pid: socket.recovered is false), nothing replayed.
        raw = await cut_then_recover(6)
        assert raw.answer["pid"] != pid and replayed(raw) == []
        await raw.close()

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_a_leaked_pid_with_another_users_token_neither_recovers_nor_spends_the_session(
    live_server_url, customer, other_customer
):
    proxy = TcpProxy(live_server_url).start()

    async def scenario() -> None:
        victim = await raw_connect(proxy.url, token_for(customer))
        await cut_raw(proxy, victim)
        proxy.reopen()
        leaked = {"pid": victim.answer["pid"], "offset": "0-0"}
        thief = await raw_connect(proxy.url, token_for(other_customer), leaked)
        assert thief.answer["pid"] != victim.answer["pid"] and thief.answer["sid"] != victim.answer["sid"]
        back = await raw_connect(proxy.url, token_for(customer), leaked)
        assert back.answer == victim.answer  # the owner still recovers
        await thief.close()
        await back.close()

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_with_recovery_disabled_a_reconnect_is_a_fresh_session_and_nothing_is_kept(
    cluster_env,  # noqa: F811
    customer,
    staff,
):
    """``RECOVERY_ENABLED=0``: the official client's reconnect after a cut is a fresh session
    (``recovered`` false, a new id, nothing of the gap replayed), events carry no offset, the
    process keeps nothing for recovery in Redis (not even when it stops) and logs nothing of it.

    The server has Redis keys of its own (its own channel group), so what other servers of the
    run keep cannot hide what this one keeps; its events come from a staff member's chat on it."""
    group = f"no-recovery-{os.getpid()}-{time.monotonic_ns()}"
    env = {**cluster_env, "RECOVERY_ENABLED": "0", "SOCKETIO_CHANNEL_GROUP": group, "RATE_STATS": "1000000"}
    store = redis.Redis.from_url(os.environ["REDIS_URL"])

    def recovery_keys() -> list[bytes]:
        return list(store.scan_iter(f"{group}:recovery*"))

    async def staff_says(text: str, customers_online: int | None = None) -> list[tuple[str, str]]:
        """Staff write ``text`` to the customer (once the server counts ``customers_online``);
        the offsets a python-socketio client of the customer saw on it."""
        admin = await Client(server.url, "/admin").connect(token_for(staff))
        if customers_online is not None:
            deadline = time.monotonic() + 5
            while (await admin.call("request:stats"))["stats"]["customers"]["online"] != customers_online:
                assert time.monotonic() < deadline, "the server never saw the cut"
                await asyncio.sleep(0.05)
        watcher = await Client(server.url, "/customer").connect(token_for(customer))
        assert (await admin.call("message:send", {"recipientId": str(customer.pk), "message": text}))["ok"]
        await watcher.wait_for("message:received", where=lambda p: p["message"] == text)
        for client in (watcher, admin):
            await client.close()
        return watcher.offsets

    def received(line: dict[str, Any]) -> str | None:
        return line["payload"]["message"] if line.get("name") == "message:received" else None

    server = ServerProcess(env).start()
    proxy = TcpProxy(server.url).start()
    node = NodeClient(proxy.url, "/customer", token_for(customer))
    try:
        first = node.wait(kind("connect"))
        # No pid in the CONNECT answer: the official client's ``socket.recovered`` is undefined (falsy).
        assert not first.get("recovered")
        assert run(staff_says("Before")) == []  # nothing is logged, so no event carries an offset
        node.wait(lambda line: received(line) == "Before")
        proxy.cut()
        cut = node.wait(kind("disconnect"))
        assert cut["reason"] == "transport close"  # involuntary: recovery would apply if it were on
        run(staff_says("While you were away", customers_online=0))  # sent once the server saw the cut
        proxy.reopen()
        back = node.wait(kind("connect"))
        assert not back.get("recovered") and back["id"] != first["id"]
        # A barrier, not a sleep: an event sent after the reconnect arrives; the gap's never came before it.
        run(staff_says("After"))
        node.wait(lambda line: received(line) == "After")
        assert [received(line) for line in node.lines if received(line)] == ["Before", "After"]
        assert recovery_keys() == []
    finally:
        node.close()
        proxy.stop()
        server.stop()
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert recovery_keys() == []  # a stopping process keeps no session either
    assert "recover" not in server.output().lower(), server.output()[-2000:]
