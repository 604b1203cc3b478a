"""Other writers on Synchro's targets: a GitOps tool re-applying the user's manifest, and a person's `kubectl edit`.

Synchro owns only the fields it applies (field manager `synchro`). A manifest that leaves those fields out, as the
docs ask (no `replicas`, no injected env), can be re-applied forever, by server-side or client-side apply, without
a tug of war: no field flips, no rollout. A field someone removes by hand comes back on the next pass.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest
import yaml
from kit import KUBECTL, ROOT, Env, app, sync_cluster

from poll import wait_for

pytestmark = pytest.mark.integration

REAPPLY_EVERY_S = 5.0
REAPPLY_FOR_S = 120.0  # issue 17: every 5 s for 2 minutes
RESTORED_WITHIN_S = 10.0  # one pass: a watch event wakes it at once


def kubectl(env: Env, *args: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", "-n", env.ns, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(extra or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def manifest(name: str) -> dict[str, Any]:
    """What a user keeps in Git: the Deployment without `replicas` and without anything Synchro injects."""
    deployment = app(name, [{"name": "PUBLIC_URL", "value": "https://example"}])
    del deployment["spec"]["replicas"]
    return deployment


def injected_state(env: Env, name: str) -> tuple[dict[str, Any], int | None, str]:
    d = env.deployment(name)
    values = {e.name: e.value for e in d.spec.template.spec.containers[0].env or []}
    return values, d.spec.replicas, d.spec.template.metadata.annotations["synchro.dev/config-hash"]


def wait_ready(env: Env, name: str, replicas: int) -> None:
    wait_for(lambda: env.deployment(name).status.ready_replicas == replicas, f"{name} at {replicas} ready replicas")


def test_a_gitops_tool_reapplying_the_manifest_fights_nothing(env: Env) -> None:
    ssa, csa = manifest("argo"), manifest("plain")
    kubectl(env, "apply", "--server-side", "--field-manager=argocd", "-f", "-", stdin=yaml.safe_dump(ssa))
    kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(csa))
    for name in ("argo", "plain"):
        env.create(sync_cluster(name, [{"name": name, "preset": "generic"}], replicas=3))
    for name in ("argo", "plain"):
        env.wait_condition(name, "Ready", "True")
        wait_ready(env, name, 3)
    settled = {name: injected_state(env, name) for name in ("argo", "plain")}
    replica_sets = {name: {rs.metadata.name for rs in env.replica_sets(name)} for name in ("argo", "plain")}
    assert "REDIS_URL" in settled["argo"][0] and settled["argo"][1] == 3

    deadline = time.monotonic() + REAPPLY_FOR_S
    rounds = 0
    while time.monotonic() < deadline:
        kubectl(
            env,
            "apply",
            "--server-side",
            "--field-manager=argocd",
            "--force-conflicts",
            "-f",
            "-",
            stdin=yaml.safe_dump(ssa),
        )
        kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(csa))
        rounds += 1
        for name in ("argo", "plain"):  # no field flips, not even for a moment between two passes
            assert injected_state(env, name) == settled[name], f"{name} changed after {rounds} re-applies"
        time.sleep(REAPPLY_EVERY_S)

    for name in ("argo", "plain"):
        assert {rs.metadata.name for rs in env.replica_sets(name)} == replica_sets[name], f"{name} rolled"
        assert env.condition(name, "Ready")["status"] == "True"  # type: ignore[index]
    assert rounds >= REAPPLY_FOR_S / REAPPLY_EVERY_S / 2  # the loop really re-applied, many times


def test_an_injected_variable_deleted_with_kubectl_edit_comes_back_in_one_pass(env: Env) -> None:
    env.create(app("edited"))
    env.create(sync_cluster("edited", [{"name": "edited", "preset": "generic"}], replicas=2))
    env.wait_condition("edited", "Ready", "True")
    before, replicas, config_hash = injected_state(env, "edited")
    assert "REDIS_URL" in before
    replica_sets = {rs.metadata.name for rs in env.replica_sets("edited")}
    generation = env.deployment("edited").metadata.generation

    # The real `kubectl edit`, with an editor that deletes the variable's two lines (name, value).
    kubectl(env, "edit", "deployment", "edited", extra={"KUBE_EDITOR": "sed -i -e '/- name: REDIS_URL/,+1d'"})
    wait_for(
        lambda: injected_state(env, "edited") == (before, replicas, config_hash),
        "REDIS_URL restored",
        RESTORED_WITHIN_S,
    )

    # Two writes of the spec, the edit's and Synchro's (none more), and the restore brings back the template of
    # before, so its ReplicaSet: at most the edit's own is new.
    assert env.deployment("edited").metadata.generation == generation + 2
    env.wait_condition("edited", "Ready", "True")
    wait_ready(env, "edited", 2)
    after = {rs.metadata.name for rs in env.replica_sets("edited")}
    assert replica_sets <= after and len(after - replica_sets) <= 1
