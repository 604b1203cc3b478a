"""The pure injection core: what is applied, what is left alone, when replicas are released."""

from __future__ import annotations

import copy
import json
from typing import Any

from synchro import api, inject


def workload(
    env: list[dict[str, Any]] | None = None,
    managed_env: list[str] = (),
    replicas: int = 1,
    status: dict[str, Any] | None = None,
    template_hash: str | None = None,
) -> dict[str, Any]:
    key = "k:" + json.dumps({"name": "app"}, separators=(",", ":"))
    fields = {
        "f:spec": {
            "f:template": {
                "f:spec": {
                    "f:containers": {
                        key: {"f:env": {"k:" + json.dumps({"name": n}, separators=(",", ":")): {} for n in managed_env}}
                    }
                }
            }
        }
    }
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "generation": 2,
            "managedFields": [
                {"manager": "synchro", "operation": "Apply", "fieldsV1": fields},
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {}},
            ],
            "annotations": {api.CLAIM_ANNOTATION: "c"},
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {
                    "labels": {api.CLUSTER_LABEL: "c"},
                    "annotations": {api.CONFIG_HASH_ANNOTATION: template_hash} if template_hash else {},
                },
                "spec": {
                    "containers": [{"name": "app", "image": "x", "env": env or []}, {"name": "side", "image": "y"}]
                },
            },
        },
        "status": status
        if status is not None
        else {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


ENV = [{"name": "REDIS_HOST", "value": "r"}, {"name": "REDIS_PORT", "value": "6379"}]


def test_user_var_with_a_preset_name_is_kept_and_reported() -> None:
    wl = workload(env=[{"name": "REDIS_HOST", "value": "mine"}, {"name": "OTHER", "value": "1"}])
    plan = inject.plan_env(wl, ["app"], ENV)
    assert plan.kept_user_vars == ("REDIS_HOST",)
    assert [e["name"] for e in plan.env["app"]] == ["REDIS_PORT"]


def test_vars_synchro_owns_are_not_mistaken_for_the_users() -> None:
    wl = workload(env=[{"name": "REDIS_HOST", "value": "old"}], managed_env=["REDIS_HOST"])
    plan = inject.plan_env(wl, ["app"], ENV)
    assert plan.kept_user_vars == ()
    assert [e["name"] for e in plan.env["app"]] == ["REDIS_HOST", "REDIS_PORT"]


def test_default_containers_are_all_and_missing_ones_are_named() -> None:
    wl = workload()
    assert inject.plan_env(wl, [], ENV).containers == ("app", "side")
    assert inject.plan_env(wl, ["app", "nope"], ENV).missing_containers == ("nope",)


def test_desired_apply_holds_only_synchro_fields() -> None:
    plan = inject.plan_env(workload(), ["app"], ENV)
    body = inject.desired_apply("Deployment", "ns", "web", "c", plan, "h1", 3)
    assert body["metadata"] == {"name": "web", "namespace": "ns", "annotations": {api.CLAIM_ANNOTATION: "c"}}
    assert body["spec"]["replicas"] == 3
    assert body["spec"]["template"]["metadata"]["annotations"] == {api.CONFIG_HASH_ANNOTATION: "h1"}
    assert body["spec"]["template"]["spec"]["containers"] == [{"name": "app", "env": ENV}]


def test_is_applied_sees_every_difference() -> None:
    plan = inject.plan_env(workload(), ["app"], ENV)
    desired = inject.desired_apply("Deployment", "ns", "web", "c", plan, "h1", 1)
    live = workload(env=copy.deepcopy(ENV), managed_env=["REDIS_HOST", "REDIS_PORT"], template_hash="h1")
    assert inject.is_applied(live, desired)
    assert not inject.is_applied(live, {**desired, "spec": {**desired["spec"], "replicas": 2}})
    changed = copy.deepcopy(live)
    changed["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "other"
    assert not inject.is_applied(changed, desired)
    rehashed = inject.desired_apply("Deployment", "ns", "web", "c", plan, "h2", 1)
    assert not inject.is_applied(live, rehashed)


def test_is_applied_notices_a_stale_owned_var() -> None:
    plan = inject.plan_env(workload(), ["app"], ENV)
    desired = inject.desired_apply("Deployment", "ns", "web", "c", plan, "h1", 1)
    live = workload(
        env=[*ENV, {"name": "GONE", "value": "1"}], managed_env=["REDIS_HOST", "REDIS_PORT", "GONE"], template_hash="h1"
    )
    assert not inject.is_applied(live, desired)


def test_config_hash_changes_with_env_and_secret_content_only() -> None:
    a = inject.config_hash({"app": ENV}, "v1")
    assert a == inject.config_hash({"app": copy.deepcopy(ENV)}, "v1")
    assert a != inject.config_hash({"app": ENV}, "v2")
    assert a != inject.config_hash({"app": ENV[:1]}, "v1")
    assert inject.secret_version("uid", {"password": "YQ=="}, "password") != inject.secret_version(
        "uid", {"password": "Yg=="}, "password"
    )
    assert inject.secret_version("uid", {}, "password") == ""


def test_scale_is_held_until_redis_is_ready_and_the_config_rolled_out() -> None:
    assert inject.decide_replicas(3, False, False) == inject.ScaleDecision(1, "RedisNotReady")
    assert inject.decide_replicas(3, True, False) == inject.ScaleDecision(1, "WaitingForRollout")
    assert inject.decide_replicas(3, True, True) == inject.ScaleDecision(3, None)
    # Once every pod talks to Redis, an outage does not scale the app down.
    assert inject.decide_replicas(3, False, True) == inject.ScaleDecision(3, None)
    assert inject.decide_replicas(0, False, False) == inject.ScaleDecision(0, "RedisNotReady")


def test_rollout_complete_needs_the_current_generation_everywhere() -> None:
    assert inject.rollout_complete(workload(replicas=2))
    stale = workload(status={"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})
    assert not inject.rollout_complete(stale)
    surge = workload(
        replicas=2, status={"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}
    )
    assert not inject.rollout_complete(surge)


def test_release_apply_gives_up_everything_but_identity() -> None:
    assert inject.release_apply("Deployment", "ns", "web", None) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
    }
    assert inject.release_apply("Deployment", "ns", "web", 1)["spec"] == {"replicas": 1}


def test_slim_keeps_what_a_pass_reads_and_only_synchros_managed_fields() -> None:
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "w",
            "resourceVersion": "7",
            "annotations": {"a": "b"},
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}},
                {"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            ],
        },
        "spec": {"replicas": 2},
        "status": {"readyReplicas": 1},
    }
    slim = inject.slim(workload)
    assert [e["manager"] for e in slim["metadata"]["managedFields"]] == [api.FIELD_MANAGER]
    assert slim["spec"] == workload["spec"] and slim["status"] == workload["status"]
    assert slim["metadata"]["resourceVersion"] == "7" and len(workload["metadata"]["managedFields"]) == 2


def test_compact_plans_exactly_what_the_whole_workload_plans() -> None:
    for wl in (
        workload(env=[{"name": "REDIS_HOST", "value": "mine"}, {"name": "OTHER", "value": "1"}]),
        workload(env=[{"name": "REDIS_HOST", "value": "old"}], managed_env=["REDIS_HOST"], template_hash="h"),
        workload(status={"observedGeneration": 1}),
    ):
        small = inject.compact(wl)
        for wanted in ([], ["app"], ["app", "nope"]):
            assert inject.plan_env(small, wanted, ENV) == inject.plan_env(wl, wanted, ENV)
        assert inject.template_hash(small) == inject.template_hash(wl)
        assert inject.rollout_complete(small) == inject.rollout_complete(wl)
        assert small["metadata"]["generation"] == 2 and small["spec"]["replicas"] == 1


def test_an_unclaimed_compact_workload_is_never_taken_as_applied() -> None:
    wl = workload()
    del wl["metadata"]["annotations"]  # nobody claimed it: this is when the index keeps it compact
    plan = inject.plan_env(wl, [], [])
    desired = inject.desired_apply("Deployment", "ns", "web", "c", plan, "h", 1)
    assert not inject.is_applied(inject.compact(wl), desired)
    assert "image" not in json.dumps(inject.compact(wl))  # values and the rest of the spec stay out of memory
