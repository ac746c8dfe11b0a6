"""An idle Engine.IO socket's two waits, each on a timer rather than on a coroutine of its own (issue 34).

python-engineio 4 waits for a socket's next ping in a task of its own, asleep for
``ping_interval`` (the task, two coroutines, the sleep's future and a context: ~1 KiB a socket,
held by every idle connection), and bounds its writer's wait for a packet with
``asyncio.wait_for`` (a coroutine, a future and a partial more). Here a timer waits for the
ping, whose task lives only as long as the send, and the bound's timer cancels the send queue's
future itself: the queue is a ``primitives.Mailbox``, whose ``get()`` returns a future.

The pings go at the same times, a closed socket is sent none, and the writer gives up at the
same bound with the same ``QueueEmpty`` (``tests/realtime/test_idle_socket.py`` passes against
engineio's own methods too, but for its count of tasks). Mixed into ``config.realtime.engine.Socket``;
written so that it could replace ``AsyncSocket.schedule_ping``, ``_send_ping`` and, with a queue
whose ``get()`` is a future, ``poll`` upstream.
"""

import asyncio
import time
from typing import Any

from engineio import exceptions, packet


class TimedWaits:
    """``AsyncSocket.poll``, ``schedule_ping`` and ``_send_ping``, the waits on timers."""

    async def poll(self) -> list[Any]:
        """engineio's, its wait for a packet bounded by a timer that cancels the queue's future."""
        server = self.server
        future = self.queue.get()
        timer = asyncio.get_running_loop().call_later(server.ping_interval + server.ping_timeout, future.cancel)
        try:
            packets = [await future]
        except asyncio.CancelledError:  # the bound, or the writer cancelled: engineio's QueueEmpty either way
            raise exceptions.QueueEmpty() from None
        finally:
            timer.cancel()
        self.queue.task_done()
        if packets == [None]:
            return []
        while True:
            try:
                pkt = self.queue.get_nowait()
                self.queue.task_done()
                if pkt is None:
                    self.queue.put_nowait(None)
                    break
                packets.append(pkt)
            except asyncio.QueueEmpty:
                break
        return packets

    def schedule_ping(self) -> None:
        """engineio's, but a timer waits ``ping_interval``, not a task of its own asleep."""
        if self.last_ping:
            self.last_ping = None
            server = self.server
            asyncio.get_running_loop().call_later(server.ping_interval, server.start_background_task, self._send_ping)

    async def _send_ping(self) -> None:
        """engineio's, less its sleep (``schedule_ping``'s timer waited)."""
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            await self.send(packet.Packet(packet.PING))
