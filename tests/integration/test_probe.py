"""Cross-pod pub/sub health, with real probe agents and real redis-servers.

The target pods live on kwok nodes, which run no containers, so each pod's synchro-probe sidecar runs as a
host process fed with the env resolved from that pod's spec (tests/podenv.py), under the pod's own name.
"""

from __future__ import annotations

import base64
import copy
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import Env, RedisServer, app, sync_cluster
from podenv import resolve_env, secret_reader, start_agent

from poll import wait_for

pytestmark = pytest.mark.integration
INTERVAL = 2  # seconds: short, so that the tests are quick; detection times are measured in make bench


class Agents:
    """The synchro-probe sidecars of a SyncCluster's pods, as host processes."""

    def __init__(self, env: Env, tmp: Path) -> None:
        self.env, self.tmp = env, tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def pods(self, cluster: str) -> list[Any]:
        items = self.env.core.list_namespaced_pod(self.env.ns, label_selector=f"synchro.dev/cluster={cluster}").items
        return [p for p in items if not p.metadata.deletion_timestamp]

    def start_for(self, pod: dict[str, Any]) -> None:
        resolved = resolve_env(pod, "synchro-probe", secret_reader(self.env.core, self.env.ns))
        name = pod["metadata"]["name"]
        self.procs[name] = start_agent(resolved, self.tmp / f"agent-{name}.log")

    def start_all(self, cluster: str) -> list[str]:
        api = self.env.core.api_client
        for pod in self.pods(cluster):
            if pod.metadata.name not in self.procs:
                self.start_for(api.sanitize_for_serialization(pod))
        return sorted(self.procs)

    def signal(self, pod: str, sig: int) -> None:
        os.kill(self.procs[pod].pid, sig)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(10)


@pytest.fixture()
def agents(env: Env, tmp_path: Path) -> Iterator[Agents]:
    a = Agents(env, tmp_path)
    yield a
    a.stop_all()


def probed(name: str, targets: list[dict[str, Any]], replicas: int, **spec: Any) -> dict[str, Any]:
    return sync_cluster(name, targets, replicas, probe={"interval": f"{INTERVAL}s", "timeout": "1s"}, **spec)


def ready_pods(env: Env, name: str, count: int) -> None:
    """Wait for exactly `count` live, Ready pods of the injected template (labelled with the cluster)."""

    def ready() -> bool:
        pods = env.core.list_namespaced_pod(env.ns, label_selector=f"synchro.dev/cluster={name}").items
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        return len(live) == count and all(
            any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in live
        )

    wait_for(ready, f"{name}: {count} ready pods of the injected template", 90)


def unhealthy(env: Env, name: str) -> dict[str, str]:
    probe = (env.sc(name).get("status") or {}).get("probe") or {}
    return {u["pod"]: u["reason"] for u in probe.get("unhealthy") or []}


def test_all_pods_healthy_then_a_killed_and_a_paused_agent_are_named(env: Env, agents: Agents) -> None:
    env.create(app("web"))
    env.create(probed("web", [{"name": "web", "preset": "generic"}], replicas=3))
    env.wait_condition("web", "PubSubHealthy", "False", "WaitingForRollout")
    ready_pods(env, "web", 3)
    pods = agents.start_all("web")
    assert len(pods) == 3

    env.wait_condition("web", "PubSubHealthy", "True", "AllPodsHealthy", timeout=60)
    env.wait_condition("web", "Ready", "True")
    probe = env.sc("web")["status"]["probe"]
    assert probe["expected"] == 3 and probe["healthy"] == 3 and probe["unhealthy"] == []
    assert probe["rttMillis"]["p50"] > 0
    wait_for(
        lambda: all(len(v) == 2 for v in env.sc("web")["status"]["probe"]["hears"].values()),
        "every pod to hear both others",
        30,
    )

    killed, paused = pods[0], pods[1]
    agents.procs[killed].kill()
    c = env.wait_condition("web", "PubSubHealthy", "False", "PodsUnreachable", timeout=30)
    assert killed in c["message"]
    wait_for(lambda: unhealthy(env, "web").get(killed) == "NoReply", f"{killed} named as NoReply", 30)

    agents.signal(paused, signal.SIGSTOP)  # connected, but not answering
    wait_for(lambda: unhealthy(env, "web").get(paused) == "NoReply", f"paused {paused} named", 30)
    assert pods[2] not in unhealthy(env, "web")
    assert any(e.reason == "PodsUnreachable" for e in env.events("web"))

    agents.signal(paused, signal.SIGCONT)
    del agents.procs[killed]
    agents.start_all("web")
    env.wait_condition("web", "PubSubHealthy", "True", "AllPodsHealthy", timeout=60)


def test_a_pod_on_another_redis_is_split_brain(env: Env, agents: Agents, redis_server: RedisServer) -> None:
    env.create(app("chat"))
    env.create(probed("chat", [{"name": "chat", "preset": "generic"}], replicas=2))
    ready_pods(env, "chat", 2)
    agents.start_all("chat")
    env.wait_condition("chat", "PubSubHealthy", "True", "AllPodsHealthy", timeout=60)

    # A pod of the same cluster whose config points at a second Redis: its agent is alive, but elsewhere.
    pod = env.core.list_namespaced_pod(env.ns, label_selector="synchro.dev/cluster=chat").items[0]
    rogue = copy.deepcopy(env.core.api_client.sanitize_for_serialization(pod))
    # Only the cluster label: with the app's labels its ReplicaSet would adopt the pod and delete one.
    rogue["metadata"] = {
        "name": "rogue",
        "labels": {"synchro.dev/cluster": "chat"},
        "annotations": rogue["metadata"].get("annotations"),
    }
    rogue.pop("status", None)
    probe = next(c for c in rogue["spec"]["containers"] if c["name"] == "synchro-probe")
    probe["env"] = [
        {"name": "SYNCHRO_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "other-redis", "key": "password"}}},
        *[e for e in probe["env"] if e["name"] != "SYNCHRO_PROBE_URL"],
        {"name": "SYNCHRO_PROBE_URL", "value": f"redis://:$(SYNCHRO_REDIS_PASSWORD)@127.0.0.1:{redis_server.port}/0"},
    ]
    env.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "other-redis"},
            "data": {"password": base64.b64encode(redis_server.password.encode()).decode()},
        }
    )
    env.core.create_namespaced_pod(env.ns, rogue)
    wait_for(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in env.core.read_namespaced_pod("rogue", env.ns).status.conditions or []
        ),
        "the rogue pod to be Ready",
    )
    agents.start_for(env.core.api_client.sanitize_for_serialization(env.core.read_namespaced_pod("rogue", env.ns)))

    c = env.wait_condition("chat", "PubSubHealthy", "False", "SplitBrain", timeout=60)
    assert "rogue" in c["message"]
    groups = env.sc("chat")["status"]["probe"]["groups"]
    assert len(groups) == 2 and groups[1] == ["rogue"] and len(groups[0]) == 2
    assert unhealthy(env, "chat") == {"rogue": "Isolated"}


def test_redis_restart_is_reported_and_recovers_without_an_operator_restart(
    env: Env, agents: Agents, redis_server: RedisServer
) -> None:
    env.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth"},
            "data": {"password": base64.b64encode(redis_server.password.encode()).decode()},
        }
    )
    env.create(app("doc"))
    external = {"url": f"redis://127.0.0.1:{redis_server.port}/1", "passwordSecretRef": {"name": "auth"}}
    env.create(
        probed(
            "doc", [{"name": "doc", "preset": "generic"}], replicas=2, redis={"mode": "External", "external": external}
        )
    )
    ready_pods(env, "doc", 2)
    agents.start_all("doc")
    env.wait_condition("doc", "PubSubHealthy", "True", "AllPodsHealthy", timeout=60)

    redis_server.stop()
    env.wait_condition("doc", "PubSubHealthy", "False", "RedisUnavailable", timeout=30)
    assert env.deployment("doc").spec.replicas == 2  # an outage does not scale the app down

    redis_server.start()
    env.wait_condition("doc", "PubSubHealthy", "True", "AllPodsHealthy", timeout=60)
    env.wait_condition("doc", "Ready", "True")


def test_synchro_status_prints_the_matrix(env: Env, agents: Agents) -> None:
    env.create(app("mx"))
    env.create(probed("mx", [{"name": "mx", "preset": "generic"}], replicas=2))
    ready_pods(env, "mx", 2)
    agents.start_all("mx")
    wait_for(
        lambda: all(
            len(v) == 1
            for v in ((env.sc("mx").get("status") or {}).get("probe") or {}).get("hears", {"x": []}).values()
        ),
        "both pods to hear each other",
        60,
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [str(root / "hack" / "kubectl-synchro"), "status", "mx", "-n", env.ns],
        env={**os.environ, "KUBECONFIG": str(root / ".cluster" / "kubeconfig")},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "who hears whom" in out and "2/2 healthy" in out
    assert sum(1 for line in out.splitlines() if line.rstrip().endswith(" ok")) == 2


def test_no_sidecar_means_no_probe(env: Env) -> None:
    env.create(app("plain"))
    env.create(sync_cluster("plain", [{"name": "plain", "preset": "generic"}], replicas=1))
    env.wait_condition("plain", "Ready", "True")
    assert env.condition("plain", "PubSubHealthy") is None
    containers = [c.name for c in env.deployment("plain").spec.template.spec.containers]
    assert containers == ["c0"]


def test_the_sidecar_is_injected_with_the_apps_endpoint(env: Env) -> None:
    env.create(app("side", containers=2))
    env.create(probed("side", [{"name": "side", "preset": "generic", "containers": ["c0"]}], replicas=1))
    env.wait_condition("side", "ConfigInjected", "True")
    d = env.deployment("side")
    names = [c.name for c in d.spec.template.spec.containers]
    assert names == ["c0", "c1", "synchro-probe"]
    probe = {e.name: e for e in d.spec.template.spec.containers[2].env}
    assert probe["SYNCHRO_PROBE_URL"].value == env.env_of("side")["REDIS_URL"].value
    assert probe["POD_NAME"].value_from.field_ref.field_path == "metadata.name"
