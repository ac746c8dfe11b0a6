"""A socket whose Engine.IO session went before its disconnect handler leaves no token expiry behind."""

import asyncio
import time

from config.realtime.namespace import compose
from config.realtime.token_lifetime import expiries


class _SessionGone:
    async def get_session(self, sid, namespace=None):
        raise KeyError(sid)


def test_a_disconnect_after_the_session_went_forgets_the_token_expiry():
    namespace = compose("/expiry-test", role="customer", parts=())
    namespace._set_server(_SessionGone())

    async def scenario():
        expiries.add(namespace, "gone", time.time() + 3600)
        await namespace.on_disconnect("gone")
        return (namespace, "gone") in expiries.live

    assert asyncio.run(scenario()) is False
