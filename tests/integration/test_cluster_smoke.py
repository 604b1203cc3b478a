"""The local cluster is a real one: controllers, scheduler, garbage collection and subresources work."""

from __future__ import annotations

import uuid

from kubernetes import client
from kubernetes.client.rest import ApiException

from poll import wait_for

pytestmark = __import__("pytest").mark.integration


def deployment(name: str, replicas: int) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "example/web"}]},
            },
        },
    }


def test_deployment_becomes_available_with_ready_pods(cluster: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster), client.CoreV1Api(cluster)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))

    def available() -> bool:
        d = apps.read_namespaced_deployment("web", namespace)
        return (d.status.available_replicas or 0) == 3

    wait_for(available, "deployment web to have 3 available replicas", timeout=90)
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    ready = [p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    assert len(ready) == 3
    assert all(p.status.pod_ip for p in ready)
    assert len({p.status.pod_ip for p in ready}) == 3


def test_namespace_deletion_completes(cluster: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(cluster), client.AppsV1Api(cluster)
    name = f"t-del-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    apps.create_namespaced_deployment(name, deployment("doomed", 1))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm")))
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(gone, f"namespace {name} to be deleted", timeout=120)


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.synchro.dev"},
    "spec": {
        "group": "smoke.synchro.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_status_and_scale_subresources_round_trip(cluster: client.ApiClient, namespace: str) -> None:
    ext, custom = client.ApiextensionsV1Api(cluster), client.CustomObjectsApi(cluster)
    try:
        ext.create_custom_resource_definition(CRD)
    except ApiException as e:
        if e.status != 409:
            raise

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.smoke.synchro.dev")
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_for(established, "the Widget CRD to be established")
    args = ("smoke.synchro.dev", "v1", namespace, "widgets")
    wait_for(
        lambda: custom.create_namespaced_custom_object(
            *args,
            {
                "apiVersion": "smoke.synchro.dev/v1",
                "kind": "Widget",
                "metadata": {"name": "w"},
                "spec": {"replicas": 1},
            },
        ),
        "the Widget endpoint to serve",
    )

    # The status subresource ignores spec and keeps status.
    custom.patch_namespaced_custom_object_status(
        *args, "w", {"status": {"replicas": 1, "selector": "app=w"}, "spec": {"replicas": 99}}
    )
    obj = custom.get_namespaced_custom_object(*args, "w")
    assert obj["status"] == {"replicas": 1, "selector": "app=w"}
    assert obj["spec"]["replicas"] == 1

    # The scale subresource reads from and writes to the paths the CRD names.
    scale = custom.get_namespaced_custom_object_scale(*args, "w")
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=w"
    custom.patch_namespaced_custom_object_scale(*args, "w", {"spec": {"replicas": 4}})
    assert custom.get_namespaced_custom_object(*args, "w")["spec"]["replicas"] == 4
