"""An operator upgrade over a one-pod managed Redis that an operator older than `redis.managed.replicas` made.

fixtures/managed_one_pod_4ce6b4f.json holds what the operator at 4ce6b4f (the last commit before issue 15) wrote for
three SyncClusters: its Secret and every object it applied (hack/pin_managed.py says how it was made). This operator,
started over those objects, must write none of them again: a changed Deployment would restart the Redis pod, and a
one-pod Redis without persistence loses every key when it restarts. It must keep the Secret's passwords too, and
only add the replication users to them once replicas are asked (growing from one pod is test_decide_ha's).
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from synchro import api
from synchro.reconcile import decide
from synchro.reconcile.model import ManagedSeen, SecretStep
from synchro.redis import managed

PINNED = json.loads((Path(__file__).parent / "fixtures" / "managed_one_pod_4ce6b4f.json").read_text())


def as_live(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server returns it: with the fields the server adds."""
    live = copy.deepcopy(obj)
    live["metadata"].update(resourceVersion="7", uid="live-" + obj["metadata"]["name"], generation=1)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
    if "stringData" in live:  # a Secret is stored with its values in data, base64-encoded
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in live.pop("stringData").items()}
        live["data"] = {**live.get("data", {}), **encoded}
    if obj["kind"] == "Deployment":
        live["status"] = {"observedGeneration": 1, "availableReplicas": 1, "readyReplicas": 1}
    return live


def upgraded(case: str) -> tuple[api.SyncClusterSpec, dict[str, Any], ManagedSeen]:
    pinned = PINNED[case]
    spec = api.parse("ns", "web", pinned["spec"])
    live = {(o["kind"], o["metadata"]["name"]): as_live(o) for o in pinned["objects"]}
    return spec, pinned["body"], ManagedSeen(as_live(pinned["secret"]), live)


def test_the_pin_covers_every_kind_a_one_pod_redis_has() -> None:
    kinds = {o["kind"] for case in PINNED.values() for o in case["objects"]}
    assert kinds == {"ConfigMap", "PersistentVolumeClaim", "Service", "NetworkPolicy", "PodDisruptionBudget",
                     "Deployment"}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PINNED))
def test_the_upgraded_operator_writes_nothing_to_a_one_pod_redis_an_older_one_made(case: str) -> None:
    spec, body, seen = upgraded(case)
    assert decide.managed_writes(spec, body, seen) == []
    assert decide.secret_step(spec, body, seen.secret, True, []) == (None, None)


@pytest.mark.parametrize("case", sorted(PINNED))
def test_its_redis_conf_is_the_one_the_older_operator_wrote(case: str) -> None:
    spec, _, _ = upgraded(case)
    [config] = [o for o in PINNED[case]["objects"] if o["kind"] == "ConfigMap"]
    assert config["data"]["redis.conf"] == managed.redis_conf(spec)  # and so is the hash of it on the pod template


def test_asking_replicas_of_it_later_keeps_its_passwords_and_adds_the_replication_users() -> None:
    pinned = PINNED["default"]
    raw = copy.deepcopy(pinned["spec"])
    raw["redis"]["managed"]["replicas"] = 3
    spec = api.parse("ns", "web", raw)
    step, _ = decide.secret_step(spec, pinned["body"], as_live(pinned["secret"]), True, [])
    assert step is not None and step.kind == SecretStep.HA_USERS
    kept = {managed.APP_USER: "synchro-app-password", managed.OPERATOR_USER: "synchro-operator-password"}
    assert step.passwords == kept  # act writes these back beside new ones for the replication users
