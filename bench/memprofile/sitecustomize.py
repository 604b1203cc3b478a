"""make ab MEMORY=1: loaded by the operator's Python at start-up (bench/ab.py puts this folder on its PYTHONPATH),
never by an installed operator. It traces allocations and, each time the process's RSS reaches a new peak
(checked every 5 s), writes where the traced memory was allocated to $SYNCHRO_AB_MEMORY."""

from __future__ import annotations

import os
import re
import threading
import time
import tracemalloc

OUT = os.environ.get("SYNCHRO_AB_MEMORY")


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        found = re.search(r"VmRSS:\s+(\d+)", status.read())
    return int(found[1]) if found else 0


def watch(out: str) -> None:
    peak = 0
    while True:
        time.sleep(5)
        rss = rss_kb()
        if rss <= peak:
            continue
        peak = rss
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        traced = sum(s.size for s in snapshot.statistics("filename"))
        lines = [f"rss_mb {rss / 1024:.1f} traced_mb {traced / 2**20:.1f}"]
        for stat in snapshot.statistics("traceback")[:40]:
            frames = " <- ".join(f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in stat.traceback)
            lines.append(f"{stat.size / 2**20:8.2f} MB {stat.count:8d} blocks  {frames}")
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")


if OUT:
    tracemalloc.start(6)
    threading.Thread(target=watch, args=(OUT,), daemon=True, name="memprofile").start()
