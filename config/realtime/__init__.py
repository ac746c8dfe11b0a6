"""Socket.IO infrastructure shared by every app.

- ``rooms``: namespace and room names (the only place they are spelled).
- ``emit``: the one entry point every server event goes through.
- ``manager``: the python-socketio client manager riding on the Channels layer.
- ``server``: the AsyncServer singleton and its ASGI app.
- ``namespace``: the base class of the three namespaces (auth, acks, errors).
- ``presence``: who is online, across processes.
"""
