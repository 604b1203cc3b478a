"""The operator against the real local cluster: injection, scaling, conflicts, rotation, restart, deletion."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from typing import Any

import pytest
import yaml
from kit import (
    GROUP,
    KUBECTL,
    LOCAL_REDIS,
    LOCAL_REDIS_PORT,
    PLURAL,
    ROOT,
    VERSION,
    Env,
    RedisServer,
    app,
    cluster_cmd,
    redis_cli,
    secret,
    sync_cluster,
)
from kubernetes import client
from kubernetes.client.rest import ApiException

from poll import wait_for

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------- the API rejects bad input


def dry_run(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"targets": [{"name": "a", "preset": "wordpress"}]}, 'Unsupported value: "wordpress"'),
        ({"replicas": -1, "targets": [{"name": "a", "preset": "generic"}]}, "should be greater than or equal to 0"),
        (
            {"redis": {"mode": "External"}, "targets": [{"name": "a", "preset": "generic"}]},
            "redis.mode External needs redis.external.url",
        ),
        (
            {
                "redis": {"mode": "Managed", "external": {"url": LOCAL_REDIS}},
                "targets": [{"name": "a", "preset": "generic"}],
            },
            "redis.mode Managed takes no redis.external fields",
        ),
        ({"targets": [{"name": "a", "preset": "generic"}, {"name": "a", "preset": "directus"}]}, "Duplicate value"),
        ({"targets": []}, "should have at least 1 items"),
        (
            {
                "redis": {"mode": "External", "external": {"url": "http://x"}},
                "targets": [{"name": "a", "preset": "generic"}],
            },
            "should match '^rediss?://'",
        ),
    ],
)
def test_schema_rejects_bad_input_with_a_clear_message(
    cluster: client.ApiClient, namespace: str, operator: None, spec: dict[str, Any], message: str
) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SyncCluster", "metadata": {"name": "bad"}, "spec": spec}
    with pytest.raises(ApiException) as e:
        dry_run(cluster, namespace, body)
    assert e.value.status == 422
    assert message in json.loads(e.value.body)["message"]


def test_the_documented_examples_are_accepted_as_written(
    cluster: client.ApiClient, namespace: str, operator: None
) -> None:
    for sample in ("directus.yaml", "soketi.yaml"):
        dry_run(cluster, namespace, yaml.safe_load((ROOT / "manifests" / "samples" / sample).read_text()))


# ---------------------------------------------------------------- injection, scaling, status


def test_external_redis_injects_scales_and_reports(env: Env) -> None:
    user_env = [{"name": "PUBLIC_URL", "value": "https://cms.example"}, {"name": "REDIS_ENABLED", "value": "false"}]
    env.create(app("directus", user_env, replicas=2))
    env.create(sync_cluster("cms", [{"name": "directus", "preset": "directus"}], replicas=3))
    env.wait_condition("cms", "Ready", "True")

    d = env.deployment("directus")
    assert d.spec.replicas == 3
    injected = env.env_of("directus")
    assert injected["REDIS"].value == f"string:{LOCAL_REDIS}"
    assert injected["SYNCHRONIZATION_STORE"].value == "redis"
    # The user's own variables are untouched, even one that shares a preset name.
    assert injected["PUBLIC_URL"].value == "https://cms.example"
    assert injected["REDIS_ENABLED"].value == "false"
    assert "REDIS_ENABLED" in env.condition("cms", "ConfigInjected")["message"]  # type: ignore[index]
    assert d.spec.template.metadata.labels["synchro.dev/cluster"] == "cms"
    assert d.spec.template.metadata.annotations["synchro.dev/config-hash"]

    status = env.sc("cms")["status"]
    assert status["selector"] == "synchro.dev/cluster=cms"
    assert status["replicas"] == 3 and status["readyReplicas"] == 3
    assert status["redis"] == {"mode": "External", "endpoint": f"127.0.0.1:{LOCAL_REDIS_PORT}/0"}
    assert status["targets"][0]["configHash"] == d.spec.template.metadata.annotations["synchro.dev/config-hash"]
    for c in status["conditions"]:
        assert c["observedGeneration"] == env.sc("cms")["metadata"]["generation"] and c["lastTransitionTime"]

    table = subprocess.run(
        [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", "get", "syncclusters", "-n", env.ns],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert table[0].split() == ["NAME", "READY", "REPLICAS", "REDIS", "AGE"]
    assert table[1].split()[:4] == ["cms", "True", "3", f"127.0.0.1:{LOCAL_REDIS_PORT}/0"]


def test_kubectl_scale_and_an_hpa_drive_the_targets(env: Env) -> None:
    env.create(app("web"))
    env.create(sync_cluster("web", [{"name": "web", "preset": "generic"}], replicas=2))
    wait_for(lambda: env.deployment("web").spec.replicas == 2, "web at 2 replicas")

    subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}",
            "scale",
            "-n",
            env.ns,
            "synccluster/web",
            "--replicas=4",
        ],
        check=True,
        capture_output=True,
    )
    wait_for(lambda: env.deployment("web").spec.replicas == 4, "web scaled to 4 by kubectl scale")

    # With no metrics to read, an HPA still enforces minReplicas through the /scale subresource.
    client.AutoscalingV2Api(env.apps.api_client).create_namespaced_horizontal_pod_autoscaler(
        env.ns,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SyncCluster", "name": "web"},
                "minReplicas": 5,
                "maxReplicas": 8,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                    }
                ],
            },
        },
    )
    wait_for(lambda: env.sc("web")["spec"]["replicas"] == 5, "the HPA to scale the SyncCluster to 5", 90)
    wait_for(lambda: env.deployment("web").spec.replicas == 5, "web scaled to 5 by the HPA")
    # A scale is one write by Synchro (its apply) and none by kopf: no diff base annotation is kept, so the
    # only thing kopf ever wrote to the SyncCluster is its finalizer.
    meta = env.sc("web")["metadata"]
    assert not [k for k in meta.get("annotations") or {} if k.startswith(GROUP)], meta.get("annotations")
    kopf_writes = [m["fieldsV1"] for m in meta["managedFields"] if m["manager"] == "kopf"]
    assert kopf_writes == [{"f:metadata": {"f:finalizers": {".": {}, 'v:"synchro.dev/finalizer"': {}}}}], kopf_writes


def test_missing_target_is_reported_then_served_once_it_appears(env: Env) -> None:
    env.create(sync_cluster("late", [{"name": "later", "preset": "generic"}]))
    c = env.wait_condition("late", "ConfigInjected", "False", "TargetNotFound")
    assert "later" in c["message"]
    wait_for(lambda: any(e.reason == "TargetNotFound" for e in env.events("late")), "a TargetNotFound event")
    env.create(app("later"))
    env.wait_condition("late", "Ready", "True")
    assert env.deployment("later").spec.replicas == 2


def test_missing_secret_is_a_condition_not_a_crash(env: Env) -> None:
    env.create(app("w"))
    env.create(
        sync_cluster(
            "nosecret",
            [{"name": "w", "preset": "generic"}],
            redis={"mode": "External", "external": {"url": LOCAL_REDIS, "passwordSecretRef": {"name": "absent"}}},
        )
    )
    c = env.wait_condition("nosecret", "RedisReady", "False", "SecretNotFound")
    assert "absent" in c["message"]
    assert env.deployment("w").spec.replicas == 1


def test_a_second_synccluster_on_the_same_target_is_refused(env: Env) -> None:
    env.create(app("shared"))
    env.create(sync_cluster("first", [{"name": "shared", "preset": "generic"}]))
    env.wait_condition("first", "Ready", "True")
    env.create(sync_cluster("second", [{"name": "shared", "preset": "soketi"}], replicas=5))
    c = env.wait_condition("second", "ConfigInjected", "False", "TargetConflict")
    assert "first" in c["message"]
    d = env.deployment("shared")
    assert d.spec.replicas == 2 and "SOKETI_ADAPTER_DRIVER" not in env.env_of("shared")
    assert env.condition("first", "Ready")["status"] == "True"  # type: ignore[index]


def test_user_env_survives_injection_and_deletion(env: Env) -> None:
    env.create(app("keep", [{"name": "MINE", "value": "1"}], containers=2))
    env.create(
        sync_cluster(
            "keep",
            [{"name": "keep", "preset": "generic", "containers": ["c1"], "env": [{"name": "EXTRA", "value": "x"}]}],
            replicas=3,
        )
    )
    env.wait_condition("keep", "Ready", "True")
    assert set(env.env_of("keep", 0)) == {"MINE"}  # not a chosen container
    assert {"MINE", "REDIS_URL", "REDIS_HOST", "EXTRA"} <= set(env.env_of("keep", 1))

    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "keep")
    wait_for(lambda: set(env.env_of("keep", 1)) == {"MINE"}, "injected env removed on deletion")
    d = env.deployment("keep")
    assert d.spec.replicas == 1
    assert "synchro.dev/config-hash" not in (d.spec.template.metadata.annotations or {})
    assert "synchro.dev/claimed-by" not in (d.metadata.annotations or {})


def test_retain_leaves_the_target_as_it_is(env: Env) -> None:
    env.create(app("stay"))
    env.create(sync_cluster("stay", [{"name": "stay", "preset": "generic"}], deletionPolicy="Retain"))
    env.wait_condition("stay", "Ready", "True")
    env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "stay")

    def gone() -> bool:
        try:
            env.sc("stay")
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, "SyncCluster stay deleted")
    assert "REDIS_URL" in env.env_of("stay") and env.deployment("stay").spec.replicas == 2


def test_password_rotation_rolls_exactly_once(env: Env, redis_server: RedisServer) -> None:
    port, password = redis_server.port, redis_server.password
    env.create(secret("redis-auth", password))
    env.create(app("rot"))
    env.create(
        sync_cluster(
            "rot",
            [{"name": "rot", "preset": "generic"}],
            redis={
                "mode": "External",
                "external": {"url": f"redis://127.0.0.1:{port}/2", "passwordSecretRef": {"name": "redis-auth"}},
            },
        )
    )
    env.wait_condition("rot", "Ready", "True")
    injected = env.env_of("rot")
    assert injected["REDIS_PASSWORD"].value_from.secret_key_ref.name == "redis-auth"
    assert password not in str(env.deployment("rot").spec.template)  # never in plain text
    before = {rs.metadata.name for rs in env.replica_sets("rot")}
    old_hash = env.sc("rot")["status"]["targets"][0]["configHash"]

    new_password = uuid.uuid4().hex
    redis_cli(port, password, "CONFIG", "SET", "requirepass", new_password)
    env.core.patch_namespaced_secret(
        "redis-auth", env.ns, {"data": {"password": base64.b64encode(new_password.encode()).decode()}}
    )
    wait_for(lambda: env.sc("rot")["status"]["targets"][0]["configHash"] != old_hash, "a new config hash")
    env.wait_condition("rot", "Ready", "True")
    after = {rs.metadata.name for rs in env.replica_sets("rot")}
    assert len(after - before) == 1

    # A metadata-only edit of the Secret is not a rotation.
    env.core.patch_namespaced_secret("redis-auth", env.ns, {"metadata": {"labels": {"touched": "yes"}}})
    env.create(sync_cluster("sentinel", [{"name": "sentinel", "preset": "generic"}]))  # proves the operator caught up
    env.create(app("sentinel"))
    env.wait_condition("sentinel", "Ready", "True")
    assert {rs.metadata.name for rs in env.replica_sets("rot")} == after


def test_restarting_the_operator_changes_nothing(env: Env) -> None:
    env.create(app("steady"))
    env.create(sync_cluster("steady", [{"name": "steady", "preset": "directus"}], replicas=3))
    env.wait_condition("steady", "Ready", "True")
    wait_for(lambda: env.deployment("steady").status.ready_replicas == 3, "3 ready replicas")
    before_d = env.deployment("steady").metadata.resource_version
    before_sc = env.sc("steady")["metadata"]["resourceVersion"]

    cluster_cmd("stop-operator")
    cluster_cmd("start-operator", "--as-service-account")
    env.create(app("marker"))
    env.create(sync_cluster("marker", [{"name": "marker", "preset": "generic"}]))
    env.wait_condition("marker", "Ready", "True")  # the restarted operator has made its first passes

    assert env.deployment("steady").metadata.resource_version == before_d
    assert env.sc("steady")["metadata"]["resourceVersion"] == before_sc


def test_managed_redis_objects_are_owned_and_the_password_stays_secret(env: Env) -> None:
    env.create(app("chat"))
    env.create(sync_cluster("chat", [{"name": "chat", "preset": "soketi"}], replicas=3, redis={"mode": "Managed"}))
    env.wait_condition("chat", "ConfigInjected", "True")
    uid = env.sc("chat")["metadata"]["uid"]
    name = "chat-redis"
    objects = [
        env.core.read_namespaced_secret(name, env.ns),
        env.core.read_namespaced_config_map(name, env.ns),
        env.core.read_namespaced_service(name, env.ns),
        env.apps.read_namespaced_deployment(name, env.ns),
        client.NetworkingV1Api(env.apps.api_client).read_namespaced_network_policy(name, env.ns),
        client.PolicyV1Api(env.apps.api_client).read_namespaced_pod_disruption_budget(name, env.ns),
    ]
    for obj in objects:
        assert [o.uid for o in obj.metadata.owner_references or []] == [uid], obj.kind
    password = base64.b64decode(objects[0].data["password"]).decode()
    assert len(password) >= 32
    assert password not in str(env.deployment("chat").spec.template)
    assert password not in str(objects[1].data)  # not in the ConfigMap either
    assert env.env_of("chat")["SOKETI_DB_REDIS_HOST"].value == f"chat-redis.{env.ns}.svc"

    ready = env.condition("chat", "RedisReady")
    if ready and ready["status"] == "False":  # kwok nodes: no Redis process really runs
        held = env.wait_condition("chat", "RolloutComplete", "False", "ScaleHeld")
        assert "held at 1 replica" in held["message"]
        assert env.deployment("chat").spec.replicas == 1
    else:
        env.wait_condition("chat", "Ready", "True", timeout=120)
        assert env.deployment("chat").spec.replicas == 3
