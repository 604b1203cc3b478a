"""make ab A=<ref> B=<ref>: one change measured against another, alternated in one run on the same cluster.

Each ref is checked out into its own worktree (.cluster/ab/<sha>) and its operator runs from there, with the
ref's own venv (hack/venv.sh: cached by its requirements, so ours when they did not change). Each round starts
the side's operator afresh, makes one warm-up SyncCluster Ready, then creates CLUSTERS SyncClusters (8 clients
at once, each naming a ready 1-replica Deployment to run at 2) and waits for all of them Ready. It records the
wall time, the operator's CPU time over the burst (user + system, all threads) and its peak RSS. The sides run
A B B A A B ..., so a drift of the machine over the run weighs on both alike.

Writes bench/ab.json and prints a table. Nothing here is a test: it is how issue 18's changes were judged.
PROFILE=1 also samples each burst with py-spy (`--gil`: the thread holding the GIL) and prints where the
operator's time went, by package; the raw stacks stay in .cluster/ab/profile-<side>-<round>.txt.
MEMORY=1 runs the operators under tracemalloc (bench/memprofile/sitecustomize.py) and keeps, per burst, where the
traced memory was allocated at the peak of RSS in .cluster/ab/memory-<side>-<round>.txt (the times then
measure a traced operator: compare memory only).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench as b

ROOT = b.ROOT
AB = ROOT / ".cluster" / "ab"
CLUSTERS = int(os.environ.get("CLUSTERS", "100"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PROFILE = os.environ.get("PROFILE") == "1"
MEMORY = os.environ.get("MEMORY") == "1"
# Where a sample's innermost frame lies, first match wins: the packages the operator spends its time in.
PACKAGES = [
    ("synchro", "/synchro/"),
    ("kopf", "/kopf/"),
    ("kubernetes client", "/kubernetes/"),
    ("aiohttp", "/aiohttp/"),
    ("urllib3", "/urllib3/"),
    ("json", "/json/"),
    ("logging", "/logging/"),
    ("asyncio", "/asyncio/"),
    ("ssl and sockets", "/ssl.py"),
    ("ssl and sockets", "/socket.py"),
    ("threads and queues", "/threading.py"),
    ("threads and queues", "/queue.py"),
    ("threads and queues", "/concurrent/"),
]
TICKS = os.sysconf("SC_CLK_TCK")


def worktree(ref: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = AB / sha.strip()[:12]
    if not path.exists():
        add = ["git", "worktree", "add", "--detach", str(path), ref]
        subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
    # The ref's own venv (cached by its requirements, so mostly ours): never an install into ours, which is shared.
    subprocess.run(["bash", str(ROOT / "hack" / "venv.sh"), str(path)], check=True, capture_output=True)
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime and stime, fields 14 and 15 of stat(5)


def start(source: Path, tag: str) -> int:
    b.cluster_cmd("stop-operator")
    path, env = str(source / "operator"), dict(os.environ)
    if MEMORY:  # the operator's PYTHONPATH gains the folder whose sitecustomize traces it
        path += os.pathsep + str(Path(__file__).parent / "memprofile")
        env["SYNCHRO_AB_MEMORY"] = str(AB / f"memory-{tag}.txt")
    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "cluster.py"), "start-operator"],
        check=True,
        capture_output=True,
        env={
            **env,
            "SYNCHRO_OPERATOR_SOURCE": path,
            "SYNCHRO_OPERATOR_PYTHON": str(source / ".venv" / "bin" / "python"),
        },
    )
    return b.operator_pid()


@contextmanager
def sampled(pid: int, out: Path) -> Iterator[None]:
    """py-spy samples the operator while the block runs (nothing when PROFILE is not set)."""
    if not PROFILE:
        yield
        return
    spy = ROOT / ".venv" / "bin" / "py-spy"
    cmd = [str(spy), "record", "--pid", str(pid), "--gil", "--rate", "200", "--format", "raw", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        proc.wait(timeout=60)


def by_package(raw: Path) -> dict[str, float]:
    """Share of the samples by the package of their innermost frame ("other" for the rest)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        found = re.search(r"\((.*?):\d+\)", leaf)
        path = "/" + found[1] if found else ""  # py-spy names files from their package: kopf/_core/...
        counts[next((name for name, part in PACKAGES if part in path), "other")] += int(n)
    total = sum(counts.values()) or 1
    return {name: round(100 * n / total, 1) for name, n in counts.most_common()}


def burst(source: Path, tag: str) -> dict[str, Any]:
    pid = start(source, tag)
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
        profile = AB / f"profile-{tag}.txt"
        cpu, t0 = cpu_seconds(pid), time.monotonic()
        with sampled(pid, profile), b.watching(b.custom_lister(ns), ns) as events:
            b.in_parallel(lambda i: b.create_sc(ns, b.sync_cluster(f"k{i}", f"k{i}", replicas=2)), CLUSTERS)
            b.wait_all(events, names, b.sc_ready)
        result: dict[str, Any] = {
            "ready_s": round(time.monotonic() - t0, 2),
            "cpu_s": round(cpu_seconds(pid) - cpu, 2),
            "rss_mb": round(b.operator_peak_rss_mb(), 1),
        }
        if PROFILE:
            result["profile_percent"] = by_package(profile)
        return result
    finally:
        b.delete_namespace_and_wait(ns)


def main() -> int:
    a, b_ref = os.environ.get("A", ""), os.environ.get("B", "")
    if not a or not b_ref:
        print(__doc__)
        return 2
    sides = {"A": worktree(a), "B": worktree(b_ref)}
    order = [("A", "B") if r % 2 == 0 else ("B", "A") for r in range(ROUNDS)]
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    try:
        for r, pair in enumerate(order):
            for side in pair:
                result = burst(sides[side], f"{side}-{r + 1}")
                runs[side].append(result)
                b.log(f"round {r + 1}/{ROUNDS} {side}: {result}")
    finally:
        b.cluster_cmd("stop-operator")
        b.cluster_cmd("start-operator")  # this checkout's, as before
    keys = ("ready_s", "cpu_s", "rss_mb")
    medians = {side: {k: statistics.median(x[k] for x in rs) for k in keys} for side, rs in runs.items()}
    report: dict[str, Any] = {"A": a, "B": b_ref, "clusters": CLUSTERS, "rounds": ROUNDS, "runs": runs}
    report["medians"] = medians
    (ROOT / "bench" / "ab.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{CLUSTERS} SyncClusters to Ready, {ROUNDS} rounds each, alternated")
    print(f"{'':4}{'ready s':>24}{'operator CPU s':>28}{'peak RSS MB':>24}")
    for side in ("A", "B"):
        cells = ["/".join(f"{x[k]:g}" for x in runs[side]) for k in keys]
        print(f"{side:4}" + "".join(f"{c:>26}" for c in cells))
    for side in ("A", "B") if PROFILE else ():
        for r, run in enumerate(runs[side]):
            print(f"{side} round {r + 1}, % of samples by package:", run["profile_percent"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
