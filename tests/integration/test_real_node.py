"""Real pods on the real node (hack/realnode.py): container runtime, pod network, Services, DNS, probes.

Needs `make cluster-up NODE=real`; without a Ready node labelled synchro.dev/node=real these tests skip.
Every pod here selects that node and tolerates its taint; images are the locally built synchro.local/*.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit import REAL_NODE_TOLERATION, fresh_namespace
from kubernetes import client
from kubernetes.stream import stream

from poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

NODE_LABEL = {"synchro.dev/node": "real"}
TOLERATION = REAL_NODE_TOLERATION
REDIS_IMAGE = "synchro.local/redis:7"
TEST_IMAGE = "synchro.local/test:1"


@pytest.fixture()
def other_namespace(cluster: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(cluster) as name:
        yield name


def pod_spec(container: dict[str, object], restart: str = "Always") -> dict[str, object]:
    return {
        "nodeSelector": NODE_LABEL,
        "tolerations": [TOLERATION],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 1,
        "enableServiceLinks": False,
        "containers": [{"imagePullPolicy": "IfNotPresent", **container}],
    }


def service(name: str, port: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}]},
    }


def pod_ready(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    pod = core.read_namespaced_pod(name, namespace)
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def endpoint_ips(core: client.CoreV1Api, namespace: str, name: str) -> tuple[set[str], set[str]]:
    """(ready, not ready) addresses of a Service's Endpoints."""
    ep = core.read_namespaced_endpoints(name, namespace)
    ready: set[str] = set()
    not_ready: set[str] = set()
    for subset in ep.subsets or []:
        ready |= {a.ip for a in subset.addresses or []}
        not_ready |= {a.ip for a in subset.not_ready_addresses or []}
    return ready, not_ready


def finished(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    phase = core.read_namespaced_pod(name, namespace).status.phase
    return phase if phase in ("Succeeded", "Failed") else None


def test_redis_answers_through_service_dns_from_another_namespace(
    cluster: client.ApiClient, real_node: str, namespace: str, other_namespace: str
) -> None:
    core = client.CoreV1Api(cluster)
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "redis", "labels": {"app": "redis"}},
            "spec": pod_spec(
                {
                    "name": "redis",
                    "image": REDIS_IMAGE,
                    "ports": [{"containerPort": 6379}],
                    "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1},
                }
            ),
        },
    )
    core.create_namespaced_service(namespace, service("redis", 6379))
    wait_for(lambda: pod_ready(core, namespace, "redis"), "the redis pod to be Ready", timeout=120)
    assert core.read_namespaced_pod("redis", namespace).spec.node_name == real_node
    wait_for(lambda: endpoint_ips(core, namespace, "redis")[0], "the redis Service to have a ready endpoint")

    host = f"redis.{namespace}.svc.cluster.local"
    core.create_namespaced_pod(
        other_namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client"},
            "spec": pod_spec(
                # kube-proxy programs the Service a moment after its endpoint is ready: retry for up to 10 s.
                {
                    "name": "client",
                    "image": TEST_IMAGE,
                    "command": [
                        "sh",
                        "-c",
                        f"for i in $(seq 20); do redis-cli -h {host} ping && exit 0; sleep 0.5; done; exit 1",
                    ],
                },
                restart="Never",
            ),
        },
    )
    phase = wait_for(lambda: finished(core, other_namespace, "client"), "the client pod to finish", timeout=120)
    logs = core.read_namespaced_pod_log("client", other_namespace)
    assert (phase, logs.strip().splitlines()[-1]) == ("Succeeded", "PONG")


def test_readiness_probe_gates_endpoints(cluster: client.ApiClient, real_node: str, namespace: str) -> None:
    core = client.CoreV1Api(cluster)
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "gated", "labels": {"app": "gated"}},
            "spec": pod_spec(
                {
                    "name": "app",
                    "image": TEST_IMAGE,
                    "command": ["sleep", "infinity"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1},
                }
            ),
        },
    )
    core.create_namespaced_service(namespace, service("gated", 8080))
    running = wait_for(
        lambda: core.read_namespaced_pod("gated", namespace).status.pod_ip, "the pod to get an IP", timeout=120
    )
    ip = str(running)

    wait_for(
        lambda: endpoint_ips(core, namespace, "gated") == (set(), {ip}),
        "the unready pod to be listed as a not-ready endpoint only",
    )

    def sh(script: str) -> None:
        stream(
            core.connect_get_namespaced_pod_exec,
            "gated",
            namespace,
            command=["sh", "-c", script],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )

    sh("touch /tmp/ready")
    wait_for(lambda: endpoint_ips(core, namespace, "gated") == ({ip}, set()), "the ready pod to become an endpoint")
    sh("rm /tmp/ready")
    wait_for(
        lambda: endpoint_ips(core, namespace, "gated") == (set(), {ip}),
        "the pod to leave the ready endpoints once its probe fails",
    )


def test_deleted_pod_is_replaced_by_its_deployment(cluster: client.ApiClient, real_node: str, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster), client.CoreV1Api(cluster)
    labels = {"app": "sleeper"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sleeper"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": pod_spec(
                        {
                            "name": "app",
                            "image": TEST_IMAGE,
                            "command": ["sleep", "infinity"],
                            "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                        }
                    ),
                },
            },
        },
    )

    def ready_pods() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=sleeper").items
        return [
            p
            for p in pods
            if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]

    first = wait_for(ready_pods, "the deployment's pod to be Ready", timeout=120)[0]
    assert first.spec.node_name == real_node
    core.delete_namespaced_pod(first.metadata.name, namespace)

    replacement = wait_for(
        lambda: [p for p in ready_pods() if p.metadata.uid != first.metadata.uid],
        "a Ready replacement pod",
        timeout=120,
    )[0]
    assert replacement.spec.node_name == real_node
    wait_for(
        lambda: (apps.read_namespaced_deployment("sleeper", namespace).status.available_replicas or 0) == 1,
        "the deployment to be available again",
    )
