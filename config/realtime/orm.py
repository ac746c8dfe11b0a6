"""ORM calls from the event loop: off the loop, on a bounded executor, counted for admission control."""

from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings


class OrmLoad:
    """ORM calls queued or running in this process (``db``), for admission control."""

    in_flight = 0

    @classmethod
    def busy(cls) -> bool:
        return cls.in_flight >= settings.SOCKETIO["DB_QUEUE_MAX"]


def orm_in_flight() -> int:
    return OrmLoad.in_flight


def db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run ORM code off the event loop.

    ``thread_sensitive=False``: calls run in the loop's bounded default executor
    (see ``ChannelLayerManager.initialize``) rather than queueing behind one
    shared thread; ``database_sync_to_async`` returns the connection to the pool
    around each call. Calls are counted so that a burst is refused at the door
    (``BaseNamespace.trigger_event``) instead of queueing behind itself.
    """
    call = database_sync_to_async(func, thread_sensitive=False)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        OrmLoad.in_flight += 1
        try:
            return await call(*args, **kwargs)
        finally:
            OrmLoad.in_flight -= 1

    return counted
