"""Every library internal the product touches, each pinned to the library code it was written against.

Two tables, one mechanism (``fingerprint``):

- ``REPLACED``: library methods a product class overrides. Every override of a method of the
  real-time libraries (``REALTIME``: none documents subclassing beyond its handlers, so each
  override leans on the code around it) and every override of a private method of any other
  library. Public hooks of Django, DRF and the standard library (``get_queryset``,
  ``to_representation``, ``emit``...) are those frameworks' documented extension API: not listed.
- ``TOUCHED``: library names the product reads or writes that are not public API, found by an
  AST scan of every product module (``PACKAGES``, migrations aside; ``bench`` and ``deploy`` too,
  since they run against the product's code; tests are not scanned):
  a private import (``from lib import _x``, ``import lib._x``); a private attribute (``obj._x``,
  ``getattr(obj, "_x")``, ``setattr``..., read, written or deleted) whose name no product class
  defines, or that a library class we subclass defines too; inside a product class that
  subclasses a library class (or a mixin of ours mixed into one), ``self._x`` of the library
  (unless we override it: that is ``REPLACED``), and ``self.name`` that is a real-time library's
  instance state, public or not (``self.environ``, ``self.manager_initialized``); and what we
  read or write through that state (``self.packet_class.json = ...``, ``self.conn.parser``).
  Not touches: ``DOCUMENTED`` names, ``PRODUCT_ATTRIBUTES``, the public attributes of Django,
  DRF and the standard library (``self.request``: documented), constants (``reason.X``).
  What the scan cannot see: a library object reached through a parameter or a local variable
  (``event.headers``) has no known type, so only its private names are found there.

A name is matched to its ``TOUCHED`` entry by its last part (the scan does not know the
receiver's type); the entry names where the library defines it, which is what is fingerprinted.

The fingerprint is the sha256 (first 16 hex digits) of: for a method, function or class, its
source; for state (an attribute the library assigns on an instance, a data attribute of a class,
a module's global), the lines of every function of the owner (a class: its library bases too)
and of every top-level statement of the owning module that mention the name. Upgrading a library
then fails ``test_the_library_code_we_lean_on_is_the_code_we_read`` for every entry whose code
changed, naming the product modules to re-read; once re-read and adapted, put the new fingerprint.
"""

import ast
import hashlib
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from engineio.async_drivers import asgi

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "bookings", "partners", "messaging", "dashboard", "deploy", "bench")
# Libraries whose classes we subclass for what they do inside: every override is pinned.
REALTIME = ("socketio", "engineio", "uvicorn", "channels", "channels_redis", "websockets", "daphne")
# Names with a leading underscore that their library documents as public API.
DOCUMENTED = {
    "_meta": "Django's Model _meta API (docs: ref/models/meta)",
    "_base_manager": "Django's base manager (docs: topics/db/managers, 'Base managers')",
    "_state": "Django's Model._state (docs: ref/models/instances, 'Other attributes')",
}
# Private names the product sets on a library's objects for itself (no library defines them).
PRODUCT_ATTRIBUTES = {
    "_was_customer": "bookings.tallies remembers, on the saved instance, whether the user was a customer",
    "_ends_sessions": "partners.access marks, before a save, a user or profile whose change revokes its tokens",
}

# library method -> fingerprint, as our replacement reads it
REPLACED = {
    "socketio.exceptions.ConnectionRefusedError.__init__": "4cb8b27e54d7c822",
    "engineio.async_drivers.asgi.WebSocket.wait": "0346a1c9ebdafdff",
    # a websocket's socket writes frames straight to the connection while it lasts (config.realtime.outbound)
    "engineio.async_drivers.asgi.WebSocket.__call__": "abbf7a49b2256d37",
    "engineio.base_server.BaseServer.__init__": "a06b17502fbd9646",
    "engineio.async_server.AsyncServer.create_queue": "5ff5673a0c017681",
    # what one connection may hold (contract 10.1): sessions per address, the bounded send
    # queue, a POST engineio cannot read answered 400 (config.realtime.engine)
    "engineio.async_server.AsyncServer._trigger_event": "4a09b6e47eb66532",
    "engineio.async_socket.AsyncSocket.handle_post_request": "82dca119a261a959",
    "engineio.async_socket.AsyncSocket.send": "0437276ccba7ab09",
    "engineio.base_server.BaseServer._log_error_once": "dccbb5602dc46a09",
    # the websocket read loop without a Task and a wait_for per frame (config.realtime.reading)
    "engineio.async_socket.AsyncSocket._websocket_handler": "27f120df4d717a24",
    # the wait for the next ping a timer, not a task asleep; the writer's wait bounded without a
    # wait_for (config.realtime.engine: idle memory)
    "engineio.async_socket.AsyncSocket.poll": "826f58a9f3606db2",
    "engineio.async_socket.AsyncSocket.schedule_ping": "fe316639159cd70d",
    "engineio.async_socket.AsyncSocket._send_ping": "67db82a704ea49d0",
    # one pass over the sockets a ping_timeout, not a wait_for per socket (config.realtime.waits)
    "engineio.async_server.AsyncServer._service_task": "b6358bda51d0b34b",
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
    "socketio.async_pubsub_manager.AsyncPubSubManager._thread": "fa8d075729aac64d",
    # per-room subscriptions follow every join and leave (config.realtime.transport)
    "socketio.async_pubsub_manager.AsyncPubSubManager.enter_room": "839498e1ae603f2b",
    "socketio.base_manager.BaseManager.basic_enter_room": "3f509586d2d7f47e",
    "socketio.base_manager.BaseManager.basic_leave_room": "e27f3eea06d1c6a6",
    "socketio.async_namespace.AsyncNamespace.trigger_event": "95e90e5e1d98c31a",
    "socketio.async_server.AsyncServer.__init__": "7ae671981d87c57f",
    "socketio.async_server.AsyncServer._engineio_server_class": "199c42bf149247e0",
    "socketio.async_server.AsyncServer._handle_event": "65178105ef8b593d",
    # an ack nobody waits for is a stray, not a WARNING a packet (config.realtime.strays)
    "socketio.async_server.AsyncServer._handle_ack": "b7521c6c30972551",
    "socketio.async_server.AsyncServer._handle_connect": "c97c480cf777de36",
    "socketio.async_server.AsyncServer._send_packet": "a00022b42c1c29e9",
    "socketio.async_server.AsyncServer._send_eio_packet": "64cf72a2ab7d75b1",
    "socketio.async_server.AsyncServer._handle_disconnect": "c0b32ada5b371230",
    "socketio.async_server.AsyncServer.disconnect": "7d2f76686c12cc23",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.__init__": "631dcd744eab875f",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.handle_connect": "fc648c2161ff8e13",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.start_keepalive": "6d83bdbc3db82b86",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.connection_lost": "dd116afc4d8034e1",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.data_received": "c89d394077d8841d",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.handle_ping": "41bcf345d372c55c",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.send": "d4919ed760ce9f7b",
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.shutdown": "e8ace796ada616b7",
    # PyJWT: a token segment's alphabet checked in C, the same checks in the same order (config.realtime.access_tokens)
    "jwt.api_jws.PyJWS._decode_base64url_segment": "c00c1d4615f8809d",
    # engineio's ASGI driver table entries that config.realtime.engine.EngineServer swaps
    "engineio.async_drivers.asgi.translate_request": "39e74733f1fe46aa",
}

# Library code the product leans on where the scan cannot see it -> (fingerprint, why):
# config.realtime.stopping._pass_on sets ``timeout_graceful_shutdown`` on the config of the uvicorn
# server whose ``handle_exit`` it hands the stop signal to (a parameter: no known type), and uvicorn
# reads it only once its shutdown begins; config.realtime.inbound.event_parts reads a Socket.IO
# packet as python-socketio's decode does (a copy of its grammar, not a call), and
# config.realtime.namespace a client event's session as its get_session does.
LEANED_ON: dict[str, tuple[str, str]] = {
    "uvicorn.server.Server.handle_exit": (
        "553276efa26e09ea",
        "config.realtime.stopping: the stop signal's previous handler, its ``__self__``",
    ),
    "uvicorn.server.Server.shutdown": (
        "9b33c50562992b1e",
        "config.realtime.stopping: reads ``timeout_graceful_shutdown`` when the wait starts",
    ),
    "socketio.async_server.AsyncServer.get_session": (
        "75d00587a3a77688",
        "config.realtime.namespace: BaseNamespace._session_now does its lookups, without its coroutines",
    ),
    "socketio.packet.Packet.decode": (
        "61ad7904b539f472",
        "config.realtime.inbound.event_parts: an EVENT's common form read as it reads it",
    ),
}

# library name the product reads or writes -> (fingerprint, why we touch it)
TOUCHED: dict[str, tuple[str, str]] = {
    # channels-redis: the lanes (config.realtime.transport, .lanes) put a room's group on the shard
    # the layer would, and PUBLISH to its group channel in the layer's own format
    "channels_redis.pubsub.RedisPubSubChannelLayer._get_layer": (
        "1862b87a25ac72b2",
        "the layer of the running loop, whose shards the lanes mirror",
    ),
    "channels_redis.pubsub.RedisPubSubLoopLayer._shards": ("29257e56c619fb1b", "one lane per shard, to the same Redis"),
    "channels_redis.pubsub.RedisPubSubLoopLayer._get_shard": (
        "9c655ee12ccbc91e",
        "the shard a group lives on: its lane",
    ),
    "channels_redis.pubsub.RedisPubSubLoopLayer._get_group_channel_name": (
        "c3139bae61c673aa",
        "the channel a group's messages are published to",
    ),
    # python-socketio: the server (config.realtime.server: recovery, refusals, closing bare sessions)
    "socketio.async_server.AsyncServer.environ": (
        "83fd37fd43a134db",
        "a session's WSGI/ASGI environ: the token and the address at CONNECT",
    ),
    "socketio.async_server.AsyncServer.eio": (
        "c1ad64fa6ca80d01",
        "the Engine.IO server under it: closing a session, its sockets",
    ),
    "socketio.async_server.AsyncServer.manager": (
        "393288eaca2c46b4",
        "the client manager (ours) the replaced handlers call",
    ),
    "socketio.async_server.AsyncServer.manager_initialized": (
        "e164c565ff0bd12d",
        "start() initializes the manager at lifespan start, once, as the first CONNECT would",
    ),
    "socketio.async_server.AsyncServer.namespace_handlers": (
        "bf2dda9faf732c7f",
        "whether a namespace has a handler, and which, at CONNECT",
    ),
    "socketio.async_server.AsyncServer.packet_class": (
        "bc268caeb817f518",
        "the packets our replaced handlers build and decode",
    ),
    "socketio.packet.Packet.json": (
        "cfb65436a6caa9b0",
        "set on the class (every Packet): Socket.IO packets decode leniently (config.realtime.codec)",
    ),
    "socketio.async_server.AsyncServer.reason": ("bbbc90e18d26c2df", "the disconnect reasons our handlers pass on"),
    "socketio.async_server.AsyncServer.not_handled": (
        "1fa0eedffff50586",
        "what a namespace returns for an event it does not handle (no ack): config.realtime.namespace",
    ),
    "socketio.async_namespace.AsyncNamespace.server": (
        "79550826a465e932",
        "a namespace reaches the server and its manager (bookings.sockets, config.realtime.namespace, .token_lifetime)",
    ),
    # python-socketio: the manager (config.realtime.manager, .transport)
    # our listener (config.realtime.transport._handle_broker) hands another process's messages to
    # these, as python-socketio's listener task (``_thread``, which ours replaces) would
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_emit": (
        "4284671be955f644",
        "our _handle_broker hands it an emit from another process (the manager overrides it)",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_callback": (
        "e637e7708127b711",
        "our _handle_broker hands it an ack callback from another process",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_disconnect": (
        "f33e84380da58dc3",
        "our _handle_broker hands it a disconnect from another process",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_enter_room": (
        "d24981b063303fd5",
        "our _handle_broker hands it an enter_room from another process",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_leave_room": (
        "98b32db1e8bf865a",
        "our _handle_broker hands it a leave_room from another process",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager._handle_close_room": (
        "8794e03b8968ae6e",
        "our _handle_broker hands it a close_room from another process",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.callbacks": (
        "b32c2d0d5bc124d1",
        "the acks the server waits for, by sid and id: any other ack is a stray (config.realtime.strays)",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.channel": (
        "26ff0b9eb4fac2a4",
        "the pub/sub channel: the transport's group names start with it",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.host_id": (
        "5b1b4481140ea5a6",
        "stamped on what we publish, as python-socketio's own _publish does",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.pending_connect": (
        "054fa7bae12f5861",
        "a recovering connection's old sid connects as python-socketio's pre_connect would",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.rooms": (
        "da610b5a97d2a67f",
        "the local rooms: the transport subscribes to the groups they fall in",
    ),
    "socketio.async_pubsub_manager.AsyncPubSubManager.server": ("afaae7f44d2234b9", "the server the manager serves"),
    # python-engineio (config.realtime.engine: per-connection bounds, the ASGI driver)
    "engineio.async_server.AsyncServer._async": (
        "7dbfb6bc7ecb699b",
        "the ASGI driver table: our request translation and websocket class",
    ),
    "engineio.async_server.AsyncServer.log_message_keys": (
        "36ab8399ddef441b",
        "our _log_error_once keeps its once-only set",
    ),
    "engineio.async_server.AsyncServer.logger": ("d00216968124119c", "our _log_error_once logs where engineio does"),
    "engineio.async_server.AsyncServer.max_http_buffer_size": (
        "01a862e6fad0bf61",
        "the bound a POST body is read against",
    ),
    "engineio.async_server.AsyncServer.reason": ("bbbc90e18d26c2df", "the close reason for a dropped session"),
    "engineio.async_server.AsyncServer.sockets": ("62c2798f986f5aac", "the sessions, counted per address"),
    "engineio.base_server.BaseServer._get_socket": (
        "ae2f99e66d632944",
        "a client event's session read as python-socketio's get_session reads it (BaseNamespace._session_now)",
    ),
    "engineio.async_socket.AsyncSocket.queue": ("34733e2605318364", "the bounded send queue replaces it"),
    "engineio.async_socket.AsyncSocket.server": ("9418144ef2dff89e", "a socket's server: its bounds and its logger"),
    "engineio.async_socket.AsyncSocket.connected": (
        "6e09fe87babd5848",
        "our websocket handler tells an upgrade from a websocket opened directly, as engineio's does",
    ),
    "engineio.async_socket.AsyncSocket.upgraded": (
        "8f465ad8f1e7e95f",
        "our websocket handler marks the upgrade done, as engineio's does (config.realtime.reading); "
        "a websocket serves the socket, not polling (config.realtime.outbound)",
    ),
    "engineio.async_socket.AsyncSocket.sid": ("d11035000b576bc8", "the session named in the websocket loop's logs"),
    "engineio.async_server.AsyncServer.ping_interval": (
        "01a862e6fad0bf61",
        "with ping_timeout, how long the websocket loop waits for a frame (config.realtime.reading)",
    ),
    "engineio.async_server.AsyncServer.ping_timeout": (
        "0cd02f2cc37afbd3",
        "with ping_interval, how long the websocket loop waits for a frame (config.realtime.reading)",
    ),
    "engineio.async_socket.AsyncSocket.upgrading": (
        "7e008665ea922154",
        "a receive outside the loop during an upgrade keeps engineio's OSError",
    ),
    "engineio.async_drivers.asgi.WebSocket.asgi_receive": (
        "2acfacb0fe1eabe5",
        "our WebSocket.wait reads the ASGI receive itself; our __call__ sets it, as engineio's",
    ),
    "engineio.async_drivers.asgi.WebSocket.asgi_send": (
        "3920787ccebd9005",
        "our __call__ sets it and accepts through it, engineio's body inlined",
    ),
    "engineio.async_drivers.asgi.WebSocket.handler": (
        "68ae8e59011b172b",
        "the engineio socket the websocket serves (during an upgrade)",
    ),
    # the outbound path (config.realtime.outbound, issue 34): a MESSAGE is written to the
    # websocket at once only where engineio's send would have queued nothing ahead of it
    "engineio.async_socket.AsyncSocket.closed": ("3177d37e83bc9a17", "a closed socket is sent no ping (as engineio)"),
    "engineio.async_socket.AsyncSocket.closing": ("862f307c021c79c9", "a close under way: packets keep the queue"),
    "engineio.async_socket.AsyncSocket.last_ping": (
        "84b138d3a235e1d9",
        "a ping overdue: engineio's send closes the socket, so the packet goes its way",
    ),
    "engineio.base_server.BaseServer.ping_timeout": ("a06b17502fbd9646", "when a ping is overdue (as engineio's send)"),
    "engineio.async_server.AsyncServer.service_task_event": (
        "1fe285610a261ee2",
        "the event engineio's shutdown sets to end the service task (config.realtime.waits)",
    ),
    "socketio.async_server.AsyncServer._send_eio_packet": (
        "64cf72a2ab7d75b1",
        "a room emit's packet to a socket that cannot take it at once goes python-socketio's way",
    ),
    "socketio.async_server.AsyncServer._send_packet": (
        "a00022b42c1c29e9",
        "an inline event's ack that cannot be written at once goes python-socketio's way (config.realtime.inline)",
    ),
    "websockets.server.ServerProtocol.extensions": (
        "0d8c8aee0845dfc3",
        "no extension (permessage-deflate) negotiated: a frame built once is this connection's frame",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.close_sent": (
        "d9c9a454d8fae0bc",
        "no frame written after the close frame",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.transport": (
        "c9e1fc407470172c",
        "the connection's transport, written to as uvicorn's send writes to it",
    ),
    # uvicorn and websockets (config.realtime.websocket_protocol: per-connection memory)
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.conn": (
        "783e430754be0dbe",
        "the websockets protocol object: its EOF and its parser, at connection loss",
    ),
    "websockets.server.ServerProtocol.parser": (
        "a372ecdebeb1bb36",
        "the suspended parser generator is closed at connection loss (it holds a cycle)",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.logger": (
        "21083754c98ccba6",
        "one shared per-connection logger, not one per connection",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.queue": (
        "f6ded3f07d128698",
        "a smaller mailbox than an asyncio.Queue",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.writable": (
        "cdcee12e95ee3495",
        "a smaller flag than an asyncio.Event",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.handshake_complete": (
        "c3234a4ea7c0a68e",
        "uvicorn's accept not yet sent: its response goes out with the round's first frames",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.response": (
        "3df12e7ff1309cbc",
        "the handshake response, let go once sent (uvicorn reads it only before)",
    ),
    "engineio.base_server.BaseServer.handlers": (
        "70fc8f7445fdeeb1",
        "the websocket read loop hands a Socket.IO packet to the 'message' handler as receive does",
    ),
    "engineio.base_server.BaseServer.async_handlers": (
        "a06b17502fbd9646",
        "the read loop's straight way to the 'message' handler is engineio's only while handlers are awaited",
    ),
    "websockets.protocol.Protocol.max_message_size": (
        "161f5c401ad6b08e",
        "a text frame read by the product's own reader is within the library's size bound",
    ),
    "websockets.protocol.Protocol.reader": (
        "87ac7a22e4cfaf64",
        "the product reads text frames itself only from a frame boundary (the library's buffer empty)",
    ),
    "websockets.streams.StreamReader.buffer": (
        "c43e065a1efbdf42",
        "the product reads text frames itself only from a frame boundary (the library's buffer empty)",
    ),
    "websockets.protocol.Protocol.current_size": (
        "a3d8a317af595a6c",
        "the product reads a text frame itself only outside a fragmented message (inside, the library refuses it)",
    ),
    "websockets.protocol.Protocol.state": (
        "3e3ad30741c1a056",
        "after a frame fed to the library, the product reads on only while the connection is open",
    ),
    "uvicorn.protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol.read_paused": (
        "df07a0cff78c72d3",
        "a text frame read by the product pauses reading as uvicorn's does (resumed by its receive)",
    ),
    # Django, DRF, drf-spectacular and asyncio
    "django.urls.resolvers.ResolverMatch._func_path": (
        "744d6c973fcae625",
        "config.metrics labels a request by its view's dotted path, as Django's repr does",
    ),
    "django.contrib.auth.base_user.AbstractBaseUser._password": (
        "1b723bfb71d68e00",
        "partners.access: set_password ran since the last save (Django keeps it until the save)",
    ),
    "drf_spectacular.openapi.AutoSchema._map_serializer": (
        "90cba7376ebd3fc3",
        "config.shapes: a serializer's request schema, as drf-spectacular writes it",
    ),
    "asyncio.tasks._enter_task": (
        "e367ea4848c69b81",
        "config.realtime.eager: a handler's first step taken in data_received as the reading task's (eager tasks' way)",
    ),
    "asyncio.tasks._leave_task": (
        "10a7015da2a19866",
        "config.realtime.eager: the reading task is current again only while its own steps run",
    ),
    "jwt.api_jwt.PyJWT._jws": (
        "c60c04b5a31983bb",
        "config.realtime.access_tokens: PyJWT's claims checks over a PyJWS whose HMAC key was checked once",
    ),
    "asyncio.base_events.BaseEventLoop._thread_id": (
        "897ee091db029fa3",
        "config.realtime.emit: whether we run on the loop's thread (None elsewhere, and on other loops)",
    ),
}


def _is_private(name: str) -> bool:
    """``_x``, not a dunder nor a sunder (``_missing_`` is Enum's documented hook)."""
    return name.startswith("_") and not name.endswith("_")


def modules() -> dict[str, Path]:
    """Every product module the scan reads: dotted name -> file."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def _is_product(cls: type) -> bool:
    return cls.__module__.split(".")[0] in PACKAGES


def _is_library(cls: type) -> bool:
    return not _is_product(cls) and cls.__module__ not in ("builtins", "typing", "abc")


def product_classes() -> dict[tuple[str, str], type]:
    """(module, qualname) -> class, for every class a product module defines (importing those modules)."""
    found = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        if not any(isinstance(node, ast.ClassDef) for node in ast.walk(tree)):
            continue
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == name:
                found[(name, cls.__qualname__)] = cls
    return found


@cache
def _parsed(module: str) -> tuple[str, ast.Module]:
    """A library module's source and tree (read once: ``inspect.getsource`` of a class is slow)."""
    source = Path(inspect.getsourcefile(sys.modules[module]) or "").read_bytes().decode()
    return source, ast.parse(source)


@cache
def _self_stores(module: str) -> dict[str, set[str]]:
    """class qualname -> the names its methods assign on ``self``, in a library module."""
    try:
        _, tree = _parsed(module)
    except (OSError, TypeError, KeyError):
        return {}
    found: dict[str, set[str]] = {}

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, [*scope, child.name])
                continue
            stored = isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Store)
            if scope and stored and isinstance(child.value, ast.Name) and child.value.id == "self":
                found.setdefault(".".join(scope), set()).add(child.attr)
            visit(child, scope)

    visit(tree, [])
    return found


@cache
def _library_members(cls: type) -> dict[str, type]:
    """name -> the first library class of ``cls``'s MRO that defines it (in its body, or ``self.name = ``)."""
    found: dict[str, type] = {}
    for base in cls.__mro__:
        if _is_library(base):
            for name in {*vars(base), *_self_stores(base.__module__).get(base.__qualname__, ())}:
                found.setdefault(name, base)
    return found


def library_members(cls: type, classes: dict[tuple[str, str], type]) -> dict[str, type]:
    """As ``_library_members``, for a product class and every product class it is mixed into."""
    found: dict[str, type] = {}
    for other in classes.values():
        if cls in other.__mro__:
            for name, owner in _library_members(other).items():
                found.setdefault(name, owner)
    return found


def _is_realtime(cls: type) -> bool:
    return cls.__module__.split(".")[0] in REALTIME


def _is_method(owner: type, name: str) -> bool:
    member = inspect.getattr_static(owner, name, None)
    return inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod))


@dataclass(frozen=True)
class Touch:
    name: str  # the attribute's name, or the dotted name of a private import
    module: str  # the product module that touches it
    line: int
    kind: str  # import, read, write


def _own_names(trees: dict[str, ast.Module]) -> set[str]:
    """Attribute names the product's classes define: methods, class attributes, ``self.x = ``.

    A module's globals and functions are not among them (``config.health._ready`` is no attribute
    of anything else).
    """
    found = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            for statement in node.body if isinstance(node, ast.ClassDef) else []:
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found.add(statement.name)
                targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
                found |= {t.id for t in targets if isinstance(t, ast.Name)}
            stored = isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            if stored and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                found.add(node.attr)
    return found


class _Scan(ast.NodeVisitor):
    """The touches of one module; ``self`` means the enclosing product class."""

    def __init__(self, module: str, classes: dict[tuple[str, str], type], own: set[str], ambiguous: set[str]) -> None:
        self.module, self.classes, self.own, self.ambiguous = module, classes, own, ambiguous
        self.scope: list[str] = []
        self.cls: type | None = None
        self.members: dict[type, dict[str, type]] = {}
        self.state: set[int] = set()  # ids of ``self.x`` nodes that are a library's state
        self.found: list[Touch] = []

    def add(self, name: str, node: ast.AST, kind: str) -> None:
        self.found.append(Touch(name, self.module, node.lineno, kind))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer = self.cls
        self.scope.append(node.name)
        self.cls = self.classes.get((self.module, ".".join(self.scope)))
        self.generic_visit(node)
        self.scope.pop()
        self.cls = outer

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or (node.module or "").split(".")[0] in PACKAGES:
            return
        for alias in node.names:
            dotted = f"{node.module}.{alias.name}"
            if any(_is_private(part) for part in dotted.split(".")):
                self.add(dotted, node, "import")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if any(_is_private(part) for part in alias.name.split(".")):
                self.add(alias.name, node, "import")

    def visit_Call(self, node: ast.Call) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1:
            attribute = node.args[1]
            if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
                kind = "read" if name in ("getattr", "hasattr") else "write"
                self.generic_visit(node)
                self.attribute(node.args[0], attribute.value, node, kind, called=False)
                return
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)  # the receiver first: ``self.x`` is known as state before ``self.x.y``
        kind = "read" if isinstance(node.ctx, ast.Load) else "write"
        self.attribute(node.value, node.attr, node, kind, called=getattr(node, "called", False))

    def attribute(self, receiver: ast.AST, name: str, node: ast.AST, kind: str, called: bool) -> None:
        on_self = (isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")) or (
            isinstance(receiver, ast.Call) and getattr(receiver.func, "id", None) == "super"
        )
        if on_self and self.cls is not None:
            if self.cls not in self.members:
                self.members[self.cls] = library_members(self.cls, self.classes)
            owner = self.members[self.cls].get(name)
            if owner is None:
                return
            ours = any(name in vars(k) for k in self.cls.__mro__ if _is_product(k))
            if _is_method(owner, name):
                # a library method: a private one is a touch unless we override it (REPLACED pins it)
                if _is_private(name) and not ours:
                    self.add(name, node, kind)
            elif _is_private(name) or _is_realtime(owner):
                # the library's state: any of a real-time library's (none documents its attributes);
                # of Django, DRF or the standard library, the private ones (the rest is documented API)
                self.state.add(id(node))
                self.add(name, node, kind)
        elif id(receiver) in self.state and name not in self.own and not name.isupper():
            if name.startswith("__"):  # Python's own (a bound method's ``__self__``): still the library's object
                self.state.add(id(node))
                return
            if called and kind == "read" and not _is_private(name):
                return  # a public method of the library's object
            # read or written through the library's state: that object's attribute (our own objects
            # it may hold, and constants, aside)
            self.state.add(id(node))
            self.add(name, node, kind)
        elif (
            _is_private(name)
            and name not in DOCUMENTED
            and name not in PRODUCT_ATTRIBUTES
            # a name of ours, unless a library class we subclass has it too (the receiver's type is unknown)
            and (name not in self.own or name in self.ambiguous)
        ):
            self.add(name, node, kind)


def _mark_callees(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node.func.called = True


def touches() -> list[Touch]:
    """Every library internal a product module touches."""
    classes = product_classes()
    trees = {name: ast.parse(path.read_text()) for name, path in modules().items()}
    members = [(name, owner) for cls in classes.values() for name, owner in _library_members(cls).items()]
    # A real-time library's state that a subclass of ours writes too (``self.upgrading = True``)
    # stays the library's: read through another of its objects, it is still a touch.
    own = _own_names(trees) - {n for n, owner in members if _is_realtime(owner) and not _is_method(owner, n)}
    ambiguous = {name for name, _ in members if _is_private(name)}
    found = []
    for name, tree in trees.items():
        _mark_callees(tree)
        scan = _Scan(name, classes, own, ambiguous)
        scan.visit(tree)
        found += scan.found
    return found


def overrides() -> dict[str, str]:
    """library method -> our class replacing it, for every class of the product (mixins of ours read through)."""
    found = {}
    for cls in product_classes().values():
        for own in (k for k in cls.__mro__ if _is_product(k)):
            for name, member in vars(own).items():
                if not callable(member) and not isinstance(member, (property, classmethod, staticmethod)):
                    continue
                library = next((b for b in cls.__mro__ if _is_library(b) and name in vars(b)), None)
                if library is None:
                    continue
                if library.__module__.split(".")[0] in REALTIME or _is_private(name):
                    found[f"{library.__module__}.{library.__qualname__}.{name}"] = (
                        f"{own.__module__}.{own.__qualname__}"
                    )
    return found


def resolve(path: str) -> tuple[object, object, str]:
    """``lib.module.Owner.name`` -> (owner: a class or a module, its member or None, name)."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:-1]:
            owner = getattr(owner, part)
        return owner, inspect.getattr_static(owner, parts[-1], None), parts[-1]
    raise LookupError(path)


@cache
def _segments(owner: object) -> tuple[str, ...]:
    """The whole lines of each function of ``owner`` (a class or a module), and for a module, of
    each top-level statement that is neither a function nor a class."""
    source, tree = _parsed(owner.__name__ if inspect.ismodule(owner) else owner.__module__)
    lines = source.splitlines(keepends=True)
    node: ast.AST = tree
    for part in [] if inspect.ismodule(owner) else owner.__qualname__.split("."):
        node = next(c for c in node.body if isinstance(c, ast.ClassDef) and c.name == part)
    nodes = [n for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if inspect.ismodule(owner):
        nodes += [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return tuple("".join(lines[n.lineno - 1 : n.end_lineno]) for n in nodes)


def _code_mentioning(owner: object, name: str) -> Iterator[str]:
    """The functions of ``owner`` (a class and its library bases, or a module) and the module's
    top-level statements that mention ``name``."""
    owners = [k for k in owner.__mro__ if _is_library(k)] if inspect.isclass(owner) else [owner]
    word = re.compile(rf"\b{re.escape(name)}\b")
    for each in owners:
        yield from (segment for segment in _segments(each) if word.search(segment))


def fingerprint(path: str) -> str:
    """See the module's docstring: the source of a method, function or class; for state, the code
    of its owner that mentions it."""
    owner, member, name = resolve(path)
    if isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    # a def or class statement of that name: not a value assigned there (ours, maybe: ``Packet.json``)
    if (inspect.isfunction(member) or inspect.isclass(member)) and member.__name__ == name:
        source = inspect.getsource(member)
    else:
        source = "\n".join(_code_mentioning(owner, name))
        assert source, f"{path}: no code of {owner} mentions {name}"
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _last(path: str) -> str:
    return path.rpartition(".")[2]


def unlisted_touches(found: list[Touch]) -> list[str]:
    listed_names = {_last(path) for path in TOUCHED}
    return sorted(
        {
            f"{touch.module}:{touch.line} {touch.kind}s {touch.name}"
            for touch in found
            if (touch.name not in TOUCHED if touch.kind == "import" else touch.name not in listed_names)
        }
    )


def test_every_library_internal_the_product_touches_is_listed():
    assert unlisted_touches(touches()) == [], "list each in TOUCHED with its fingerprint and why"


def test_every_listed_internal_is_still_touched():
    used = {touch.name for touch in touches()}
    stale = [path for path in TOUCHED if path not in used and _last(path) not in used]
    assert stale == [], "no product module touches these any more: drop them"


def test_the_names_we_set_on_library_objects_are_no_library_names():
    from django.contrib.auth.models import AbstractUser

    classes = product_classes()
    ambiguous = {name for cls in classes.values() for name in _library_members(cls)}
    for name in PRODUCT_ATTRIBUTES:
        assert name not in ambiguous and not hasattr(AbstractUser, name), f"{name} is a library's: list it in TOUCHED"


def test_the_scan_finds_what_a_reading_by_hand_found():
    """Issue 33 listed these by reading the code; the scan must find each on its own."""
    found = {(touch.module, touch.name, touch.kind) for touch in touches()}
    assert {
        ("config.realtime.transport", "_get_layer", "read"),
        ("config.realtime.transport", "_shards", "read"),
        ("config.realtime.transport", "_get_shard", "read"),
        ("config.realtime.manager", "pending_connect", "read"),
        ("config.realtime.server", "manager_initialized", "write"),
        ("config.realtime.server", "environ", "read"),
        ("config.realtime.server", "json", "write"),
        ("config.realtime.websocket_protocol", "parser", "read"),
        ("config.realtime.emit", "_thread_id", "read"),
        ("config.realtime.engine", "upgrading", "read"),
    } <= found


def test_every_override_of_a_library_method_is_listed():
    found = set(overrides())
    assert sorted(found - set(REPLACED)) == [], "list it in REPLACED with its fingerprint"
    # and every listed one is still replaced (the ASGI table entry is swapped, not subclassed)
    assert sorted(set(REPLACED) - found) == ["engineio.async_drivers.asgi.translate_request"]
    assert {"translate_request", "websocket"} <= set(asgi._async), "engineio's ASGI table changed its keys"


def test_the_library_code_we_lean_on_is_the_code_we_read():
    ours = overrides()
    readers: dict[str, set[str]] = {}
    for touch in touches():
        readers.setdefault(touch.name, set()).add(touch.module)
    changed = [
        f"{path} changed: re-read {ours.get(path, 'config.realtime.engine')} against it, then update its fingerprint"
        for path, expected in REPLACED.items()
        if fingerprint(path) != expected
    ] + [
        f"{path} changed: re-read {sorted(readers.get(path) or readers.get(_last(path), ()))} against it, "
        "then update its fingerprint"
        for path, (expected, _why) in TOUCHED.items()
        if fingerprint(path) != expected
    ]
    changed += [
        f"{path} changed: re-read {why.partition(':')[0]} against it, then update its fingerprint"
        for path, (expected, why) in LEANED_ON.items()
        if fingerprint(path) != expected
    ]
    assert changed == []


def _with_mutant(monkeypatch: pytest.MonkeyPatch, relative: str, mutant: str) -> None:
    """The scan reads ``mutant`` at the end of the product module ``relative``."""
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        text = real(self, *args, **kwargs)
        return text + mutant if self == ROOT / relative else text

    monkeypatch.setattr(Path, "read_text", read_text)


@pytest.mark.parametrize(
    ("relative", "mutant", "expected"),
    [
        # a private import, anywhere in the product
        (
            "bookings/dispatch.py",
            "\nfrom channels_redis.core import _consistent_hash\n",
            "imports channels_redis.core._consistent_hash",
        ),
        ("bench/dispatch.py", "\nimport socketio._private\n", "imports socketio._private"),
        # a private attribute read, on any object, directly or through getattr
        ("messaging/notify.py", "\ndef _mutant(layer):\n    return layer._receive_buffer\n", "reads _receive_buffer"),
        ("partners/tracking.py", "\ndef _mutant(loop):\n    return getattr(loop, '_ready')\n", "reads _ready"),
        # a private write
        ("config/realtime/emit.py", "\ndef _mutant(loop):\n    loop._stopping = True\n", "writes _stopping"),
        (
            "dashboard/selectors.py",
            "\ndef _mutant(eio):\n    setattr(eio, '_service_task', None)\n",
            "writes _service_task",
        ),
        # a private name of ours that a library class we subclass also has: the receiver may be the library's
        ("bookings/sockets.py", "\ndef _mutant(server):\n    server._trigger_event = None\n", "writes _trigger_event"),
    ],
)
def test_a_library_internal_touched_anywhere_fails_the_scan(monkeypatch, relative, mutant, expected):
    _with_mutant(monkeypatch, relative, mutant)
    module = relative.removesuffix(".py").replace("/", ".")
    assert any(line.startswith(f"{module}:") and line.endswith(expected) for line in unlisted_touches(touches()))
    with pytest.raises(AssertionError):
        test_every_library_internal_the_product_touches_is_listed()


def _with_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, source: str) -> None:
    """A product module ``name`` (a package of its own) that the scan reads and imports."""
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "PACKAGES", (*PACKAGES, name))
    real = modules()
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: {**real, name: tmp_path / f"{name}.py"})


OVERRIDES = {
    # any override of a real-time library's method, outside config/realtime
    "socketio": "import socketio\nclass Jobs(socketio.AsyncNamespace):\n    async def emit(self, *a):\n        pass\n",
    # a private method of any other library
    "rest_framework": (
        "from rest_framework.views import APIView\n"
        "class V(APIView):\n    def _allowed_methods(self):\n        return []\n"
    ),
}


@pytest.mark.parametrize("library", sorted(OVERRIDES))
def test_an_override_outside_config_realtime_fails_the_override_test(monkeypatch, tmp_path, library):
    name = f"mutant_override_{library}"
    _with_module(monkeypatch, tmp_path, name, OVERRIDES[library])
    assert any(ours.startswith(f"{name}.") for ours in overrides().values())
    with pytest.raises(AssertionError):
        test_every_override_of_a_library_method_is_listed()


def test_a_public_hook_of_a_framework_is_not_an_override_to_pin(monkeypatch, tmp_path):
    """DRF's and Django's documented hooks are their extension API."""
    source = (
        "from rest_framework.generics import ListAPIView\n"
        "class V(ListAPIView):\n    def get_queryset(self):\n        return []\n"
    )
    _with_module(monkeypatch, tmp_path, "mutant_public_hook", source)
    assert not any(ours.startswith("mutant_public_hook.") for ours in overrides().values())


def test_a_real_time_library_state_read_from_a_subclass_fails_the_scan(monkeypatch, tmp_path):
    """Public or not, a real-time library's instance state is internal: ``self.always_connect``
    in a subclass of the Socket.IO server, and what is written through it."""
    source = (
        "import socketio\nclass S(socketio.AsyncServer):\n    def f(self):\n"
        "        self.eio.ping_interval_grace_period = 1\n        return self.always_connect\n"
    )
    _with_module(monkeypatch, tmp_path, "mutant_state", source)
    unlisted = unlisted_touches(touches())
    assert "mutant_state:5 reads always_connect" in unlisted
    assert "mutant_state:4 writes ping_interval_grace_period" in unlisted


def test_a_changed_library_fails_naming_the_module_to_re_read(monkeypatch):
    monkeypatch.setitem(TOUCHED, "channels_redis.pubsub.RedisPubSubLoopLayer._shards", ("0" * 16, "a test"))
    with pytest.raises(AssertionError, match=r"_shards changed: re-read \['config.realtime.transport'\]"):
        test_the_library_code_we_lean_on_is_the_code_we_read()


def test_a_changed_library_we_lean_on_names_its_reader(monkeypatch):
    monkeypatch.setitem(LEANED_ON, "socketio.packet.Packet.decode", ("0" * 16, "config.realtime.inbound: a test"))
    with pytest.raises(AssertionError, match=r"Packet.decode changed: re-read config.realtime.inbound against it"):
        test_the_library_code_we_lean_on_is_the_code_we_read()


def test_an_entry_nobody_touches_any_more_fails(monkeypatch):
    monkeypatch.setitem(TOUCHED, "channels_redis.core.RedisChannelLayer._receive_buffer", ("0" * 16, "a test"))
    with pytest.raises(AssertionError, match="drop them"):
        test_every_listed_internal_is_still_touched()


def test_state_is_fingerprinted_by_the_library_code_that_mentions_it():
    """``environ`` is assigned by python-socketio's base server and read by its async server: both count."""
    owner, member, name = resolve("socketio.async_server.AsyncServer.environ")
    assert member is None
    code = "\n".join(_code_mentioning(owner, name))
    assert "self.environ = {}" in code and "_handle_eio_connect" in code
