"""make ab A=<ref> B=<ref>: one change measured against another, alternated in one run on the same cluster.

Each ref is checked out into its own worktree (.cluster/ab/<sha>) and its operator runs from there, with the
venv of this checkout (the refs' requirements-runtime.txt are installed into it first). Each round starts the
side's operator afresh, makes one warm-up SyncCluster Ready, then creates CLUSTERS SyncClusters (8 clients at
once, each naming a ready 1-replica Deployment to run at 2) and waits for all of them Ready. It records the
wall time, the operator's CPU time over the burst (user + system, all threads) and its peak RSS. The sides run
A B B A A B ..., so a drift of the machine over the run weighs on both alike.

Writes bench/ab.json and prints a table. Nothing here is a test: it is how issue 18's changes were judged.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import bench as b

ROOT = b.ROOT
AB = ROOT / ".cluster" / "ab"
CLUSTERS = int(os.environ.get("CLUSTERS", "100"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
TICKS = os.sysconf("SC_CLK_TCK")


def worktree(ref: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = AB / sha.strip()[:12]
    if not path.exists():
        add = ["git", "worktree", "add", "--detach", str(path), ref]
        subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
    requirements = path / "requirements-runtime.txt"
    subprocess.run([str(ROOT / ".venv" / "bin" / "pip"), "install", "-q", "-r", str(requirements)], check=True)
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime, fields 14 and 15 of stat(5)


def start(source: Path) -> int:
    b.cluster_cmd("stop-operator")
    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "cluster.py"), "start-operator"],
        check=True,
        capture_output=True,
        env={**os.environ, "SYNCHRO_OPERATOR_SOURCE": str(source / "operator")},
    )
    return b.operator_pid()


def burst(source: Path) -> dict[str, float]:
    pid = start(source)
    ns = f"ab-{uuid.uuid4().hex[:5]}"
    b.core.create_namespace({"metadata": {"name": ns}})
    try:
        b.apps.create_namespaced_deployment(ns, b.deployment("warm-up"))
        b.create_sc(ns, b.sync_cluster("warm-up", "warm-up"))
        b.wait_until(lambda: b.condition(ns, "warm-up", "Ready") == "True")
        names = {f"k{i}" for i in range(CLUSTERS)}
        with b.watching(b.apps.list_namespaced_deployment, ns) as events:
            b.in_parallel(lambda i: b.apps.create_namespaced_deployment(ns, b.deployment(f"k{i}")), CLUSTERS)
            b.wait_all(events, names, lambda d: b.rolled(d, 1))
        cpu, t0 = cpu_seconds(pid), time.monotonic()
        with b.watching(b.custom_lister(ns), ns) as events:
            b.in_parallel(lambda i: b.create_sc(ns, b.sync_cluster(f"k{i}", f"k{i}", replicas=2)), CLUSTERS)
            b.wait_all(events, names, b.sc_ready)
        return {
            "ready_s": round(time.monotonic() - t0, 2),
            "cpu_s": round(cpu_seconds(pid) - cpu, 2),
            "rss_mb": round(b.operator_peak_rss_mb(), 1),
        }
    finally:
        b.delete_namespace_and_wait(ns)


def main() -> int:
    a, b_ref = os.environ.get("A", ""), os.environ.get("B", "")
    if not a or not b_ref:
        print(__doc__)
        return 2
    sides = {"A": worktree(a), "B": worktree(b_ref)}
    order = [("A", "B") if r % 2 == 0 else ("B", "A") for r in range(ROUNDS)]
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    try:
        for r, pair in enumerate(order):
            for side in pair:
                result = burst(sides[side])
                runs[side].append(result)
                b.log(f"round {r + 1}/{ROUNDS} {side}: {result}")
    finally:
        b.cluster_cmd("stop-operator")
        b.cluster_cmd("start-operator")  # this checkout's, as before
    medians = {side: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for side, rs in runs.items()}
    report: dict[str, Any] = {"A": a, "B": b_ref, "clusters": CLUSTERS, "rounds": ROUNDS, "runs": runs}
    report["medians"] = medians
    (ROOT / "bench" / "ab.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{CLUSTERS} SyncClusters to Ready, {ROUNDS} rounds each, alternated")
    print(f"{'':4}{'ready s':>24}{'operator CPU s':>28}{'peak RSS MB':>24}")
    for side in ("A", "B"):
        cells = ["/".join(f"{x[k]:g}" for x in runs[side]) for k in ("ready_s", "cpu_s", "rss_mb")]
        print(f"{side:4}" + "".join(f"{c:>26}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
