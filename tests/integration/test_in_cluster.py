"""The operator as users run it: the image built from the Dockerfile (hack/dockerfile.py), installed with
`helm install` on the real node, under Pod Security "restricted".

One release serves the module, and its tests run in order: install and a Managed SyncCluster going Ready,
`helm upgrade` to a new image tag, `helm uninstall`. The chart runs two operator pods behind a Lease. They use
the in-cluster config and their ServiceAccount token, run as uid 65532 on a read-only root filesystem, and reach
the managed Redis through the pod network; the API server's own PodSecurity admission judges every pod (operators,
managed Redis, targets with their probe sidecars). The host operator (cluster-wide) stops for the module, so
that one operator acts.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import (
    GROUP,
    PLURAL,
    REAL_NODE_TOLERATION,
    VERSION,
    Env,
    cluster_cmd,
    fresh_namespace,
    host_operator_running,
    probed_managed_cluster,
)
from kubernetes import client

from poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".cluster" / "bin"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTAINERD = "/run/synchro/containerd/containerd.sock"  # hack/realnode.py's CONTAINERD_SOCK
RELEASE = "incluster"  # objects are incluster-synchro-*: never the host operator's synchro-* RBAC
OPERATOR = f"{RELEASE}-synchro"
CRD = "syncclusters.synchro.dev"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
ON_REAL_NODE = {
    "scheduler.alpha.kubernetes.io/node-selector": "synchro.dev/node=real",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([REAL_NODE_TOLERATION]),
}
# What "restricted" asks of every container: the target's own, as a user who runs under it writes them.
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
    "readOnlyRootFilesystem": True,
}


def run(*argv: str | Path) -> str:
    env = {"KUBECONFIG": str(KUBECONFIG), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(Path.home())}
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def helm(*args: str | Path) -> str:
    return run(BIN / "helm", *args)


@dataclass
class Install:
    operator_ns: str
    env: Env  # the apps' namespace
    image: str  # the operator image, as installed


def operator_pods(env: Env, namespace: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={RELEASE}"
    return [p for p in env.core.list_namespaced_pod(namespace, label_selector=selector).items if p.metadata]


def leader(env: Env, namespace: str) -> str:
    """The holder of the chart's Lease (named like the release's other objects: OPERATOR)."""
    lease = client.CoordinationV1Api(env.core.api_client).read_namespaced_lease(OPERATOR, namespace)
    return str(lease.spec.holder_identity or "")


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def refused_pods(env: Env, namespace: str) -> list[str]:
    """Pods a controller could not create: what PodSecurity admission turning one down looks like."""
    events = env.core.list_namespaced_event(namespace, field_selector="reason=FailedCreate").items
    return [e.message for e in events]


@pytest.fixture(scope="module")
def installed(
    cluster: client.ApiClient, real_node: str, synccluster_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Install]:
    host_operator = host_operator_running()
    cluster_cmd("stop-operator")
    # The session's CRD becomes the release's, as a first install's would be (helm adopts an object that
    # carries its release's ownership metadata).
    run(BIN / "kubectl", "label", "--overwrite", "crd", CRD, "app.kubernetes.io/managed-by=Helm")
    with (
        fresh_namespace(cluster, labels=RESTRICTED) as operator_ns,
        fresh_namespace(cluster, ON_REAL_NODE, RESTRICTED) as apps_ns,
    ):
        meta = [f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={operator_ns}"]
        run(BIN / "kubectl", "annotate", "--overwrite", "crd", CRD, *meta)
        pod_cidr = client.CoreV1Api(cluster).read_node(real_node).spec.pod_cidr
        values = {
            "nodeSelector": {"synchro.dev/node": "real"},
            "tolerations": [REAL_NODE_TOLERATION],
            # This sandbox's rule for every operator here: Redis connections only to the real node's pods.
            "extraEnv": [{"name": "SYNCHRO_REDIS_NETWORKS", "value": pod_cidr}],
        }
        path = tmp_path_factory.mktemp("helm") / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        env = Env(cluster, apps_ns)
        try:
            chart = ROOT / "charts" / "synchro"
            helm("install", RELEASE, chart, "-n", operator_ns, "-f", path, "--wait", "--timeout=3m")
            yield Install(operator_ns, env, "synchro.local/operator:" + operator_version())
        finally:
            for pod in operator_pods(env, operator_ns):  # pytest shows it when a test failed
                print(env.core.read_namespaced_pod_log(pod.metadata.name, operator_ns, tail_lines=200))
            subprocess.run([BIN / "helm", "uninstall", RELEASE, "-n", operator_ns], env={"KUBECONFIG": str(KUBECONFIG)})
            # What a failed install leaves outside the namespace would stop the next one.
            scoped = ["clusterroles,clusterrolebindings", "-l", f"app.kubernetes.io/instance={RELEASE}"]
            run(BIN / "kubectl", "delete", "--ignore-not-found", *scoped)
            release_all(apps_ns)  # before an operator on the host could take the SyncCluster up again
            if host_operator:
                cluster_cmd("start-operator", "--as-service-account")


def release_all(namespace: str) -> None:
    """Delete the namespace's SyncClusters, and with no operator running do its deletion work: `synchro release`."""
    kubectl = BIN / "kubectl"
    for name in run(kubectl, "get", "syncclusters", "-n", namespace, "-o", "name").split():
        run(kubectl, "delete", name, "-n", namespace, "--wait=false")
        run(ROOT / "hack" / "kubectl-synchro", "release", name.split("/")[-1], "-n", namespace)
        run(kubectl, "wait", "--for=delete", name, "-n", namespace, "--timeout=30s")


def operator_version() -> str:
    chart = yaml.safe_load((ROOT / "charts" / "synchro" / "Chart.yaml").read_text())
    return str(chart["appVersion"])


def target(name: str) -> dict[str, Any]:
    """A Deployment of the test image that passes "restricted" on its own, as a user's would have to."""
    labels = {"app": name}
    container = {
        "name": "app",
        "image": "synchro.local/test:1",
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "infinity"],
        "securityContext": RESTRICTED_CONTAINER,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
            },
        },
    }


def test_pod_security_admission_enforces_restricted(installed: Install) -> None:
    """The namespaces really enforce "restricted": a root container is refused (so the tests below mean it)."""
    env = installed.env
    pod = {"metadata": {"name": "root"}, "spec": {"containers": [{"name": "c", "image": "synchro.local/test:1"}]}}
    with pytest.raises(client.ApiException) as refused:
        env.core.create_namespaced_pod(env.ns, pod, dry_run="All")
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body)


def test_a_managed_synccluster_goes_ready_with_the_operator_in_cluster(installed: Install, real_node: str) -> None:
    env = installed.env
    operators = operator_pods(env, installed.operator_ns)
    assert len(operators) == 2  # the chart's default: a leader and a standby behind one Lease
    for operator in operators:
        assert ready(operator) and operator.spec.node_name == real_node
        assert operator.spec.containers[0].image == installed.image
        assert operator.spec.service_account_name == OPERATOR
    assert leader(env, installed.operator_ns) in {p.metadata.name for p in operators}
    env.create(target("app"))
    env.create(probed_managed_cluster("live", "app"))
    env.wait_condition("live", "Ready", "True", timeout=240)
    pods = env.core.list_namespaced_pod(env.ns).items
    names = sorted(c.name for p in pods for c in p.spec.containers)
    assert names == ["app", "app", "redis", "synchro-probe", "synchro-probe"]
    assert all(ready(p) and p.spec.node_name == real_node for p in pods)
    assert refused_pods(env, env.ns) == [] and refused_pods(env, installed.operator_ns) == []
    log = env.core.read_namespaced_pod_log(operator.metadata.name, installed.operator_ns)
    denied = [line for line in log.splitlines() if " 403" in line or "orbidden" in line]
    denied = [line for line in denied if "being terminated" not in line]  # another test's namespace going away
    assert not denied, "the operator was denied:\n" + "\n".join(denied)


def test_helm_upgrade_to_a_new_tag_rolls_the_operator_and_no_target(installed: Install) -> None:
    """Both operator pods are replaced and run the new tag, and one leads. It then serves the SyncCluster (a scale
    from 2 to 3, which it must make) without touching a pod template: no running pod is replaced, the sidecar
    keeps its image, and the managed Redis is left as it was."""
    env = installed.env
    before = {p.metadata.uid for p in env.core.list_namespaced_pod(env.ns).items}
    template = env.deployment("app").spec.template
    redis_generation = env.deployment("live-redis").metadata.generation
    old = {p.metadata.uid for p in operator_pods(env, installed.operator_ns)}
    tag = operator_version() + "-upgrade"
    ctr = ["ctr", "--address", CONTAINERD, "-n", "k8s.io", "images", "tag", "--force"]
    run(*ctr, installed.image, f"synchro.local/operator:{tag}")
    chart = ROOT / "charts" / "synchro"
    helm("upgrade", RELEASE, chart, "-n", installed.operator_ns, "--reuse-values", f"--set=image.tag={tag}", "--wait")

    def rolled() -> list[Any]:
        pods = operator_pods(env, installed.operator_ns)
        fresh = [p for p in pods if p.metadata.uid not in old and ready(p)]
        return fresh if len(pods) == len(fresh) == 2 else []

    new = wait_for(rolled, "both operator pods to be replaced", timeout=180)
    assert {p.spec.containers[0].image for p in new} == {f"synchro.local/operator:{tag}"}
    wait_for(lambda: leader(env, installed.operator_ns) in {p.metadata.name for p in new}, "a new pod to lead", 60)
    env.custom.patch_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "live", {"spec": {"replicas": 3}})
    wait_for(lambda: env.deployment("app").spec.replicas == 3, "the upgraded operator to scale the target", 60)
    wait_for(lambda: (env.sc("live")["status"].get("probe") or {}).get("healthy") == 3, "3 healthy pods", 120)
    env.wait_condition("live", "Ready", "True")
    assert env.deployment("app").spec.template == template, "the upgrade rolled the target"
    assert env.deployment("live-redis").metadata.generation == redis_generation
    assert before <= {p.metadata.uid for p in env.core.list_namespaced_pod(env.ns).items}


def test_helm_uninstall_keeps_the_crd_the_synccluster_and_its_targets(installed: Install) -> None:
    env = installed.env
    deployments = {d.metadata.name: d for d in env.apps.list_namespaced_deployment(env.ns).items}
    helm("uninstall", RELEASE, "-n", installed.operator_ns, "--wait")
    wait_for(lambda: not operator_pods(env, installed.operator_ns), "the operator pods to go", timeout=60)
    assert (
        run(BIN / "kubectl", "get", "crd", CRD, "-o", "name").strip()
        == f"customresourcedefinition.apiextensions.k8s.io/{CRD}"
    )
    assert env.sc("live")["metadata"]["name"] == "live"
    for name, before in deployments.items():
        now = env.deployment(name)
        assert (now.metadata.generation, now.spec.replicas) == (before.metadata.generation, before.spec.replicas)
        assert now.spec.template == before.spec.template
    assert "REDIS_URL" in {e.name for e in env.deployment("app").spec.template.spec.containers[0].env or []}
