"""``booking:track`` reads the bookings of one moment together (issue 34), each track still
answered by its own rights: the customer's booking, NOT_FOUND, FORBIDDEN, and staff any."""

import asyncio
import threading
import uuid

from bookings import selectors, sockets
from config.errors import Forbidden, NotFound, Unavailable
from config.realtime.orm import OrmLoad
from tests.factories import BookingFactory, UserFactory


def session_of(user):
    fields = ("username", "first_name", "last_name", "is_staff")
    return {"uid": user.pk, "user_id": str(user.pk), **{f: getattr(user, f) for f in fields}, "role": "customer"}


def test_the_tracks_of_a_moment_share_one_read_each_with_its_own_rights(
    transactional_db, customer, other_customer, monkeypatch
):
    mine, theirs = BookingFactory(customer=customer), BookingFactory(customer=other_customer)
    staff = UserFactory(is_staff=True)
    reads = []
    read = selectors.bookings_by_id

    def counted(*, booking_ids):
        reads.append(len(booking_ids))
        return read(booking_ids=booking_ids)

    monkeypatch.setattr(selectors, "bookings_by_id", counted)

    async def scenario():
        tracks = [
            sockets._tracked(session_of(customer), mine.pk),
            sockets._tracked(session_of(customer), theirs.pk),
            sockets._tracked(session_of(customer), uuid.uuid4()),
            sockets._tracked(session_of(staff), theirs.pk),
        ]
        return await asyncio.gather(*tracks, return_exceptions=True)

    got = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert got[0].pk == mine.pk and got[3].pk == theirs.pk
    assert isinstance(got[1], Forbidden) and isinstance(got[2], NotFound)
    assert reads == [3]  # one query for the moment's three bookings
    assert OrmLoad.in_flight == 0


def test_a_track_whose_batch_is_cancelled_is_answered_unavailable(transactional_db, customer, monkeypatch):
    """A process stopping cancels the batch's read: its readers get UNAVAILABLE, not an internal error."""
    booking = BookingFactory(customer=customer)
    held = threading.Event()
    read = selectors.bookings_by_id

    def slow(*, booking_ids):
        held.wait(5)
        return read(booking_ids=booking_ids)

    monkeypatch.setattr(selectors, "bookings_by_id", slow)

    async def scenario():
        track = asyncio.ensure_future(sockets._tracked(session_of(customer), booking.pk))
        while not sockets._bookings._tasks:
            await asyncio.sleep(0.01)
        for task in list(sockets._bookings._tasks):
            task.cancel()
        try:
            return await asyncio.gather(track, return_exceptions=True)
        finally:
            held.set()

    (got,) = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert isinstance(got, Unavailable)
