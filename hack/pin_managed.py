#!/usr/bin/env python3
"""Print what an operator writes for a one-pod managed Redis, as JSON, to pin it across versions.

Run it against the operator package of the version to pin (its `operator/` on PYTHONPATH). The pinned file
tests/unit/fixtures/managed_one_pod_4ce6b4f.json was made from the last commit before `redis.managed.replicas`
(issue 15), so test_upgrade_one_pod checks that this operator, started over a one-pod Redis an older one made,
writes nothing to it (no Deployment change, so no restart and no lost key):

    git worktree add /tmp/pin 4ce6b4f
    PYTHONPATH=/tmp/pin/operator python hack/pin_managed.py > tests/unit/fixtures/managed_one_pod_4ce6b4f.json

Only APIs present in both versions are used: api.parse, managed.secret, decide.managed_writes, ManagedSeen(secret).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from synchro import api
from synchro.reconcile import decide
from synchro.reconcile.model import ManagedSeen
from synchro.redis import managed

TARGETS = [{"kind": "Deployment", "name": "app", "preset": "directus"}]
CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "persistent": {
        "image": "redis:7.2",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "persistence": {"enabled": True, "size": "1Gi", "storageClassName": "fast"},
    },
    "no-auth": {"auth": False},
}


def pin(case: str, managed_spec: dict[str, Any]) -> dict[str, Any]:
    raw = {"redis": {"mode": "Managed", "managed": managed_spec}, "targets": TARGETS}
    spec = api.parse("ns", "web", raw)
    body = {
        "apiVersion": f"{api.GROUP}/v1alpha1",
        "kind": "SyncCluster",
        "metadata": {"name": "web", "namespace": "ns", "uid": f"uid-{case}"},
        "spec": raw,
    }
    passwords = {user: f"{user}-password" for user in managed.PASSWORD_KEYS}
    secret = managed.secret(spec, passwords)
    writes = decide.managed_writes(spec, body, ManagedSeen(secret))
    return {"spec": raw, "body": body, "secret": secret, "objects": [write.obj for write in writes]}


if __name__ == "__main__":
    json.dump({case: pin(case, spec) for case, spec in CASES.items()}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
