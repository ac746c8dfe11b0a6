"""Process tuning for a long-lived socket server.

CPython's cyclic collector walks every tracked object in a full collection;
with thousands of sockets that is hundreds of milliseconds of a stalled event
loop. Objects alive after start-up (Django, the URLconf, models) are moved out
of its reach with ``gc.freeze()``, and the young-generation threshold is raised
so collections run less often.
"""

import gc
import os


def tune_gc_after_startup() -> None:
    if os.environ.get("GC_TUNING", "1") == "0":
        return
    gc.collect()
    gc.freeze()
    gen0 = int(os.environ.get("GC_THRESHOLD0", "50000"))
    gc.set_threshold(gen0, 50, 100)
