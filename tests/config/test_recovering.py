"""One recovering connection, step by step, against a stand-in server (config/realtime/recovering.py).

The live tests (tests/realtime/test_recovery.py) hold what a client sees; these hold the
order of the steps and the bookkeeping: what a connection holds, drops, and leaves behind.
"""

import asyncio

import pytest
from socketio import packet

from config.realtime import recovering
from config.realtime.recovery import Recovery
from config.realtime.recovery_store import Entry, MemoryStore, SavedSession

NS, EIO, OLD_SID, UID = "/customer", "eio-1", "old-sid", 7


class Manager:
    def __init__(self, steps: list[str]) -> None:
        self.steps, self.rooms = steps, {}

    def is_connected(self, sid: str, namespace: str) -> bool:
        return False

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [sid, *self.rooms.get(sid, [])]

    def basic_enter_room(self, sid: str, namespace: str, room: str) -> None:
        self.steps.append(f"rejoin {room}")
        self.rooms.setdefault(sid, []).append(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str) -> None:
        self.rooms[sid].remove(room)

    async def listening(self, namespace: str, rooms: list[str]) -> None:
        self.steps.append(f"listen {sorted(rooms)}")


class Handler:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    async def restorable_rooms(self, sid: str, rooms: list[str]) -> tuple[list[str], list[str]]:
        self.steps.append("authorise")
        return rooms, []


class Server:
    """What ``RecoveringConnection`` asks of ``config.realtime.server.Server``; python-socketio's
    connect is the handler sending one live event, then the CONNECT answer."""

    packet_class = packet.Packet

    def __init__(self, recovery: Recovery, live: list[str]) -> None:
        self.steps: list[str] = []
        self.recovery, self.live = recovery, live
        self.manager = Manager(self.steps)
        self.namespace_handlers = {NS: Handler(self.steps)}
        self.environ = {EIO: {}}
        self.sessions: dict[str, dict] = {}
        self.recovering = recovering.Recoveries(self)

    async def get_session(self, sid: str, namespace: str) -> dict:
        return self.sessions.setdefault(sid, {"uid": UID})

    async def send_now(self, eio_sid: str, item: packet.Packet) -> None:
        self.steps.append(describe(item))

    async def send(self, item: packet.Packet) -> None:
        """The server's ``_send_packet``: recovery may take the packet."""
        if not await self.recovering.intercept(EIO, item):
            await self.send_now(EIO, item)

    async def connect_plainly(self, eio_sid: str, namespace: str, auth: dict) -> None:
        connecting = self.recovering.connecting(eio_sid, namespace)
        sid = connecting.reused_sid or "new-sid"
        for offset in self.live:  # published while the connect handler ran: held
            await self.send(event("live", offset))
        await self.send(packet.Packet(packet.CONNECT, {"sid": sid}, namespace=NS))


def event(name: str, offset: str) -> packet.Packet:
    return packet.Packet(packet.EVENT, namespace=NS, data=[name, {}, offset])


def describe(item: packet.Packet) -> str:
    if item.packet_type == packet.CONNECT:
        return f"CONNECT {item.data['sid']}"
    return f"{item.data[0]} {item.data[-1]}"


async def logged(recovery: Recovery, count: int) -> list[str]:
    return await recovery.append([(NS, {"event": "missed", "data": [{}], "room": "booking:1"})] * count)


@pytest.fixture
def anyone(monkeypatch):
    monkeypatch.setattr(recovering, "user_of", lambda auth, environ: UID)


def test_a_recovery_runs_its_steps_in_order_and_drops_the_live_copies_of_what_it_replayed(anyone):
    async def scenario() -> None:
        recovery = Recovery(MemoryStore(length=100, window=60), replay_max=100)
        [seen] = await logged(recovery, 1)
        await recovery.save(UID, "pid-1", SavedSession(OLD_SID, NS, UID, ["booking:1"], seen))
        first, second = await logged(recovery, 2)
        later = (await recovery.append([(NS, {"event": "live", "data": [{}], "room": "booking:1"})]))[0]
        # Held during the connect: one event the replay carries (published late), one it does not.
        server = Server(recovery, live=[second, later])

        await server.recovering.connect(EIO, NS, {"pid": "pid-1", "offset": seen})
        assert server.steps == [
            "authorise",
            "rejoin booking:1",
            f"listen ['booking:1', '{OLD_SID}']",  # before the log is read: nothing falls in between
            f"missed {first}",
            f"missed {second}",
            f"live {later}",  # logged after the session's offset: replayed too
            f"CONNECT {OLD_SID}",
            # held, released after the answer; the live copies of replayed events are dropped
        ]
        assert await recovery.peek(UID, "pid-1") is None  # taken: recovered once
        assert server.sessions[OLD_SID]["pid"] == "pid-1"

        # Within the window a late live copy of a replayed event is dropped, a newer event is not.
        [newest] = await recovery.append([(NS, {"event": "live", "data": [{}], "room": "booking:1"})])
        await server.send(event("missed", second))
        await server.send(event("live", newest))
        assert server.steps[-1] == f"live {newest}" and server.steps.count(f"missed {second}") == 1

        # The window ends (REPLAY_OVERLAP_SECONDS later): nothing is left of the connection.
        server.recovering._connections[EIO][NS].until = 0.0
        await server.send(event("missed", second))
        assert server.steps[-1] == f"missed {second}"  # past the window: sent
        assert server.recovering._connections == {} and server.recovering._claims == {}

    asyncio.run(scenario())


def test_a_fresh_connect_holds_packets_until_its_answer_and_leaves_nothing(anyone):
    async def scenario() -> None:
        recovery = Recovery(MemoryStore(length=100, window=60), replay_max=100)
        [offset] = await logged(recovery, 1)
        server = Server(recovery, live=[offset])

        await server.recovering.connect(EIO, NS, {"pid": "unknown", "offset": offset})
        assert server.steps == ["CONNECT new-sid", f"live {offset}"]  # the answer first, then what was held
        assert server.sessions["new-sid"]["pid"] != "unknown"  # a fresh session gets a fresh pid
        assert server.recovering._connections == {} and server.recovering._claims == {}

    asyncio.run(scenario())


def test_a_session_lost_from_the_log_is_fresh_and_leaves_its_rooms(anyone):
    async def scenario() -> None:
        recovery = Recovery(MemoryStore(length=2, window=60), replay_max=100)
        [seen] = await logged(recovery, 1)
        await recovery.save(UID, "pid-1", SavedSession(OLD_SID, NS, UID, ["booking:1"], seen))
        await logged(recovery, 3)  # the log keeps two: the session's position is gone
        server = Server(recovery, live=[])

        await server.recovering.connect(EIO, NS, {"pid": "pid-1"})
        assert server.steps[-1] == f"CONNECT {OLD_SID}" and not any(s.startswith("missed") for s in server.steps)
        assert server.manager.rooms[OLD_SID] == []  # rejoined to listen, left again: not recovered
        assert server.sessions[OLD_SID]["pid"] != "pid-1"
        assert server.recovering._connections == {}

    asyncio.run(scenario())


def test_entries_reach_only_their_rooms():
    entry = Entry.of({"event": "e", "data": [{}], "room": "booking:1", "skip_sid": "s2"})
    assert entry.reaches("s1", {"booking:1"}) and not entry.reaches("s2", {"booking:1"})
    assert not entry.reaches("s1", {"booking:2"})
