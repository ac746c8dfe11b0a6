"""Process tuning for a long-lived socket server.

CPython's cyclic collector walks every tracked object in a full collection;
with thousands of sockets that is hundreds of milliseconds of a stalled event
loop. Objects alive after start-up (Django, the URLconf, models) are moved out
of its reach with ``gc.freeze()``, and the young-generation threshold is raised
so collections run less often.

ORM calls run in a few threads beside the event loop. With CPython's default
5 ms GIL switch interval, a thread that waits for PostgreSQL and wants the GIL
back can wait 5 ms per round trip behind the loop (and the loop behind it): a
shorter interval trades a little switching overhead for much shorter waits.
"""

import gc
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.realtime.manager import ChannelLayerManager


def tune_gc_after_startup() -> None:
    from config.metrics import watch_gc

    watch_gc()  # GC pauses are a metric whether or not the collector is tuned
    if os.environ.get("GC_TUNING", "1") == "0":
        return
    gc.collect()
    gc.freeze()
    gen0 = int(os.environ.get("GC_THRESHOLD0", "50000"))
    gc.set_threshold(gen0, 50, 100)
    sys.setswitchinterval(float(os.environ.get("GIL_SWITCH_INTERVAL", "0.0005")))


class LoopDiagnostics:
    """Opt-in (``LOOP_DIAGNOSTICS=1``): log event-loop stalls and cyclic-GC pauses.

    How the benchmark's tail was traced to its causes; cheap enough to leave on
    in production while chasing a latency problem.
    """

    def __init__(self, stall_ms: float = 40.0) -> None:
        import logging

        self.logger = logging.getLogger("config.realtime.diagnostics")
        self.stall_ms = stall_ms
        self._gc_start = 0.0
        self.gc_pauses: list[tuple[int, float]] = []

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        import time

        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        pause = (time.perf_counter() - self._gc_start) * 1000
        if pause >= self.stall_ms / 4:
            self.logger.warning("gc gen%d pause %.1f ms (collected %d)", info["generation"], pause, info["collected"])

    async def watch_loop(self) -> None:
        import asyncio
        import time

        interval = 0.05
        while True:
            start = time.perf_counter()
            await asyncio.sleep(interval)
            late = (time.perf_counter() - start - interval) * 1000
            if late >= self.stall_ms:
                self.logger.warning("event loop stalled %.1f ms (gc counts %s)", late, gc.get_count())


def diagnostics_enabled() -> bool:
    return os.environ.get("LOOP_DIAGNOSTICS") == "1"


def start_loop_diagnostics(manager: "ChannelLayerManager") -> None:
    """A startup hook: GC pauses logged from now on, and the loop watched (``LoopDiagnostics``)."""
    diagnostics = LoopDiagnostics()
    diagnostics.install()
    manager.start_task(diagnostics.watch_loop())
