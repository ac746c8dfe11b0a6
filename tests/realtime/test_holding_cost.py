"""What an emit pays while sockets are held (``holding.set_aside``) does not grow with how many are
held: a bulk suspension holds thousands of sockets while its read waits, and each emit tested every
held socket against its room (420 µs an emit with 1,000 held, 4 ms with 10,000: a relay's 1,000
emits a second were more CPU than the loop has, every room's delivery behind)."""

import time

from config.realtime.holding import Held, HoldsSockets

SOCKETS = 20_000


class Holder(HoldsSockets):
    def __init__(self, held: int) -> None:
        members = {f"s{i}": f"e{i}" for i in range(SOCKETS)}
        self.rooms = {"/customer": {None: members, **{f"user:{i}": {f"s{i}": f"e{i}"} for i in range(SOCKETS)}}}
        self.rooms["/customer"]["booking:1"] = {"s1": "e1", f"s{SOCKETS - 1}": "x"}
        self.held = {f"s{i}": Held() for i in range(held)}


def cost(holder: Holder, message: dict, rounds: int = 300) -> float:
    start = time.process_time()
    for _ in range(rounds):
        holder.set_aside(message)
    return (time.process_time() - start) / rounds


def test_an_emit_costs_the_same_with_ten_or_ten_thousand_sockets_held():
    message = {"namespace": "/customer", "room": "booking:1", "skip_sid": None, "event": "e", "data": [1]}
    few, many = Holder(10), Holder(10_000)
    assert many.set_aside(message)["skip_sid"] == ["s1"] and len(many.held["s1"].messages) == 1
    assert not many.held["s2"].messages  # not in the room: nothing set aside for it
    ratio = min(cost(many, message) for _ in range(3)) / min(cost(few, message) for _ in range(3))
    assert ratio < 10, ratio  # ~1 now; ~1,000 when every held socket was tested


def test_what_is_set_aside_is_each_held_recipient_once_and_skips_the_skipped():
    holder = Holder(5)
    message = {"namespace": "/customer", "room": ["user:1", "user:2", "booking:1", "user:9"], "skip_sid": "s2"}
    out = holder.set_aside(message)
    assert sorted(out["skip_sid"]) == ["s1", "s2"]  # s1 once (two rooms), s2 skipped already, s9 not held
    assert [len(holder.held[f"s{i}"].messages) for i in range(5)] == [0, 1, 0, 0, 0]
    broadcast = holder.set_aside({"namespace": "/customer", "room": None, "skip_sid": None})
    assert sorted(broadcast["skip_sid"]) == [f"s{i}" for i in range(5)]
