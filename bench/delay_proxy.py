"""A TCP proxy that delays every chunk by a fixed time, each way: a Redis that answers slowly.

    python bench/delay_proxy.py --delay-ms 20 --upstream 127.0.0.1:6379 --port 16379

``bench/run.py --redis-delay MS`` starts one in a thread and points the servers at it.
Order is kept per direction; throughput is not limited, only latency added (as a far or
overloaded Redis, or one behind a congested link, would be).
"""

import argparse
import asyncio
import threading
import time


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(forward())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, chunk))
    except OSError:
        pass
    queue.put_nowait((0.0, b""))
    await sender


async def serve(port: int, upstream: tuple[str, int], delay: float, started: threading.Event | None = None) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pump(client_reader, server_writer, delay),
            _pump(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    if started is not None:
        started.set()
    async with server:
        await server.serve_forever()


def start_in_thread(port: int, upstream: tuple[str, int], delay_ms: float) -> None:
    started = threading.Event()
    threading.Thread(target=lambda: asyncio.run(serve(port, upstream, delay_ms / 1000, started)), daemon=True).start()
    started.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay-ms", type=float, default=20)
    parser.add_argument("--upstream", default="127.0.0.1:6379")
    parser.add_argument("--port", type=int, default=16379)
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    asyncio.run(serve(args.port, (host, int(port)), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
