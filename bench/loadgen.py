"""What every Python load generator in ``bench/`` does before its timed loop.

A generator is a Python process too: it imports the project (to build its requests) and holds
~160,000 objects, so a full garbage collection in it takes 50-70 ms here. While it runs, every
request due is sent late, and an open loop counts that delay (from when the request was due) as
the server's latency. Measured with ``bench_exchange.py``: one such pause about 3 s into the
loop made the run's p99 30-45 ms and its max ~100 ms while the server's own requests stayed
under 20 ms (gc.callbacks in both processes; the server's heap is frozen at start-up as
``pingtai serve`` does, libs.common.app.freeze_startup_heap).
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect once and freeze what the generator holds before its timed loop (the objects
    its loop then makes are few and short-lived; young collections stay ~0.1 ms)."""
    gc.collect()
    gc.freeze()
