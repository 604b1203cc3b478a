"""Pure: what Synchro wants a target workload to look like, and whether the live object already does.

Synchro writes targets with server-side apply under its own field manager, so it owns exactly the
fields in `desired_apply()`: its env entries, one pod-template annotation and label, one workload
annotation and spec.replicas. A user's own env var is never overwritten: if the user already set a
variable Synchro would inject, the user's value wins and the variable is reported as kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synchro import api
from synchro.api import Obj
from synchro.conditions import Reason
from synchro.presets import EnvVar
from synchro.probe.protocol import CONTAINER as PROBE_CONTAINER


def config_hash(
    env_by_container: Mapping[str, Sequence[EnvVar]], secret_version: str, sidecar: Mapping[str, Any] | None = None
) -> str:
    """A short, stable digest of everything a pod must be restarted for."""
    payload = json.dumps({"env": env_by_container, "secret": secret_version, "sidecar": sidecar}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def secret_version(uid: str, data: Mapping[str, str] | None, key: str) -> str:
    """The content version of one Secret key: changes exactly when the value does (not on metadata edits)."""
    value = (data or {}).get(key)
    if value is None:
        return ""
    return hashlib.sha256(f"{uid}/{value}".encode()).hexdigest()[:16]


def containers_of(workload: Obj) -> list[str]:
    """The app's containers: every container but the probe sidecar Synchro adds."""
    containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return [c["name"] for c in containers if c["name"] != PROBE_CONTAINER]


def _env_of(workload: Obj, container: str) -> list[Obj]:
    for c in workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if c["name"] == container:
            return list(c.get("env") or [])
    return []


def owned_env_names(workload: Obj, container: str, manager: str = api.FIELD_MANAGER) -> set[str]:
    """Env names of `container` that `manager` owns by apply, read from managedFields."""
    key = "k:" + json.dumps({"name": container}, separators=(",", ":"))
    names: set[str] = set()
    for entry in workload.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        fields = entry.get("fieldsV1", {})
        for step in ("f:spec", "f:template", "f:spec", "f:containers", key, "f:env"):
            fields = fields.get(step, {})
        for k in fields:
            if k.startswith("k:"):
                names.add(json.loads(k[2:])["name"])
    return names


def _synchros_managed_fields(meta: Obj) -> list[Obj]:
    return [e for e in meta.get("managedFields") or [] if e.get("manager") == api.FIELD_MANAGER]


def slim(workload: Obj) -> dict[str, Any]:
    """What a pass reads of a workload, for keeping in memory: everything but the other managers' managedFields,
    which are most of a Deployment's bulk and which nothing here reads."""
    meta = dict(workload.get("metadata") or {})
    meta["managedFields"] = _synchros_managed_fields(meta)
    return {
        "apiVersion": workload.get("apiVersion"),
        "kind": workload.get("kind"),
        "metadata": meta,
        "spec": workload.get("spec") or {},
        "status": workload.get("status") or {},
    }


def compact(workload: Obj) -> dict[str, Any]:
    """A workload nobody claimed yet, kept in memory for the first pass that claims it: container and env names,
    Synchro's own managedFields, the pod-template annotations and the rollout status. That is all a first pass
    reads, at a fraction of `slim`'s size, so every workload in the cluster can be cached. Without the claim
    annotation `is_applied` is False for it anyway: the pass that claims it always applies."""
    meta = workload.get("metadata") or {}
    spec = workload.get("spec") or {}
    template = spec.get("template") or {}
    containers = [
        {"name": c["name"], "env": [{"name": e["name"]} for e in c.get("env") or []]}
        for c in (template.get("spec") or {}).get("containers") or []
    ]
    return {
        "apiVersion": workload.get("apiVersion"),
        "kind": workload.get("kind"),
        "metadata": {
            **{k: meta[k] for k in ("name", "namespace", "resourceVersion", "generation", "annotations") if k in meta},
            "managedFields": _synchros_managed_fields(meta),
        },
        "spec": {
            "replicas": spec.get("replicas"),
            "template": {
                "metadata": {"annotations": (template.get("metadata") or {}).get("annotations") or {}},
                "spec": {"containers": containers},
            },
        },
        "status": workload.get("status") or {},
    }


def user_env_names(workload: Obj, container: str) -> set[str]:
    """Env names in the live container that somebody other than Synchro put there."""
    present = {e["name"] for e in _env_of(workload, container)}
    return present - owned_env_names(workload, container)


@dataclass(frozen=True)
class TargetPlan:
    containers: tuple[str, ...]
    env: Mapping[str, tuple[EnvVar, ...]]  # per container, what Synchro applies
    kept_user_vars: tuple[str, ...]  # preset variables the user had already set (theirs win)
    missing_containers: tuple[str, ...]
    sidecar: Mapping[str, Any] | None = None  # the probe container, owned whole by Synchro


def plan_env(
    workload: Obj, wanted: Sequence[str], env: Sequence[EnvVar], sidecar: Mapping[str, Any] | None = None
) -> TargetPlan:
    present = containers_of(workload)
    chosen = [c for c in (wanted or present) if c in present]
    per_container: dict[str, tuple[EnvVar, ...]] = {}
    kept: set[str] = set()
    for c in chosen:
        users = user_env_names(workload, c)
        kept |= users & {e["name"] for e in env}
        per_container[c] = tuple(e for e in env if e["name"] not in users)
    return TargetPlan(
        containers=tuple(chosen),
        env=per_container,
        kept_user_vars=tuple(sorted(kept)),
        missing_containers=tuple(c for c in wanted if c not in present),
        sidecar=sidecar,
    )


def desired_apply(
    kind: str, namespace: str, name: str, cluster: str, plan: TargetPlan, config_hash: str, replicas: int
) -> dict[str, Any]:
    """The server-side-apply body: only the fields Synchro owns."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "annotations": {api.CLAIM_ANNOTATION: cluster}},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {
                    "labels": {api.CLUSTER_LABEL: cluster},
                    "annotations": {api.CONFIG_HASH_ANNOTATION: config_hash},
                },
                "spec": {
                    "containers": [
                        *({"name": c, "env": [dict(e) for e in plan.env[c]]} for c in plan.containers),
                        *([dict(plan.sidecar)] if plan.sidecar else []),
                    ]
                },
            },
        },
    }


def release_apply(kind: str, namespace: str, name: str, replicas: int | None) -> dict[str, Any]:
    """The apply body that gives up every field Synchro owned; with `replicas`, it leaves the target at that count."""
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}}
    if replicas is not None:
        body["spec"] = {"replicas": replicas}
    return body


def _normalized(env: EnvVar) -> dict[str, Any]:
    return {k: v for k, v in env.items() if v not in (None, "")}


def is_applied(workload: Obj, desired: Obj) -> bool:
    """True when applying `desired` would change nothing Synchro owns, so no write is needed."""
    meta, spec = workload.get("metadata", {}), workload.get("spec", {})
    want_meta, want_spec = desired["metadata"], desired.get("spec", {})
    if any(meta.get("annotations", {}).get(k) != v for k, v in want_meta.get("annotations", {}).items()):
        return False
    if "replicas" in want_spec and spec.get("replicas") != want_spec["replicas"]:
        return False
    template = want_spec.get("template")
    if template is None:
        return True
    live_template = spec.get("template", {})
    for section in ("labels", "annotations"):
        live = live_template.get("metadata", {}).get(section) or {}
        if any(live.get(k) != v for k, v in template["metadata"][section].items()):
            return False
    live_containers = {c["name"]: c for c in live_template.get("spec", {}).get("containers", [])}
    wanted_sidecar = next((c for c in template["spec"]["containers"] if c["name"] == PROBE_CONTAINER), None)
    if (PROBE_CONTAINER in live_containers) != (wanted_sidecar is not None):
        return False
    if wanted_sidecar is not None and not subset_equal(wanted_sidecar, live_containers[PROBE_CONTAINER]):
        return False
    for container in template["spec"]["containers"]:
        if container["name"] == PROBE_CONTAINER:
            continue
        live_env = {e["name"]: _normalized(e) for e in _env_of(workload, container["name"])}
        want = {e["name"]: _normalized(e) for e in container["env"]}
        if any(live_env.get(n) != e for n, e in want.items()):
            return False
        stale = owned_env_names(workload, container["name"]) - set(want)
        if stale:
            return False
    return True


def subset_equal(want: Any, live: Any) -> bool:
    """Every field in `want` has the same value in `live` (fields the server defaults are ignored)."""
    if isinstance(want, Mapping):
        return isinstance(live, Mapping) and all(subset_equal(v, live.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(want) == len(live) and all(map(subset_equal, want, live))
    return bool(want == live)


def template_hash(workload: Obj) -> str | None:
    annotations = workload.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
    value = annotations.get(api.CONFIG_HASH_ANNOTATION)
    return str(value) if value else None


def rollout_complete(workload: Obj) -> bool:
    """The workload's current template runs on every replica and they are all ready (kubectl rollout status)."""
    meta, spec, status = workload.get("metadata", {}), workload.get("spec", {}), workload.get("status", {})
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False
    want = spec.get("replicas", 1)
    counts = (
        ("updatedReplicas", "readyReplicas")
        if workload.get("kind") == "StatefulSet"
        else ("updatedReplicas", "replicas", "availableReplicas")
    )
    same_revision = status.get("currentRevision") == status.get("updateRevision")  # both None on a Deployment
    return same_revision and all(status.get(k, 0) == want for k in counts)


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int
    held_because: str | None  # a condition reason when targets are held at one replica


def decide_replicas(wanted: int, redis_ready: bool, rolled_out_before: bool) -> ScaleDecision:
    """In-memory state is only safe for one replica: hold there until every pod talks to Redis.

    `rolled_out_before` says a rollout of an injected config completed for this target. From then on
    every pod uses Redis, so a later config change (a rotated password) rolls at full scale, and a Redis
    outage does not scale the app down: fewer replicas would not make a Redis-backed app any more consistent.
    """
    if rolled_out_before:
        return ScaleDecision(wanted, None)
    return ScaleDecision(min(1, wanted), Reason.WAITING_FOR_ROLLOUT if redis_ready else Reason.REDIS_NOT_READY)
