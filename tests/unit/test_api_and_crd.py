"""The API model and the CRD built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synchro import api, conditions, crd, presets
from synchro.conditions import Condition

ROOT = Path(__file__).resolve().parents[2]


def test_crd_file_is_generated_from_the_code() -> None:
    on_disk = (ROOT / "crds" / "synchro.dev_syncclusters.yaml").read_text()
    assert on_disk == crd.render(), "crds/ drifted from operator/synchro/crd.py: run `make crds`"


def test_crd_preset_enum_is_the_registry() -> None:
    target = crd.build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "targets"
    ]["items"]
    assert target["properties"]["preset"]["enum"] == sorted(presets.PRESETS)


def test_parse_applies_defaults() -> None:
    spec = api.parse("ns", "cms", {"targets": [{"name": "d", "preset": "directus"}]})
    assert spec.replicas == 1 and spec.mode == "Managed" and spec.prefix == "ns.cms"
    assert spec.targets[0].kind == "Deployment" and spec.targets[0].containers == ()
    assert spec.probe.interval_s == 10 and not spec.retain_on_delete


def test_parse_external_url() -> None:
    spec = api.parse(
        "ns",
        "cms",
        {
            "redis": {
                "mode": "External",
                "external": {"url": "rediss://app@redis.example:6380/3", "passwordSecretRef": {"name": "s"}},
            },
            "targets": [{"name": "d", "preset": "generic"}],
        },
    )
    ext = spec.external
    assert ext is not None
    assert (ext.host, ext.port, ext.db, ext.tls, ext.username) == ("redis.example", 6380, 3, True, "app")
    assert ext.password == api.SecretRef("s", "password")


def test_durations() -> None:
    assert api.parse_duration_s("10s") == 10 and api.parse_duration_s("2m") == 120 and api.parse_duration_s(5) == 5
    with pytest.raises(api.SpecError):
        api.parse_duration_s("soon")


def test_ready_names_the_first_failure_and_keeps_transition_times() -> None:
    found = [
        Condition(conditions.REDIS_READY, True, "Reachable", "ok"),
        Condition(conditions.CONFIG_INJECTED, False, "TargetNotFound", "Deployment x not found"),
    ]
    ready = conditions.ready(found)
    assert (ready.status, ready.reason) == (False, "TargetNotFound")
    first = conditions.merge([], [*found, ready], 1, "t1")
    again = conditions.merge(first, [*found, ready], 2, "t2")
    assert {c["lastTransitionTime"] for c in again} == {"t1"}
    flipped = conditions.merge(
        again, [Condition(conditions.REDIS_READY, False, "Unreachable", "down"), found[1]], 2, "t3"
    )
    assert next(c for c in flipped if c["type"] == conditions.REDIS_READY)["lastTransitionTime"] == "t3"
    assert next(c for c in flipped if c["type"] == conditions.CONFIG_INJECTED)["lastTransitionTime"] == "t1"


def test_samples_match_the_schema_enums() -> None:
    for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == api.KIND:
                for t in doc["spec"]["targets"]:
                    assert t["preset"] in presets.PRESETS, path


def test_every_status_field_the_operator_writes_is_in_the_schema() -> None:
    """A field the schema lacks is pruned by the API server, so the operator would rewrite it forever."""
    from synchro.reconcile.model import TargetState

    status = crd.build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert set(TargetState("Deployment", "x").as_status()) <= set(status["targets"]["items"]["properties"])
    assert {
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "selector",
        "redis",
        "targets",
        "conditions",
        "probe",
    } <= set(status)


def test_managed_redis_objects_name_their_owner() -> None:
    from synchro.redis import managed

    assert managed.owner_of(managed.labels("chat")) == "chat"
    assert managed.owner_of({"app.kubernetes.io/instance": "chat"}) is None  # somebody else's app
    assert managed.owner_of(None) is None
