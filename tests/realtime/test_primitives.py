"""The lean queue and event behave as the asyncio ones their users were written for."""

import asyncio
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.realtime.primitives import Flag, Mailbox


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


operations = st.lists(st.sampled_from(["put", "get", "task_done", "size"]), max_size=60)


@given(operations)
def test_mailbox_answers_as_asyncio_queue_does(ops):
    """Any sequence of the synchronous calls: the same items, sizes and errors as ``asyncio.Queue``."""

    async def replay(queue):
        seen = []
        for step, op in enumerate(ops):
            try:
                if op == "put":
                    queue.put_nowait(step)
                elif op == "get":
                    seen.append(queue.get_nowait())
                elif op == "task_done":
                    queue.task_done()
                else:
                    seen.append((queue.qsize(), queue.empty()))
            except (asyncio.QueueEmpty, ValueError) as exc:
                seen.append(type(exc).__name__)
        return seen

    assert run(replay(Mailbox())) == run(replay(asyncio.Queue()))


def test_a_waiting_getter_gets_the_next_item_and_order_is_kept():
    async def scenario():
        box = Mailbox()
        first, second = box.get(), box.get()
        for item in "abc":
            box.put_nowait(item)
        return await first, await second, box.get_nowait(), box.empty()

    assert run(scenario()) == ("a", "b", "c", True)


def test_a_getter_that_timed_out_is_skipped():
    """engineio's writer: ``wait_for(queue.get(), timeout)``; the item goes to the next getter, not the dead one."""

    async def scenario():
        box = Mailbox()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(box.get(), 0.01)
        box.put_nowait("kept")
        return await asyncio.wait_for(box.get(), 1)

    assert run(scenario()) == "kept"


def test_join_waits_for_every_item_to_be_done():
    async def scenario():
        box = Mailbox()
        box.put_nowait(1)
        box.put_nowait(2)
        joined = asyncio.ensure_future(box.join())
        await box.get()
        box.task_done()
        await asyncio.sleep(0)
        halfway = joined.done()
        await box.get()
        box.task_done()
        await asyncio.wait_for(joined, 1)
        return halfway

    assert run(scenario()) is False


def test_an_idle_mailbox_holds_no_deque_and_no_joiners_list():
    """The reason it exists: an empty ``asyncio.Queue`` holds four deques."""

    async def scenario():
        box = Mailbox()
        box.put_nowait(1)
        await box.get()
        box.task_done()
        return box._items, box._joiners

    assert run(scenario()) == (None, None)
    assert sys.getsizeof(Mailbox()) < sys.getsizeof(asyncio.Queue()._queue) / 4


def test_flag_wakes_its_waiters_and_forgets_cancelled_ones():
    async def scenario():
        flag = Flag()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(flag.wait(), 0.01)
        waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
        await asyncio.sleep(0)
        flag.set()
        woken = await asyncio.gather(*waiters)
        set_then = flag.is_set()
        flag.clear()
        return woken, set_then, flag.is_set(), flag._waiters

    assert run(scenario()) == ([True, True, True], True, False, None)
