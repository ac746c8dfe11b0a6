"""Socket.IO infrastructure shared by every app; it imports no app and names no product room
(those are in ``config.rooms``), so it could move to another project unchanged.

- ``recovery``: connection state recovery's log and saved sessions (socket.io 4.6+ compatible).
- ``emit``: the one entry point every server event goes through.
- ``manager``: the python-socketio client manager riding on the Channels layer.
- ``server``: the AsyncServer singleton and its ASGI app.
- ``namespace``: the base class of the three namespaces (auth, acks, errors).
- ``presence``: who is online, across processes.
"""
