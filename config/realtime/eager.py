"""A client's event handled where its frame is read, not after a wake-up of the socket's reading task.

Each frame the reading task awaits (``config.realtime.reading``) costs, between the protocol's
``data_received`` and the handler: a future's result, a task step scheduled for the next pass of
the loop, seven nested awaits resumed, reads paused and resumed, and a new future for the next
frame: about a tenth of a relayed location's CPU (issue 34). When that task waits for a frame and
nothing is queued ahead, ``EagerFrames`` runs a Socket.IO event packet's handler right there, on
behalf of the task: the technique of Python 3.12's eager tasks (``asyncio.eager_task_factory``).
The handler's coroutine takes its first step at once, with the reading task as the current task
and in the socket's own context; a handler that awaits nothing slow (a relayed location: rights
on the session, the room emit, the ack) ends in that step. One that suspends is handed to the
reading task (``Suspended``), which finishes it before it reads the socket's next frame: a
socket's packets are still handled one at a time, in order, and a cancellation of the reading
task (a stop) reaches the handler as before (the idle bound is off while a handler runs).

That context is a copy of the reading task's, taken when it starts reading: a frame the reading
task handles itself (queued behind another) runs in the task's own. So no context variable may
carry state from one packet of a socket to the next (``inbound.ACK_WANTED`` and ``EVENT_SESSION``
are set for each event).

Only ``EVENT`` packets (``42``...) are taken: connects, acks, disconnects and Engine.IO packets
(pings, the upgrade) keep the reading task's way. A read full of frames is handled in two slices:
its first ``EAGER_PER_READ`` here, the rest queued for the reading task, whose next step comes
after the callbacks the loop already has ready (other sockets' reads) and then drains the queue
in one go unless a handler suspends (a get of a queued item does not yield), as it drained a
whole read before: one client's burst gives the others one turn in between, not one a frame.
"""

import asyncio
import contextvars

# What a Task does around each of its steps (asyncio's C functions, as eager tasks use them).
from asyncio.tasks import _enter_task, _leave_task  # type: ignore[attr-defined]
from collections.abc import Coroutine, Generator
from typing import Any

# Frames of one read handled in ``data_received``; the rest go to the reading task's next step.
EAGER_PER_READ = 16


class Suspended:
    """A handler's coroutine that suspended in its eager step: awaited by the reading task, it
    waits for what the coroutine waits for and steps it on, in the socket's context.

    ``thrown``: a cancellation of the reading task that came before it took this handler (the
    handler's own timeout, a stop), delivered to the handler first, as a Task's step would."""

    __slots__ = ("context", "coro", "thrown", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any, context: contextvars.Context) -> None:
        self.coro, self.waiting, self.context = coro, waiting, context
        self.thrown: BaseException | None = None

    def __await__(self) -> Generator[Any, None, None]:
        send, throw, run = self.coro.send, self.coro.throw, self.context.run
        waiting, step, arg = self.waiting, None, self.thrown
        if arg is not None:
            if isinstance(waiting, asyncio.Future):
                waiting.cancel()  # as Task.cancel cancels the future its coroutine waits for
            step = throw
        while True:
            if step is None:
                try:
                    yield waiting  # to the reading task's step, as the coroutine yielded it
                except BaseException as exc:  # the reading task was cancelled meanwhile: the coroutine's to handle
                    step, arg = throw, exc
                else:
                    step, arg = send, None
            try:
                waiting = run(step, arg)
            except StopIteration:
                return
            step = None


class EagerFrames:
    """The reading task's taker of text frames, while it waits for one (``WebSocketProtocol.take_text``)."""

    __slots__ = ("context", "handed", "handler", "idle", "limit", "logger", "loop", "sid", "task")

    def __init__(self, sid: str, server: Any, idle: Any) -> None:
        """For the socket ``sid`` of engineio's ``server``, whose reading task (the current one)
        measures its silences with ``idle`` (a ``reading.IdleBound``)."""
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.context = contextvars.copy_context()  # the task's values, in a context of the socket's own
        self.sid, self.idle = sid, idle
        self.handler, self.limit, self.logger = server.handlers["message"], server.max_http_buffer_size, server.logger
        # The ``Suspended`` last handed to the reading task, until it takes it (``claim``).
        self.handed: Suspended | None = None

    def __call__(self, text: str) -> str | Suspended | None:
        """``None``: handled; a ``Suspended`` handler or the text itself: for the reading task, in order."""
        if text[:2] != "42" or len(text) > self.limit:
            return text  # another packet, or one the reading task refuses (and closes the socket for)
        self.idle.since = self.loop.time()  # a frame came: the silence the idle bound measures starts again
        try:
            _enter_task(self.loop, self.task)
        except RuntimeError:  # a task is running: this is no callback of the loop's
            return text
        try:
            coro = self.handler(self.sid, text[1:])
            try:
                waiting = self.context.run(coro.send, None)
            except StopIteration:
                return None
            self.handed = Suspended(coro, waiting, self.context)
            return self.handed
        except asyncio.CancelledError:  # as the reading task's ``_message`` does
            return None
        except Exception:
            self.logger.exception("message async handler error")
            return None
        finally:
            _leave_task(self.loop, self.task)

    def claim(self, suspended: Suspended) -> bool:
        """Whether the reading task is to finish ``suspended``: the handler handed to it and not
        taken yet. It may reach the task twice: through a cancellation of the task's wait that came
        first, and from the queue, where a wait cancelled in the handler's own step left it."""
        if suspended is not self.handed:
            return False
        self.handed = None
        return True
