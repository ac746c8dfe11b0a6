"""Every size is bounded before it is buffered (contract 9.1): websocket frames and HTTP bodies."""

import asyncio
import base64
import contextlib
import json
import os
import struct
import urllib.request

import pytest
from django.conf import settings

from tests.live import run

pytestmark = pytest.mark.django_db(transaction=True)
MiB = 1024 * 1024


def test_a_4_mib_websocket_frame_is_refused_from_its_header(live_server_url):
    """Only the frame's header is sent: a close 1009 can then come from the header alone."""

    async def scenario() -> bytes:
        host, port = live_server_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # 101 Switching Protocols
        header = await asyncio.wait_for(reader.readexactly(2), 5)  # the Engine.IO open packet's frame
        await reader.readexactly(header[1] & 0x7F)
        # FIN + text, masked, 64-bit length of 4 MiB, a mask key, and no payload at all.
        writer.write(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 4 * MiB) + os.urandom(4))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(4), 5)
        await closed(writer)
        return answer

    assert settings.SOCKETIO["MAX_HTTP_BUFFER_SIZE"] < 4 * MiB
    answer = run(scenario())
    assert answer[0] == 0x88 and struct.unpack("!H", answer[2:4])[0] == 1009  # close, "message too big"


async def closed(writer: asyncio.StreamWriter) -> None:
    """Close a connection the server may already have reset, within this loop's life."""
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def post_chunked(url: str, path: str, total: int, chunk: int = 64 * 1024) -> tuple[int, int]:
    """POST ``total`` bytes with no Content-Length; (status, bytes sent before the answer)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    sent = 0
    answer = asyncio.ensure_future(reader.readline())
    try:
        while sent < total and not answer.done():
            writer.write(f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n")
            await writer.drain()
            sent += chunk
            await asyncio.sleep(0.005)  # the answer is read as it comes, before the server's close can reset it
        status_line = await asyncio.wait_for(answer, 5)
    except (ConnectionError, OSError):
        status_line = await asyncio.wait_for(answer, 5)
    finally:
        await closed(writer)
    return int(status_line.split()[1]), sent


def polling_session(url: str) -> str:
    """A long-polling Engine.IO session's path: its POSTs carry packets."""
    with urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=5) as response:
        sid = json.loads(response.read().decode()[1:])["sid"]
    return f"/socket.io/?EIO=4&transport=polling&sid={sid}"


@pytest.mark.parametrize("where", ["api", "socket.io"])
def test_a_chunked_body_past_the_limit_is_refused_while_it_streams(live_server_url, where):
    if where == "api":
        path, limit = "/api/bookings/", settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    else:
        path, limit = polling_session(live_server_url), settings.SOCKETIO["MAX_HTTP_BUFFER_SIZE"]
    status, sent = run(post_chunked(live_server_url, path, 64 * MiB))
    assert status == 413
    assert sent < 8 * MiB  # answered long before the 64 MiB were sent: nothing read it whole
    assert limit < 8 * MiB


def test_a_declared_length_past_the_limit_is_refused_before_reading(live_server_url):
    async def scenario() -> int:
        host, port = live_server_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"POST /api/bookings/ HTTP/1.1\r\nHost: {host}\r\nContent-Length: {100 * MiB}\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)  # no body sent at all
        await closed(writer)
        return int(status_line.split()[1])

    assert run(scenario()) == 413
