"""A namespace deleted while no operator runs (issue 17, item 6): its SyncClusters' finalizer holds it in
Terminating, and `synchro release NAME -n NS` (also `kubectl synchro release`) does the operator's deletion work
and removes the finalizer, so the namespace goes."""

from __future__ import annotations

import os
import subprocess

import pytest
from kit import ROOT, Env, app, cluster_cmd, sync_cluster
from kubernetes.client.rest import ApiException
from timeouts import TIMEOUTS

from poll import wait_for

pytestmark = pytest.mark.integration


def finalizers_hold(env: Env) -> bool:
    """The namespace controller reports that only finalizers keep the namespace: ours, on the SyncCluster."""
    conditions = env.core.read_namespace(env.ns).status.conditions or []
    return any(
        c.type == "NamespaceFinalizersRemaining" and c.status == "True" and "synchro.dev/finalizer" in c.message
        for c in conditions
    )


def gone(env: Env) -> bool:
    try:
        env.core.read_namespace(env.ns)
    except ApiException as e:
        return e.status == 404
    return False


def test_a_namespace_deleted_while_no_operator_runs_leaves_terminating_with_synchro_release(env: Env) -> None:
    env.create(app("web"))
    env.create(sync_cluster("web", [{"name": "web", "preset": "generic"}]))
    env.wait_condition("web", "Ready", "True")
    cluster_cmd("stop-operator")
    try:
        env.core.delete_namespace(env.ns)
        held = "the namespace held by the SyncCluster's finalizer"
        wait_for(lambda: finalizers_hold(env), held, TIMEOUTS.release_held)
        assert not gone(env)
        released = subprocess.run(
            [str(ROOT / "hack" / "kubectl-synchro"), "release", "web", "-n", env.ns],
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": str(ROOT / ".cluster" / "kubeconfig")},
        )
        assert released.returncode == 0, released.stderr
        assert "released" in released.stdout
        wait_for(lambda: gone(env), "the namespace gone", TIMEOUTS.release_gone)
    finally:
        cluster_cmd("start-operator", "--as-service-account")
