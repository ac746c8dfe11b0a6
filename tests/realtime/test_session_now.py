"""``BaseNamespace._session_now``: a client event's session, read as python-socketio's
``get_session`` reads it (the same dict, the same refusals), without its coroutines."""

import asyncio

import socketio
from engineio.async_socket import AsyncSocket

from config.realtime.namespace import compose


def test_the_session_is_python_socketios_own_and_a_socket_gone_has_none():
    async def scenario() -> None:
        sio = socketio.AsyncServer(async_mode="asgi")
        namespace = compose("/session-now", role="user", parts=())
        sio.register_namespace(namespace)
        sio.eio.sockets["eio-1"] = AsyncSocket(sio.eio, "eio-1")
        sid = await sio.manager.connect("eio-1", "/session-now")

        theirs = await sio.get_session(sid, namespace="/session-now")
        theirs["uid"] = 7
        assert namespace._session_now(sid) is theirs
        assert namespace._session_now("nobody") is None  # python-socketio: KeyError

        sio.eio.sockets["eio-1"].closed = True  # its Engine.IO session ended, its rooms not left yet
        assert namespace._session_now(sid) is None
        assert "eio-1" not in sio.eio.sockets  # dropped from the table, as engineio's lookup does

    asyncio.run(asyncio.wait_for(scenario(), 10))
