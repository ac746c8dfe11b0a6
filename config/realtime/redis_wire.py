"""One raw Redis connection: commands written as bytes, replies parsed by hiredis.

A broker lane keeps two per shard, one that publishes and one that subscribes
(``config.realtime.lanes``). Hand-written because this is the per-message path of every
cross-process event and redis-py's costs about eight times what it carries: a pipeline
of ten PUBLISH commands and its replies, plus the subscriber's read of the messages, cost
95 µs of CPU a message through redis-py and channels-redis' receive task, 11 µs this way
(``bench/broker_micro.py``). What is hand-written is only the command encoding (RESP
arrays of bulk strings) and the connection's opening; parsing is hiredis', the URL is
read by redis-py's own parser and TLS is set up by redis-py's own context, so its host, port,
socket path, user, password, ``rediss://`` and ``ssl_*`` options mean here what they mean to the
cache. Its other query options (timeouts, pool sizes) do not apply: a lane has its own bounds.
"""

import asyncio
import contextlib
import math
import socket
import ssl
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url

OPEN_TIMEOUT = 5.0  # seconds to connect and authenticate; a server that hangs is retried
# A server cut off without a reset (a partition, a failover that moves its address) is found
# out within SILENCE_LIMIT seconds: an idle connection probes after KEEPALIVE_IDLE s of quiet,
# then every KEEPALIVE_INTERVAL s, and probes or data unacknowledged that long abort it (the
# kernel's defaults: two hours idle, about fifteen minutes for data). A paused server's kernel
# still acknowledges both, so a slow Redis is waited for, not dropped.
SILENCE_LIMIT = 25.0
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL = 10, 5
READ_CHUNK = 1 << 16


def command(*args: bytes | str) -> bytes:
    """``args`` as one RESP command (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


class Wire:
    """A connection whose replies are read in order, as many as have arrived at once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()

    @classmethod
    async def open(cls, host: dict[str, Any], select_database: bool = False) -> "Wire":
        """Connect to a channels-redis host (``{"address": url}`` or ``{"host", "port"}``) and
        authenticate; a server that does not answer within ``OPEN_TIMEOUT`` raises ``TimeoutError``.
        ``select_database``: the URL's database number applies (keys); publishing ignores it."""
        async with asyncio.timeout(OPEN_TIMEOUT):
            return await cls._open(host, select_database)

    @classmethod
    async def _open(cls, host: dict[str, Any], select_database: bool) -> "Wire":
        options = parse_url(host["address"]) if "address" in host else dict(host)
        kind = options.get("connection_class")
        if kind is UnixDomainSocketConnection:
            reader, writer = await asyncio.open_unix_connection(options["path"], limit=READ_CHUNK)
        else:
            tls = _tls_context(options) if kind is SSLConnection else None
            reader, writer = await asyncio.open_connection(
                options.get("host", "localhost"), options.get("port", 6379), ssl=tls, limit=READ_CHUNK
            )
            sock = writer.get_extra_info("socket")
            if sock is not None:
                _find_out_silence(sock)
        wire = cls(reader, writer)
        try:
            if options.get("password"):
                credentials = [options["username"]] if options.get("username") else []
                wire.write(command("AUTH", *credentials, options["password"]))
                [reply] = await wire.expect(1)
                if isinstance(reply, hiredis.ReplyError):
                    raise reply
            if select_database and options.get("db"):
                wire.write(command("SELECT", str(options["db"])))
                [reply] = await wire.expect(1)
                if isinstance(reply, hiredis.ReplyError):
                    raise reply
        except BaseException:
            wire.close()
            raise
        return wire

    @property
    def closed(self) -> bool:
        """The server hung up, or the connection failed (a reset, keepalive's ETIMEDOUT), while
        nobody was reading it: asyncio's transport read it meanwhile, or a write failed. A reader
        paused behind 128 KiB it has not read (a subscriber waiting for the listener) is not read
        by the transport either: its end is found out only by the first write after it."""
        return self._reader.at_eof() or self._reader.exception() is not None or self._writer.is_closing()

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def replies(self) -> list[Any]:
        """The replies parsed so far, once there is at least one (an error reply is a
        ``hiredis.ReplyError`` in the list); ``ConnectionError`` when the server hangs up."""
        while True:
            replies = []
            while (reply := self._parser.gets()) is not False:
                replies.append(reply)
            if replies:
                return replies
            await self._read()

    async def expect(self, count: int) -> list[Any]:
        """The replies of the next ``count`` commands, in order (an error reply is a ``hiredis.ReplyError``)."""
        replies = []
        for _ in range(count):
            while (reply := self._parser.gets()) is False:
                await self._read()
            replies.append(reply)
        return replies

    async def _read(self) -> None:
        data = await self._reader.read(READ_CHUNK)
        if not data:
            raise ConnectionError("Redis closed the connection")
        self._parser.feed(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context redis-py would use for this URL: its ``ssl_*`` query options
    (``ssl_cert_reqs=none`` for a self-signed server, ``ssl_ca_certs``...) with its defaults."""
    tls_options = {key: value for key, value in options.items() if key.startswith("ssl_")}
    return SSLConnection(**tls_options).ssl_context.get()


def _find_out_silence(sock: socket.socket) -> None:
    """Keepalive probes after ``KEEPALIVE_IDLE`` s of quiet, and ``SILENCE_LIMIT`` on what goes
    unacknowledged (Linux's options; elsewhere the system's keepalive timing)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    probes = max(1, math.ceil((SILENCE_LIMIT - KEEPALIVE_IDLE) / KEEPALIVE_INTERVAL))
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", probes),
        ("TCP_USER_TIMEOUT", int(SILENCE_LIMIT * 1000)),  # where set, it alone ends the probing
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
