"""The Helm chart and the kustomize overlays, rendered by the real tools and checked against the local cluster.

The dry-run tests create nothing: `kubectl apply --dry-run=server` runs admission and validation and stops
there. They target the `default` namespace, which always exists (a dry run does not create the namespaces
it needs). The last test installs only the chart's RBAC, in a test namespace, and runs the real operator
as the chart's ServiceAccount: a missing rule shows up as a 403.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kit import LOCAL_REDIS, free_port, host_operator_running
from kubernetes import client

from poll import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".cluster" / "bin"
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CHART = ROOT / "charts" / "synchro"
CRD = ROOT / "crds" / "synchro.dev_syncclusters.yaml"
NS = "default"


@pytest.fixture(scope="module")
def helm_bin() -> str:
    if not (BIN / "helm").exists():
        subprocess.run(["python3", str(ROOT / "hack" / "build.py"), "helm"], check=True)
    return str(BIN / "helm")


def run(*argv: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env={"KUBECONFIG": str(KUBECONFIG), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def template(helm: str, *sets: str) -> str:
    flags = [f for s in sets for f in ("--set", s)]
    return run(helm, "template", "dry", str(CHART), "--namespace", NS, *flags)


def kustomize(overlay: str) -> str:
    """An overlay's output, moved into the `default` namespace (synchro-system need not exist)."""
    docs = [
        d
        for d in yaml.safe_load_all(run(str(BIN / "kubectl"), "kustomize", str(ROOT / overlay)))
        if d and d["kind"] != "Namespace"
    ]
    return yaml.safe_dump_all([retarget(d) for d in docs])


def retarget(doc: dict[str, Any]) -> dict[str, Any]:
    """Move an object from synchro-system or apps (single-namespace) to NS: metadata, subjects and `-n`."""
    moved = {"synchro-system": NS, "apps": NS}
    meta = doc["metadata"]
    meta["namespace"] = moved.get(meta.get("namespace"), meta.get("namespace"))
    if meta["namespace"] is None:
        del meta["namespace"]
    for subject in doc.get("subjects") or []:
        subject["namespace"] = moved.get(subject["namespace"], subject["namespace"])
    if doc["kind"] == "Deployment":
        container = doc["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        container["args"] = [moved.get(a, a) if i and args[i - 1] == "-n" else a for i, a in enumerate(args)]
    return doc


def dry_run(manifests: str) -> str:
    return run(str(BIN / "kubectl"), "apply", "--dry-run=server", "-f", "-", stdin=manifests)


def objects(manifests: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(manifests) if d}


def test_helm_lint(helm_bin: str) -> None:
    run(helm_bin, "lint", "--strict", str(CHART))
    run(helm_bin, "lint", "--strict", str(CHART), "--set", "watchNamespaces={apps,web}")


@pytest.mark.parametrize(
    "sets",
    [(), (f"watchNamespaces={{{NS}}}",), ("crds.install=false", "crds.keep=false")],
    ids=["cluster-wide", "watch-namespaces", "no-crds"],
)
def test_chart_passes_a_server_side_dry_run(cluster: client.ApiClient, helm_bin: str, sets: tuple[str, ...]) -> None:
    out = dry_run(template(helm_bin, *sets))
    assert "deployment.apps/dry-synchro created (server dry run)" in out


@pytest.mark.parametrize("overlay", ["manifests/overlays/cluster-wide", "manifests/overlays/single-namespace"])
def test_kustomize_overlay_passes_a_server_side_dry_run(cluster: client.ApiClient, overlay: str) -> None:
    out = dry_run(kustomize(overlay))
    assert "deployment.apps/synchro-operator created (server dry run)" in out


def test_kustomize_crds_build_with_the_load_restrictor_off(cluster: client.ApiClient) -> None:
    built = run(
        str(BIN / "kubectl"), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(ROOT / "manifests" / "crds")
    )
    assert yaml.safe_load(built) == yaml.safe_load(CRD.read_text())
    run(
        str(BIN / "kubectl"),
        "apply",
        "--dry-run=server",
        "--server-side",
        "--field-manager=synchro-dry-run",
        "--force-conflicts",
        "-f",
        "-",
        stdin=built,
    )


def test_chart_crd_is_the_source_crd(helm_bin: str) -> None:
    source = yaml.safe_load(CRD.read_text())
    kept = objects(template(helm_bin))[("CustomResourceDefinition", source["metadata"]["name"])]
    assert kept["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
    assert kept == source
    assert (
        objects(template(helm_bin, "crds.keep=false"))[("CustomResourceDefinition", source["metadata"]["name"])]
        == source
    )
    assert "CustomResourceDefinition" not in {k for k, _ in objects(template(helm_bin, "crds.install=false"))}


def test_chart_and_kustomize_grant_the_same_rules(helm_bin: str) -> None:
    """Both install paths grant the same RBAC, cluster-wide and in one namespace."""
    chart = objects(template(helm_bin))
    kust = objects(kustomize("manifests/overlays/cluster-wide"))
    for role in ("kopf", "kopf-cluster", "app"):
        assert (
            chart[("ClusterRole", f"dry-synchro-{role}")]["rules"] == kust[("ClusterRole", f"synchro-{role}")]["rules"]
        )
    chart = objects(template(helm_bin, f"watchNamespaces={{{NS}}}"))
    kust = objects(kustomize("manifests/overlays/single-namespace"))
    assert {k for k in chart if k[0] == "ClusterRoleBinding"} == {("ClusterRoleBinding", "dry-synchro-kopf-cluster")}
    assert {k for k in kust if k[0] == "ClusterRoleBinding"} == {("ClusterRoleBinding", "synchro-kopf-cluster")}
    assert (
        chart[("ClusterRole", "dry-synchro-kopf-cluster")]["rules"]
        == kust[("ClusterRole", "synchro-kopf-cluster")]["rules"]
    )
    for role in ("kopf", "app"):  # kustomize binds the ClusterRole in the namespace, the chart writes a Role there
        assert kust[("RoleBinding", f"synchro-{role}")]["roleRef"]["kind"] == "ClusterRole"
        assert chart[("Role", f"dry-synchro-{role}")]["rules"] == kust[("ClusterRole", f"synchro-{role}")]["rules"]


def test_chart_deployment_serves_the_watched_namespaces(helm_bin: str) -> None:
    deployment = objects(template(helm_bin, "watchNamespaces={apps,web}"))[("Deployment", "dry-synchro")]
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "synchro-operator"  # the Redis NetworkPolicy
    assert pod["spec"]["containers"][0]["args"] == [
        "run",
        "--liveness",
        "http://0.0.0.0:8080/healthz",
        "-n",
        "apps",
        "-n",
        "web",
    ]


def test_chart_runs_two_replicas_behind_a_lease_by_default(helm_bin: str) -> None:
    chart = objects(template(helm_bin))
    deployment = chart[("Deployment", "dry-synchro")]
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert (env["SYNCHRO_LEASE_NAME"], env["SYNCHRO_LEASE_DURATION_S"]) == ("dry-synchro", "15")
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert chart[("PodDisruptionBudget", "dry-synchro")]["spec"]["minAvailable"] == 1
    assert chart[("Role", "dry-synchro-leader-election")]["metadata"]["namespace"] == NS
    single = objects(template(helm_bin, "leaderElection.enabled=false", "replicas=1"))
    assert single[("Deployment", "dry-synchro")]["spec"]["strategy"]["type"] == "Recreate"
    assert ("PodDisruptionBudget", "dry-synchro") not in single and (
        "Role",
        "dry-synchro-leader-election",
    ) not in single
    refused = subprocess.run(
        [helm_bin, "template", "dry", str(CHART), "--set", "leaderElection.enabled=false"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "replicas > 1 needs leaderElection.enabled" in refused.stderr


def test_chart_rejects_unknown_values(helm_bin: str) -> None:
    result = subprocess.run(
        [helm_bin, "template", "dry", str(CHART), "--set", "replicaCount=2"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "additional properties 'replicaCount' not allowed" in result.stderr


# ---------------------------------------------------------------- the chart's RBAC is enough


WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: example/app}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: example/app}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: chat}
spec:
  replicas: 1
  selector: {matchLabels: {app: chat}}
  template:
    metadata: {labels: {app: chat}}
    spec: {containers: [{name: c, image: example/app}]}
---
apiVersion: synchro.dev/v1alpha1
kind: SyncCluster
metadata: {name: ext}
spec:
  replicas: 2
  redis: {mode: External, external: {url: "LOCAL_REDIS"}}
  targets: [{name: web, preset: generic}, {name: db, kind: StatefulSet, preset: generic}]
---
apiVersion: synchro.dev/v1alpha1
kind: SyncCluster
metadata: {name: chat}
spec:
  deletionPolicy: Retain
  redis: {mode: Managed, managed: {persistence: {enabled: true, size: 1Gi}}}
  targets: [{name: chat, preset: generic}]
---
apiVersion: synchro.dev/v1alpha1
kind: SyncCluster
metadata: {name: lost}
spec:
  redis: {mode: External, external: {url: "LOCAL_REDIS"}}
  targets: [{name: missing, preset: generic}]
"""
MANAGED = [
    "secret",
    "configmap",
    "service",
    "persistentvolumeclaim",
    "networkpolicy",
    "poddisruptionbudget",
    "deployment",
]


def sa_kubeconfig(path: Path, namespace: str, service_account: str) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a short-lived token."""
    kubectl = str(BIN / "kubectl")
    token = run(kubectl, "create", "token", service_account, "-n", namespace).strip()
    server = yaml.safe_load(KUBECONFIG.read_text())["clusters"][0]["cluster"]
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sa"}
    config["clusters"] = [{"name": "c", "cluster": server}]
    config["users"] = [{"name": "sa", "user": {"token": token}}]
    config["contexts"] = [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}]
    path.write_text(yaml.safe_dump(config))
    return path


def test_operator_needs_nothing_the_chart_does_not_grant(
    cluster: client.ApiClient, namespace: str, helm_bin: str, tmp_path: Path
) -> None:
    """The real operator, authenticated as the chart's ServiceAccount in single-namespace mode, does a full
    round: External and Managed Redis, a Deployment and a StatefulSet target, events, Delete and Retain."""
    if host_operator_running():
        pytest.skip("the host operator (hack/cluster.py start-operator) would do the writes as cluster admin")
    kubectl = str(BIN / "kubectl")
    run(kubectl, "apply", "--server-side", "-f", str(CRD))
    run(kubectl, "wait", "--for", "condition=Established", "crd/syncclusters.synchro.dev")
    sets = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "crds.install=false"]
    rendered = run(helm_bin, "template", namespace, str(CHART), "--namespace", namespace, *sets)
    rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    rbac = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in rbac_kinds]
    run(kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    env = {
        "KUBECONFIG": str(sa_kubeconfig(tmp_path / "kubeconfig", namespace, f"{namespace}-synchro")),
        "PYTHONPATH": str(ROOT / "operator"),
        "PATH": "/usr/bin:/bin",
        "SYNCHRO_REDIS_NETWORKS": "127.0.0.0/8",
        "SYNCHRO_METRICS_PORT": "0",  # the host operator may hold 9090
    }
    argv = ["-m", "synchro", "run", "-n", namespace, "--liveness", f"http://127.0.0.1:{free_port()}/healthz"]
    log = tmp_path / "operator.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), *argv], env=env, stdout=out, stderr=out)

    def get(kind: str, name: str, jsonpath: str) -> str:
        return run(kubectl, "get", kind, name, "-n", namespace, "-o", f"jsonpath={jsonpath}")

    def condition(name: str, type_: str) -> str:
        return get("synccluster", name, f'{{.status.conditions[?(@.type=="{type_}")].status}}')

    try:
        run(kubectl, "apply", "-n", namespace, "-f", "-", stdin=WORKLOADS.replace("LOCAL_REDIS", LOCAL_REDIS))
        for name in ("ext", "chat"):  # Ready needs live probe sidecars, which kwok pods do not run
            wait_for(lambda n=name: condition(n, "ConfigInjected") == "True", f"SyncCluster {name} to inject", 90)
        wait_for(lambda: condition("ext", "RedisReady") == "True", "SyncCluster ext to reach Redis", timeout=60)
        for kind in MANAGED:
            get(kind, "chat-redis", "{.metadata.name}")
        # A bring-up posts no event before Ready (which kwok pods never reach here); a problem does.
        reasons = "jsonpath={range .items[*]}{.source.component}/{.reason} {end}"
        wait_for(
            lambda: "synchro/TargetNotFound" in run(kubectl, "get", "events", "-n", namespace, "-o", reasons),
            "the operator's TargetNotFound event",
            30,
        )
        run(kubectl, "delete", "synccluster", "ext", "chat", "lost", "-n", namespace, "--timeout=60s")
        assert "REDIS_URL" not in get("deployment", "web", "{.spec.template.spec}")
        for kind in MANAGED:
            owners = get(kind, "chat-redis", "{.metadata.ownerReferences}")
            assert not owners, f"{kind} chat-redis is still owned after deletionPolicy Retain"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print(log.read_text()[-6000:])  # pytest shows it when the test fails
        print(run(kubectl, "get", "syncclusters", "-n", namespace, "-o", "yaml"))
        for name in run(kubectl, "get", "syncclusters", "-n", namespace, "-o", "name").split():
            run(kubectl, "patch", name, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        cluster_scoped = [d for d in rbac if d["kind"].startswith("Cluster")]
        run(kubectl, "delete", "--ignore-not-found", "-f", "-", stdin=yaml.safe_dump_all(cluster_scoped))
    denied = [line for line in log.read_text().splitlines() if "403" in line or "orbidden" in line]
    assert not denied, "the operator was denied:\n" + "\n".join(denied)


def test_single_namespace_install_cannot_read_secrets_elsewhere(
    cluster: client.ApiClient, namespace: str, helm_bin: str
) -> None:
    """Least privilege, checked by the API server's own authorizer: installed for one namespace, the chart's
    ServiceAccount may read Secrets there and nowhere else, and may not touch cluster-wide Secrets at all."""
    kubectl = str(BIN / "kubectl")
    sets = ["--set", f"watchNamespaces={{{namespace}}}", "--set", "crds.install=false"]
    rendered = run(helm_bin, "template", namespace, str(CHART), "--namespace", namespace, *sets)
    rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    rbac = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in rbac_kinds]
    run(kubectl, "apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
    who = f"--as=system:serviceaccount:{namespace}:{namespace}-synchro"

    def can(*args: str) -> str:
        result = subprocess.run(
            [kubectl, f"--kubeconfig={KUBECONFIG}", "auth", "can-i", who, *args], capture_output=True, text=True
        )
        return result.stdout.strip()

    try:
        assert can("get", "secrets", "-n", namespace) == "yes"
        assert can("patch", "deployments", "-n", namespace) == "yes"
        assert can("get", "secrets", "-n", "kube-system") == "no"
        assert can("list", "secrets", "--all-namespaces") == "no"
        assert can("patch", "deployments", "-n", "default") == "no"
    finally:
        cluster_scoped = [d for d in rbac if d["kind"].startswith("Cluster")]
        run(kubectl, "delete", "--ignore-not-found", "-f", "-", stdin=yaml.safe_dump_all(cluster_scoped))
