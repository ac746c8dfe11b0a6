"""An idle Engine.IO socket's two waits, each on a timer rather than on a coroutine of its own, and the
server's watch over its sockets' pings in one pass, not a wait per socket (issue 34).

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

engineio's service task looks at one socket at a time, ``ping_timeout / len(sockets)`` apart: with
2,000 sockets a hundred wake-ups a second, each an ``asyncio.wait_for`` (a task, a timer, a
cancellation waited for), about 10 ms of CPU a second with nothing to do (docs/performance.md,
"Seventh pass"). ``SweptTimeouts`` looks at them all at once, every ``ping_timeout``: each socket
is still looked at once a ``ping_timeout``, so an unanswered ping is found as late as before at
the most, and handled as engineio handles it.
"""

import asyncio
import contextlib
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
            asyncio.get_running_loop().call_later(self.server.ping_interval, self._ping_due)

    def _ping_due(self) -> None:
        """The ping queued by the timer itself where ``send`` could only queue it (its writer waits on
        an empty queue, nothing closes the socket): no task a ping, 80 a second for 2,000 sockets.
        Anything else goes engineio's way, in a task (``_send_ping``)."""
        if self.closing or self.closed:
            return
        if not self.dropped and self.queue.awaited():
            self.last_ping = time.time()
            self.queue.put_nowait(packet.Packet(packet.PING))
        else:
            self.server.start_background_task(self._send_ping)

    async def _send_ping(self) -> None:
        """engineio's, less its sleep (``schedule_ping``'s timer waited)."""
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            await self.send(packet.Packet(packet.PING))


class SweptTimeouts:
    """``AsyncServer._service_task``: every ``ping_timeout``, closed sockets forgotten and those
    whose ping went unanswered for ``ping_timeout`` closed (``check_ping_timeout``), in one pass."""

    async def _service_task(self) -> None:
        """engineio's, one pass over the sockets a ``ping_timeout``, not a wait for each socket."""
        self.service_task_event = event = self.create_event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self.ping_timeout)
                return  # engineio's shutdown() sets the event
            for sid, socket in list(self.sockets.items()):
                if socket.closed:
                    if self.sockets.get(sid) is socket:
                        del self.sockets[sid]
                elif socket.last_ping and not socket.closing:  # a ping waits for its pong (a few at a time)
                    # engineio's rule, on the clock as the socket's turn comes: a close before it in the
                    # pass (its disconnect handlers) may take a while, and the pass's start would be stale.
                    try:
                        await socket.check_ping_timeout()  # closes it when overdue, as engineio's pass does
                    except Exception:
                        self.logger.exception("service task exception")
