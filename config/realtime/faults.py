"""``/faults``: a namespace whose handlers fail on purpose, registered only under ``TEST_FAULTS=1``.

The test suite's log check (tests/conftest.py) must fail a test whose server logged a
traceback; this namespace is how the suite proves that for every kind of server it starts.
Production refuses ``TEST_FAULTS`` (``PRODUCTION_PROBLEMS``). No token is asked: it serves a
test's loopback server only.
"""

import asyncio

import socketio

NAMESPACE = "/faults"
MESSAGE = "a fault raised on purpose (TEST_FAULTS)"


class FaultsNamespace(socketio.AsyncNamespace):
    async def on_raise(self, sid: str, data: object = None) -> None:
        """Raise in the handler: python-engineio logs the traceback."""
        raise RuntimeError(f"{MESSAGE}: {data}")

    async def on_raise_later(self, sid: str, delay: object = 0.05) -> str:
        """Answer at once, then raise in a task ``delay`` seconds later: a late traceback."""

        async def fail() -> None:
            await asyncio.sleep(float(delay))  # type: ignore[arg-type]
            raise RuntimeError(f"{MESSAGE}, late")

        task = asyncio.get_running_loop().create_task(fail())
        task.add_done_callback(_log_failure)
        return "ok"


def _log_failure(task: asyncio.Task) -> None:
    import logging

    if not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).error("%s, late", MESSAGE, exc_info=task.exception())


def register(sio: socketio.AsyncServer) -> None:
    if NAMESPACE not in sio.namespace_handlers:
        sio.register_namespace(FaultsNamespace(NAMESPACE))
