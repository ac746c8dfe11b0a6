"""Library internals this project replaces, each with a fingerprint of the code it was written against.

Upgrading python-socketio, python-engineio or uvicorn (pinned in requirements.txt) fails
this test for every replaced method whose source changed, naming the replacement to re-read
against the new version. Once re-read and adapted, put the new fingerprint below. A new
override of a library method fails it too, until it is listed here.
"""

import hashlib
import importlib
import inspect
import pkgutil

from engineio.async_drivers import asgi

import config.realtime

LIBRARIES = ("socketio", "engineio", "uvicorn", "channels")

# library method -> sha256 (first 16 hex digits) of its source, as our replacement reads it
REPLACED = {
    "socketio.exceptions.ConnectionRefusedError.__init__": "4cb8b27e54d7c822",
    "engineio.async_drivers.asgi.WebSocket.wait": "0346a1c9ebdafdff",
    "engineio.base_server.BaseServer.__init__": "a06b17502fbd9646",
    "engineio.async_server.AsyncServer.create_queue": "5ff5673a0c017681",
    # what one connection may hold (contract 10.1): sessions per address, the bounded send
    # queue, a POST engineio cannot read answered 400 (config.realtime.engine)
    "engineio.async_server.AsyncServer._trigger_event": "4a09b6e47eb66532",
    "engineio.async_socket.AsyncSocket.handle_post_request": "82dca119a261a959",
    "engineio.async_socket.AsyncSocket.send": "0437276ccba7ab09",
    "engineio.base_server.BaseServer._log_error_once": "dccbb5602dc46a09",
    # sessions that join no namespace are closed; a refusal is answered once (config.realtime.server)
    # binary and unreadable packets close the session with one warning (config.realtime.server)
    "socketio.async_server.AsyncServer._handle_eio_message": "bef50fc0e1635921",
    "socketio.async_server.AsyncServer._handle_eio_connect": "76704886d944a7e6",
    "socketio.async_server.AsyncServer._handle_eio_disconnect": "9344593148b66fd9",
    "socketio.async_server.AsyncServer._handle_event_internal": "472e8b723a12d507",
    "socketio.async_pubsub_manager.AsyncPubSubManager.__init__": "81c6a9f1e359749a",
    "socketio.async_pubsub_manager.AsyncPubSubManager.initialize": "e8a2b026ecea320f",
    "socketio.async_manager.AsyncManager.pre_connect": "84f2cdf2a4ddf07c",
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_emit": "4284671be955f644",
    "socketio.async_pubsub_manager.AsyncPubSubManager._publish": "23e758d5094bdf74",
    "socketio.async_pubsub_manager.AsyncPubSubManager._listen": "1fba9bbe5fb0c801",
    # per-room subscriptions follow every join and leave (config.realtime.transport)
    "socketio.async_pubsub_manager.AsyncPubSubManager.enter_room": "839498e1ae603f2b",
    "socketio.base_manager.BaseManager.basic_enter_room": "3f509586d2d7f47e",
    "socketio.base_manager.BaseManager.basic_leave_room": "e27f3eea06d1c6a6",
    "socketio.async_namespace.AsyncNamespace.trigger_event": "95e90e5e1d98c31a",
    "socketio.async_server.AsyncServer.__init__": "7ae671981d87c57f",
    "socketio.async_server.AsyncServer._engineio_server_class": "199c42bf149247e0",
    "socketio.async_server.AsyncServer._handle_event": "65178105ef8b593d",
    "socketio.async_server.AsyncServer._handle_connect": "c97c480cf777de36",
    "socketio.async_server.AsyncServer._send_packet": "a00022b42c1c29e9",
    "socketio.async_server.AsyncServer._send_eio_packet": "64cf72a2ab7d75b1",
    "socketio.async_server.AsyncServer._handle_disconnect": "c0b32ada5b371230",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.__init__": "631dcd744eab875f",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.handle_connect": "fc648c2161ff8e13",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.start_keepalive": "6d83bdbc3db82b86",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.connection_lost": "dd116afc4d8034e1",
    # engineio's ASGI driver table entries that config.realtime.engine.EngineServer swaps
    "engineio.async_drivers.asgi.translate_request": "39e74733f1fe46aa",
}


def fingerprint(function: object) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def overrides() -> dict[str, str]:
    """library method -> our method replacing it, for every class of ``config.realtime``."""
    found = {}
    for info in pkgutil.iter_modules(config.realtime.__path__):
        module = importlib.import_module(f"config.realtime.{info.name}")
        classes = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__]
        for cls in classes:
            # Our methods may come from a mixin of ours (config.realtime.transport): read the whole MRO.
            for own in (k for k in cls.__mro__ if k.__module__.startswith("config.")):
                for name, member in vars(own).items():
                    if not callable(member):
                        continue
                    library = next(
                        (b for b in cls.__mro__ if b.__module__.split(".")[0] in LIBRARIES and name in vars(b)), None
                    )
                    if library is not None:
                        ours = f"{own.__module__}.{own.__qualname__}"
                        found[f"{library.__module__}.{library.__qualname__}.{name}"] = ours
    return found


def library_attribute(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            target = vars(target)[part] if inspect.isclass(target) else getattr(target, part)
        return target
    raise LookupError(path)


def test_every_override_of_a_library_method_is_listed():
    found = set(overrides())
    assert sorted(found - set(REPLACED)) == [], "list it in REPLACED with its fingerprint"
    # and every listed one is still replaced (the ASGI table entry is swapped, not subclassed)
    assert sorted(set(REPLACED) - found) == ["engineio.async_drivers.asgi.translate_request"]
    assert {"translate_request", "websocket"} <= set(asgi._async), "engineio's ASGI table changed its keys"


def test_the_replaced_library_code_is_the_code_we_read():
    ours = overrides()
    changed = [
        f"{path} changed: re-read {ours.get(path, 'config.realtime.engine')} against it, then update its fingerprint"
        for path, expected in REPLACED.items()
        if fingerprint(library_attribute(path)) != expected
    ]
    assert changed == []
