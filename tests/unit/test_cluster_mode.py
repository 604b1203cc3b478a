"""hack/cluster.py keeps a running cluster's mode: `up` without NODE (the tests' session fixture, `make test-apps`)
restarting a dead kube-apiserver of a real-node cluster must bind it beyond loopback again, or pods lose the API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cluster


def test_node_mode_prefers_the_asked_then_the_recorded_mode() -> None:
    assert cluster.node_mode("real", None) == "real"
    assert cluster.node_mode(None, "real\n") == "real"
    assert cluster.node_mode("", "real\n") == "real"  # make passes NODE= when unset
    assert cluster.node_mode("kwok", "real\n") == "kwok"
    assert cluster.node_mode(None, None) == "kwok"


def test_api_bind_follows_the_mode() -> None:
    assert cluster.api_bind("real") == "0.0.0.0"
    assert cluster.api_bind("kwok") == "127.0.0.1"
    assert cluster.api_bind("kwok", "10.0.0.1") == "10.0.0.1"


def bind_of_a_copy(tmp_path: Path, recorded: str | None) -> str:
    """cluster.py copied into a tree of its own (so it reads that tree's .cluster/mode), asked for its bind."""
    (tmp_path / "hack").mkdir()
    shutil.copy(Path(cluster.__file__), tmp_path / "hack" / "cluster.py")
    if recorded is not None:
        (tmp_path / ".cluster").mkdir()
        (tmp_path / ".cluster" / "mode").write_text(recorded + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NODE", "SYNCHRO_API_BIND")}
    out = subprocess.run(
        [sys.executable, "-c", "import cluster; print(cluster.API_BIND)"],
        cwd=tmp_path / "hack",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_a_restart_without_node_keeps_a_real_clusters_bind(tmp_path: Path) -> None:
    assert bind_of_a_copy(tmp_path, "real") == "0.0.0.0"


def test_a_cluster_with_no_recorded_mode_stays_on_loopback(tmp_path: Path) -> None:
    assert bind_of_a_copy(tmp_path, None) == "127.0.0.1"
