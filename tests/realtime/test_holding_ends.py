"""How a hold ends (``holding``), where two rechecks and a refusal meet on one socket: a muted socket
(being refused) is ended by its ``release`` only, not by a recheck's drain, which unmuted it in the
middle of its disconnect and sent a second, wrong refusal; a drain stops once its entry is released
(a refusal), and one message that fails to go leaves the rest and the hold's end to come (the socket
stayed held for good: every emit to it set aside, each of its requests waiting ``REQUEST_WAIT``)."""

import asyncio

from config.realtime.holding import HoldsSockets

MESSAGE = {"namespace": "/customer", "room": "user:1", "skip_sid": None, "event": "e"}


class Holder(HoldsSockets):
    def __init__(self, fail_on: int | None = None) -> None:
        self.rooms = {"/customer": {"user:1": {"s1": "e1"}}}
        self.held = {}
        self.delivered: list[int] = []
        self.fail_on = fail_on

    async def _deliver_now(self, message):
        if message["data"] == self.fail_on:
            raise RuntimeError("a delivery that fails")
        self.delivered.append(message["data"])
        await asyncio.sleep(0)


def test_a_muted_socket_is_ended_by_its_release_not_by_a_drain():
    holder = Holder()
    holding = holder.hold("s1")
    holder.set_aside({**MESSAGE, "data": 1})
    holder.mute("s1")  # refused meanwhile (the periodic recheck, a token's expiry)
    assert asyncio.run(holder.drain("s1", holding)) is True  # the drain ends nothing
    assert holder.is_muted("s1") and holder.delivered == []
    holder.set_aside({**MESSAGE, "data": 2})
    assert holder.delivered == [] and not holder.held["s1"].messages  # still silent
    holder.release("s1")
    assert "s1" not in holder.held and not holder.is_muted("s1")


def test_a_drain_stops_once_its_socket_is_released():
    holder = Holder()
    holding = holder.hold("s1")
    for data in range(5):
        holder.set_aside({**MESSAGE, "data": data})

    async def scenario():
        draining = asyncio.ensure_future(holder.drain("s1", holding))
        await asyncio.sleep(0)  # the first went
        holder.release("s1")  # refused: what waited is not its any more
        await draining

    asyncio.run(scenario())
    assert holder.delivered == [0], holder.delivered


def test_a_message_that_fails_leaves_the_rest_and_the_holds_end():
    holder = Holder(fail_on=1)
    holding = holder.hold("s1")
    for data in range(3):
        holder.set_aside({**MESSAGE, "data": data})
    assert asyncio.run(holder.drain("s1", holding)) is True
    assert holder.delivered == [0, 2] and "s1" not in holder.held
