"""Connection state recovery against a hostile or unlucky client: a transport cut in the middle
of a recovery, two namespaces of one session recovering at once (the live server runs in this
process: its manager and its register of recoveries are read directly)."""

import asyncio
import json
import threading
import time
from typing import Any

import aiohttp
import pytest
from channels.db import database_sync_to_async as sync_to_async

from config import rooms
from config.realtime.presence import presence
from config.realtime.server import sio
from messaging.notify import notification_create
from tests.live import RawSocket, TcpProxy, run, token_for, wait_until
from tests.realtime.test_held import SEP, Polling

pytestmark = pytest.mark.django_db(transaction=True)

NS = rooms.CUSTOMER


def left_behind(sid: str, eio_sid: str) -> dict[str, Any]:
    """What the server still holds of a socket whose transport is gone (empty: nothing)."""
    found: dict[str, Any] = {}
    if eio_sid in sio.recovering._connections:
        found["recoveries"] = list(sio.recovering._connections[eio_sid])
    if sio.recovering.claimed(sid):
        found["claim"] = sid
    member_of = [room for room, members in sio.manager.rooms.get(NS, {}).items() if sid in members]
    if member_of:
        found["rooms"] = member_of
    if eio_sid in sio.environ:
        found["environ"] = True
    return found


def dead_in_register() -> list[str]:
    """Sessions no longer open that the register of recoveries still holds, or claims of them."""
    open_ = sio.eio.sockets
    claims = [c.eio_sid for c in sio.recovering._claims.values()]
    return [eio_sid for eio_sid in [*sio.recovering._connections, *claims] if eio_sid not in open_]


def counted_online(user_id: int) -> int:
    """The user's sockets on /customer that this process counts for presence."""
    return presence.local[NS][user_id]


async def open_session(url: str) -> RawSocket:
    """A hand-spoken Engine.IO session over a websocket, not yet in any namespace."""
    raw = RawSocket(url, NS)
    raw.http = aiohttp.ClientSession()
    raw.ws = await raw.http.ws_connect(raw.url)
    raw.log = []  # every frame, in order (``next`` takes frames out of ``frames``)

    async def read() -> None:
        async for message in raw.ws:
            if message.data == "2":
                await raw.ws.send_str("3")
                continue
            raw.frames.append(message.data)
            raw.log.append(message.data)
            raw._arrived.set()

    raw._reader = asyncio.create_task(read())
    raw.eio_sid = json.loads((await raw.next(lambda f: f.startswith("0{")))[1:])["sid"]
    return raw


async def connected_then_cut(proxy: Any, token: str) -> tuple[str, str]:
    """A session of ``NS`` through ``proxy``, its transport cut once the server saw the cut: its sid and pid."""
    first = await RawSocket(proxy.url, NS).connect(token)
    sid, pid = first.answer["sid"], first.answer["pid"]
    proxy.cut()
    await wait_until(lambda: not sio.manager.is_connected(sid, NS), what="the cut seen")
    await first.close()
    return sid, pid


async def answer_of(raw: RawSocket, namespace: str) -> dict[str, Any]:
    prefix = f"40{namespace},"
    return json.loads((await raw.next(lambda f: f.startswith(prefix)))[len(prefix) :])


def test_a_transport_cut_in_the_middle_of_a_recovery_leaves_nothing_and_keeps_the_session(
    live_server_url, customer, monkeypatch
):
    """The transport closes while the server restores a session (taken, rooms rejoined, the log
    read next): no socket nobody is behind is left (rooms, a replay window, a claim), and the
    session is kept again, so the next attempt still recovers."""
    proxy = TcpProxy(live_server_url).start()
    token = token_for(customer)
    missed = sio.recovery.missed
    reading: list[bool] = []
    read: list[bool] = []

    async def slow_read(namespace: str, offset: str) -> Any:
        reading.append(True)
        await asyncio.sleep(0.5)  # the transport is cut meanwhile
        try:
            return await missed(namespace, offset)
        finally:
            read.append(True)

    async def scenario() -> None:
        sid, pid = await connected_then_cut(proxy, token)
        proxy.reopen()
        monkeypatch.setattr(sio.recovery, "missed", slow_read)
        raw = await open_session(proxy.url)
        await raw.ws.send_str(f"40{NS}," + json.dumps({"token": token, "pid": pid}))
        await wait_until(lambda: reading, what="the recovery under way")
        proxy.cut()
        await raw.close()
        await wait_until(lambda: read, what="the restore over")
        try:
            await wait_until(lambda: left_behind(sid, raw.eio_sid) == {}, timeout=2, what="nothing left")
        except AssertionError:
            raise AssertionError(f"a socket nobody is behind: {left_behind(sid, raw.eio_sid)}") from None
        monkeypatch.setattr(sio.recovery, "missed", missed)
        proxy.reopen()
        again = await RawSocket(proxy.url, NS).connect(token, {"pid": pid})
        assert again.answer == {"sid": sid, "pid": pid}, "the session is lost"
        await again.close()

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_two_namespaces_recovering_at_once_on_one_session_get_each_event_once_in_order(
    live_server_url, partner, monkeypatch
):
    """A partner on /customer and /partner over one Engine.IO session recovers both at once (a
    hand-spoken client: two POSTs at once; a POST's packets, or a websocket's, are handled one
    after the other). An event published while both hold their live packets reaches each
    namespace once, in order. Held by the first namespace's connection and released at its
    answer, /partner's copy came before /partner's replay, and again in it."""
    proxy = TcpProxy(live_server_url).start()
    token = token_for(partner.user)
    notify = sync_to_async(notification_create)
    missed = sio.recovery.missed
    reading: set[str] = set()
    go = {rooms.CUSTOMER: threading.Event(), rooms.PARTNER: threading.Event()}  # the test says when each reads

    async def gated_read(namespace: str, offset: str) -> Any:
        reading.add(namespace)
        deadline = time.monotonic() + 10
        while not go[namespace].is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return await missed(namespace, offset)

    def held_live(eio_sid: str) -> bool:
        """Both live copies (one per namespace) are held by the recovering connections."""
        held = [c.held for c in sio.recovering._connections.get(eio_sid, {}).values()]
        return sum(1 for h in held if h for item in h if "live" in str(getattr(item, "data", ""))) >= 2

    def seen_on(log: list[str], namespace: str) -> list[str]:
        """What the namespace's socket got, in order: "answer" and the notifications' titles."""
        seen = []
        for frame in log:
            if frame.startswith(f"40{namespace},"):
                seen.append("answer")
            elif frame.startswith(f"42{namespace},") and "notification:new" in frame:
                seen.append(json.loads(frame[len(namespace) + 3 :])[1]["title"])
        return seen

    async def scenario() -> None:
        raw = await open_session(proxy.url)
        answers = {}
        for namespace in (rooms.CUSTOMER, rooms.PARTNER):
            await raw.ws.send_str(f"40{namespace}," + json.dumps({"token": token}))
            answers[namespace] = await answer_of(raw, namespace)
        proxy.cut()
        await wait_until(
            lambda: not any(sio.manager.is_connected(a["sid"], n) for n, a in answers.items()), what="the cut seen"
        )
        await raw.close()
        await notify(user_id=partner.user.pk, type="promo", title="gap")
        proxy.reopen()
        monkeypatch.setattr(sio.recovery, "missed", gated_read)
        # Back over long-polling (socket.io-client's first transport), each CONNECT in a POST of its own.
        polling = await Polling(live_server_url).open()
        log: list[str] = []

        async def poll() -> None:
            while True:
                status, body = await polling.get()
                assert status == 200, status
                log.extend(body.split(SEP))

        poller = asyncio.create_task(poll())

        async def answered(namespace: str) -> dict[str, Any]:
            prefix = f"40{namespace},"
            await wait_until(lambda: any(f.startswith(prefix) for f in log), what=f"{namespace} answered")
            return json.loads(next(f for f in log if f.startswith(prefix))[len(prefix) :])

        connects = [f"40{n}," + json.dumps({"token": token, "pid": a["pid"]}) for n, a in answers.items()]
        # Two POSTs at once (a POST's packets are handled one after the other).
        posts = [asyncio.create_task(polling.post(connect)) for connect in connects]
        await wait_until(lambda: reading == set(go), what="both recoveries under way")
        await notify(user_id=partner.user.pk, type="promo", title="live")  # both are holding now
        await wait_until(lambda: held_live(polling.sid), what="the live copies held")
        for namespace in answers:  # /customer reads the log and answers first, then /partner
            go[namespace].set()
            assert await answered(namespace) == answers[namespace], f"{namespace} not recovered"
        assert [await post for post in posts] == [200, 200]
        # A round trip on each namespace after both answers: everything sent before it is in.
        for i, namespace in enumerate(answers, start=1):
            assert await polling.post(f"42{namespace},{i}" + json.dumps(["no:such:event", {}])) == 200
            await wait_until(lambda n=namespace, i=i: any(f.startswith(f"43{n},{i}[") for f in log), what="acks")
        poller.cancel()
        await polling.close()
        seen = {namespace: seen_on(log, namespace) for namespace in answers}
        titles = {namespace: [t for t in seen[namespace] if t != "answer"] for namespace in answers}
        assert titles == {namespace: ["gap", "live"] for namespace in answers}, seen

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_a_session_closed_while_its_recovering_connect_runs_leaves_no_socket_behind(
    live_server_url, customer, monkeypatch
):
    """A long-polling client POSTs its recovering CONNECT and, in a second POST at once, Engine.IO's
    CLOSE: the close is handled while the connect runs (the socket is not connected yet, so its
    disconnect handlers skip it). Once the connect ends, nothing of the socket may remain: no
    member of any room, no presence of its user, no replay window."""
    proxy = TcpProxy(live_server_url).start()
    token = token_for(customer)
    missed = sio.recovery.missed
    reading: list[bool] = []
    go = threading.Event()
    read: list[bool] = []

    async def gated_read(namespace: str, offset: str) -> Any:
        reading.append(True)
        deadline = time.monotonic() + 10
        while not go.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            return await missed(namespace, offset)
        finally:
            read.append(True)

    async def scenario() -> None:
        sid, pid = await connected_then_cut(proxy, token)
        monkeypatch.setattr(sio.recovery, "missed", gated_read)
        polling = await Polling(live_server_url).open()
        connect = asyncio.create_task(polling.post(f"40{NS}," + json.dumps({"token": token, "pid": pid})))
        await wait_until(lambda: reading, what="the recovery under way")
        close = asyncio.create_task(polling.post("1"))  # Engine.IO CLOSE, while the connect runs
        socket = sio.eio.sockets[polling.sid]
        await wait_until(lambda: socket.closing or socket.closed, what="the close under way")
        go.set()
        await wait_until(lambda: read, what="the connect over")
        await asyncio.gather(connect, close, return_exceptions=True)
        await polling.close()
        try:
            await wait_until(lambda: left_behind(sid, polling.sid) == {}, timeout=2, what="nothing left")
        except AssertionError:
            raise AssertionError(f"a socket nobody is behind: {left_behind(sid, polling.sid)}") from None
        await wait_until(lambda: counted_online(customer.pk) == 0, timeout=2, what="the user counted offline")

    try:
        run(scenario())
    finally:
        proxy.stop()


def test_forged_pids_and_offsets_leave_nothing_in_the_register(live_server_url, customer, other_customer):
    """Connects with whatever ``pid`` and ``offset`` a client likes (another user's pid, the
    wrong types, huge, stale, forged) each get a fresh session, and once closed leave nothing in
    the register of recoveries; the victim's session is still its own."""
    proxy = TcpProxy(live_server_url).start()

    async def scenario() -> None:
        victim = await RawSocket(proxy.url, NS).connect(token_for(customer))
        proxy.cut()
        await wait_until(lambda: not sio.manager.is_connected(victim.answer["sid"], NS), what="the cut seen")
        await victim.close()
        proxy.reopen()
        pid = victim.answer["pid"]
        forged = [
            {"pid": pid, "offset": "0-0"},  # another user's pid (the thief's token)
            {"pid": pid, "offset": "99999999999999-0"},
            {"pid": 12, "offset": ["0-0"]},
            {"pid": None},
            {"pid": ["x"], "offset": {"a": 1}},
            {"pid": "p" * 50_000, "offset": "1-1"},
            {"pid": "", "offset": ""},
        ]
        thief = token_for(other_customer)
        for auth in forged * 5:
            raw = await RawSocket(proxy.url, NS).connect(thief, auth)
            assert raw.answer.get("pid") not in (None, pid) and raw.answer["sid"] != victim.answer["sid"]
            await raw.close()
        await wait_until(lambda: not dead_in_register(), timeout=3, what="no closed session in the register")
        back = await RawSocket(proxy.url, NS).connect(token_for(customer), {"pid": pid})
        assert back.answer == victim.answer
        await back.close()

    try:
        run(scenario())
    finally:
        proxy.stop()
