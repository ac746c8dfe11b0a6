"""The floor of CPython for the tracking hot path: what no Python server of this job can beat.

A Socket.IO server reduced to what the anchors' scenario needs, with nothing between the
socket and the relay: an ``asyncio.Protocol`` on uvloop, the HTTP upgrade read by hand, client
frames unmasked with websockets' C speedup, Engine.IO 4 / Socket.IO 5 over the websocket
transport only, JWT checked by PyJWT at each namespace CONNECT, rooms as a dict of sets, each
relayed update encoded and framed once for its room, the frame written straight to each
transport. No Django, no database, no rights, no recovery, no limits, no metrics; one ping to every
connection each ``pingInterval``, as a client requires.

It exists to be measured beside the product and the anchors (``python bench/floor.py
--compare``: the anchors' load generator and steps; this server, Node socket.io and bare
python-socketio, one run):
where it lands says how much of the gap to Node any Python server of this design can close.
Not a server to run: it trusts its input (a frame split across reads is handled; a hostile
client is not).
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time
from pathlib import Path

import jwt
import orjson
import uvloop
from websockets.speedups import apply_mask

SECRET = "bench-secret"  # the anchors' own
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPEN = b'0{"sid":"%s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
partner_booking = {f"p{i}": f"b{i}" for i in range(20000)}
rooms: dict[str, set["Conn"]] = {}
connections: set["Conn"] = set()
PING = bytes((0x81, 1)) + b"2"


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.upgraded = False
        self.user: dict[str, str] = {}  # namespace -> user id
        self.rooms: list[str] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.t = transport
        connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        connections.discard(self)
        for room in self.rooms:
            rooms.get(room, set()).discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4 :]
            key = next(
                line.split(":", 1)[1].strip()
                for line in head.split("\r\n")
                if line.lower().startswith("sec-websocket-key")
            )
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            self.t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n" + frame(OPEN % os.urandom(8).hex().encode())
            )
            self.upgraded = True
        buf = self.buf
        while len(buf) >= 6:
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < at + 4 + n:
                break
            opcode, mask = buf[0] & 0x0F, buf[at : at + 4]
            payload = apply_mask(buf[at + 4 : at + 4 + n], mask)
            buf = buf[at + 4 + n :]
            if opcode == 8:
                self.t.close()
                return
            if opcode == 1:
                self.packet(payload)
        self.buf = buf

    def packet(self, p: bytes) -> None:
        if p[:2] != b"40" and p[:2] != b"42":
            return  # pongs and the rest
        head, _, body = p[2:].partition(b",")
        nsp = head.decode()
        if p[1:2] == b"0":
            try:
                claims = jwt.decode(orjson.loads(body)["token"], SECRET, algorithms=["HS256"])
            except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                self.t.write(frame(b"44" + head + b',{"message":"unauthorized"}'))
                return
            self.user[nsp] = str(claims["user_id"])
            self.t.write(frame(b"40" + head + b',{"sid":"' + os.urandom(8).hex().encode() + b'"}'))
            return
        digits = 0
        while body[digits : digits + 1].isdigit():
            digits += 1
        ack, (event, arg) = body[:digits], orjson.loads(body[digits:])
        if event == "location:update":
            booking = partner_booking.get(self.user.get(nsp, ""))
            members = rooms.get("booking:" + booking) if booking else None
            if members:
                out = frame(
                    b"42/customer,"
                    + orjson.dumps(
                        [
                            "partner:location_update",
                            {
                                "bookingId": booking,
                                "location": {"latitude": arg.get("latitude"), "longitude": arg.get("longitude")},
                                "timestamp": int(time.time() * 1000),
                                "sentAt": arg.get("sentAt"),
                            },
                        ]
                    )
                )
                for conn in members:
                    conn.t.write(out)
        elif event == "booking:track":
            room = "booking:" + str(arg)
            rooms.setdefault(room, set()).add(self)
            self.rooms.append(room)
            self.t.write(frame(b"43" + head + b"," + ack + orjson.dumps([{"ok": True, "bookingId": str(arg)}])))


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port, backlog=2048)
    async with server:
        while True:
            await asyncio.sleep(25)
            for conn in connections:
                conn.t.write(PING)


def compare(steps: str, pairs: int) -> None:
    """This server, Node socket.io and bare python-socketio under the anchors' load generator, one run."""
    anchors = Path(__file__).resolve().parents[2] / "shared" / "anchors"
    sys.path.insert(0, str(anchors))
    import run_bench

    original = run_bench.server_cmd

    def server_cmd(name: str, port: int) -> tuple[list[str], dict[str, str], str]:
        if name == "floor":
            return [sys.executable, __file__, "--port", str(port)], original("node", port)[1], str(anchors)
        return original(name, port)

    run_bench.server_cmd = server_cmd
    results = {
        name: run_bench.run_one("floor", name, steps, pairs=pairs, stop_on_fail=False)
        for name in ("floor", "node", "uvicorn_sansio")
    }
    print(
        json.dumps(
            {
                name: [(s["offered_rate"], s["server_cpu_pct"], s["delivered_ratio"]) for s in r["steps"]]
                for name, r in results.items()
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int)
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--steps", default="1000:15,2000:15,3000:15")
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()
    if args.compare:
        compare(args.steps, args.pairs)
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
