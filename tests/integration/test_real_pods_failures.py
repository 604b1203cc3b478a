"""The probe's failure cases on the real node: the synchro-probe sidecars and the managed Redis are real
containers, so a failure is a real process killed, paused or restarted, not a host stand-in (test_probe.py has
those cases with host agents beside kwok pods).

A container's processes are host processes here (we are root), so a test finds one by its container's cgroup
(the container ID in the pod's status) and signals it directly: that needs neither the kubelet's exec streaming
nor any tool in the image. Where the kubelet would repair a failure before a probe round could see it, the test
holds the kubelet (SIGSTOP) for at most KUBELET_HELD_S. Every wait is a poll with a deadline; how fast the probe
notices belongs to `make bench`.
"""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from kit import ROOT, Env, container_pid, probed_managed_cluster, real_app, secret

from poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.realnode]
NAMED_S = 60  # generous: the probe names a pod within a few 2 s rounds; the deadline only bounds a failure
# How long the kubelet may be held: well within the node controller's grace (40-50 s), after which it marks every
# pod on the node unready, the managed Redis too, and a failure would read as RedisUnavailable.
KUBELET_HELD_S = 25
CLUSTER_LABEL = "synchro.dev/cluster"


def probed_cluster(env: Env, name: str) -> list[str]:
    """A two-replica app with real synchro-probe sidecars and a managed Redis, healthy; its pods, sorted."""
    env.create(real_app(name, "app", ["sleep", "infinity"]))
    env.create(probed_managed_cluster(name, name))
    all_healthy(env, name, 2, timeout=240)
    pods = sorted(p.metadata.name for p in live_pods(env, name))
    wait_for(
        lambda: hearing(env, name) == {p: [q for q in pods if q != p] for p in pods},
        "each sidecar to hear the other",
        NAMED_S,
    )
    return pods


def live_pods(env: Env, name: str) -> list[Any]:
    pods = env.core.list_namespaced_pod(env.ns, label_selector=f"{CLUSTER_LABEL}={name}").items
    return [p for p in pods if not p.metadata.deletion_timestamp]


def probe_status(env: Env, name: str) -> dict[str, Any]:
    return dict((env.sc(name).get("status") or {}).get("probe") or {})


def unhealthy(env: Env, name: str) -> dict[str, str]:
    return {u["pod"]: u["reason"] for u in probe_status(env, name).get("unhealthy") or []}


def hearing(env: Env, name: str) -> dict[str, list[str]]:
    return {p: sorted(peers) for p, peers in (probe_status(env, name).get("hears") or {}).items()}


def all_healthy(env: Env, name: str, pods: int, timeout: float = NAMED_S, seen: list[str] | None = None) -> None:
    """PubSubHealthy=True about exactly `pods` pods (not about a smaller set that is still Ready). `seen`
    collects every reason observed meanwhile."""

    def check() -> bool:
        c = env.condition(name, "PubSubHealthy")
        if seen is not None:
            seen.append(c["reason"] if c else "")
        probe = probe_status(env, name)
        return bool(
            c
            and (c["status"], c["reason"]) == ("True", "AllPodsHealthy")
            and probe.get("expected") == probe.get("healthy") == pods
        )

    wait_for(check, f"{name}: PubSubHealthy=True AllPodsHealthy with {pods} healthy pods", timeout)


def named(env: Env, name: str, reason: str, pods: dict[str, str], timeout: float = NAMED_S) -> dict[str, Any]:
    """Wait until the condition has `reason` and status.probe.unhealthy is exactly `pods` (pod -> reason)."""

    def check() -> dict[str, Any]:
        c = env.condition(name, "PubSubHealthy") or {}
        now = unhealthy(env, name)
        if (c.get("status"), c.get("reason")) != ("False", reason) or now != pods:
            raise LookupError(f"not yet: {c.get('status')} {c.get('reason')} {c.get('message')!r}, unhealthy {now}")
        return c

    return wait_for(check, f"{name}: PubSubHealthy=False {reason} naming exactly {pods}", timeout)


def agent_pid(env: Env, pod: str) -> int | None:
    return container_pid(env, pod, "synchro-probe", "probe-agent")


def kubelet_pid() -> int:
    pid = int((ROOT / ".cluster" / "pids" / "kubelet.pid").read_text())
    assert os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "kubelet", "the recorded kubelet PID is stale"
    return pid


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP `pid` for the block, and SIGCONT it whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def probe_container(env: Env, pod: str) -> Any:
    p = env.core.read_namespaced_pod(pod, env.ns)
    return next(c for c in p.status.container_statuses if c.name == "synchro-probe")


def pod_ready(env: Env, pod: str) -> bool:
    conditions = env.core.read_namespaced_pod(pod, env.ns).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def test_a_killed_agent_is_named_and_the_kubelet_restart_recovers(real_env: Env) -> None:
    """Within about a second the kubelet sees a killed sidecar, marks the pod unready and restarts the
    container, and the probe only judges ready pods: left alone, whether a probe round falls into that window
    is a race. The kubelet is paused (SIGSTOP) while the agent dies, so the pod stays Ready to the API with
    its agent dead, which is the failure Kubernetes has not seen: the probe alone must name it. The kubelet
    then resumes, restarts the container, and the probe recovers without anyone's help."""
    env, name = real_env, "kill"
    victim, other = probed_cluster(env, name)
    pid = wait_for(lambda: agent_pid(env, victim), f"{victim}'s agent process")
    assert pid != agent_pid(env, other)

    with stopped(kubelet_pid()):
        os.kill(pid, signal.SIGKILL)
        c = named(env, name, "PodsUnreachable", {victim: "NoReply"}, timeout=KUBELET_HELD_S)
        assert victim in c["message"] and other not in c["message"]
        assert pod_ready(env, victim) and probe_container(env, victim).restart_count == 0  # Kubernetes saw nothing
        assert env.condition(name, "Ready")["reason"] == "PodsUnreachable"

    wait_for(
        lambda: probe_container(env, victim).restart_count >= 1 and pod_ready(env, victim),
        f"the kubelet to restart {victim}'s synchro-probe container",
        NAMED_S,
    )
    all_healthy(env, name, 2)
    wait_for(
        lambda: victim in hearing(env, name).get(other, []) and other in hearing(env, name).get(victim, []),
        "the restarted agent and the other to hear each other again",
        NAMED_S,
    )
    new = agent_pid(env, victim)
    assert new is not None and new != pid


def test_a_paused_agent_is_named_and_sigcont_recovers(real_env: Env) -> None:
    """SIGSTOP: the agent keeps its connection and its container keeps running, so Kubernetes sees a healthy
    pod; only the unanswered pings show it."""
    env, name = real_env, "pause"
    victim, other = probed_cluster(env, name)
    pid = wait_for(lambda: agent_pid(env, victim), f"{victim}'s agent process")

    with stopped(pid):
        c = named(env, name, "PodsUnreachable", {victim: "NoReply"})
        assert victim in c["message"] and other not in c["message"]
        assert pod_ready(env, victim) and probe_container(env, victim).restart_count == 0

    all_healthy(env, name, 2)
    assert agent_pid(env, victim) == pid and probe_container(env, victim).restart_count == 0  # same agent


def test_a_pod_on_a_second_redis_is_split_brain(real_env: Env) -> None:
    """A pod of the cluster whose sidecar was given another Redis (a real one, behind its own Service): its
    agent is alive there, so the operator finds its view key on that Redis and reports two groups."""
    env, name = real_env, "split"
    pods = probed_cluster(env, name)

    password = os.urandom(12).hex()
    env.create(secret("other-redis", password))
    env.core.create_namespaced_pod(
        env.ns,
        {
            "metadata": {"name": "other-redis", "labels": {"app": "other-redis"}},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "redis",
                        "image": "synchro.local/redis:7",
                        "imagePullPolicy": "IfNotPresent",
                        # The password from the Secret, never in the pod spec (tests/integration/leaks.py checks).
                        "command": ["sh", "-c", 'exec redis-server --bind 0.0.0.0 --save "" --requirepass "$PASSWORD"'],
                        "env": [
                            {
                                "name": "PASSWORD",
                                "valueFrom": {"secretKeyRef": {"name": "other-redis", "key": "password"}},
                            }
                        ],
                        "ports": [{"name": "redis", "containerPort": 6379}],
                        "securityContext": {"runAsUser": 999, "runAsGroup": 999},
                    }
                ],
            },
        },
    )
    env.core.create_namespaced_service(
        env.ns,
        {
            "metadata": {"name": "other-redis"},
            "spec": {"selector": {"app": "other-redis"}, "ports": [{"name": "redis", "port": 6379}]},
        },
    )
    wait_for(lambda: pod_ready(env, "other-redis"), "the second Redis to be Ready", 120)

    # A copy of a target pod whose sidecar points at the second Redis. Only the cluster label: with the app's
    # labels its ReplicaSet would adopt it and delete a replica.
    source = env.core.api_client.sanitize_for_serialization(env.core.read_namespaced_pod(pods[0], env.ns))
    rogue = {
        "metadata": {
            "name": "rogue",
            "labels": {CLUSTER_LABEL: name},
            "annotations": source["metadata"].get("annotations"),
        },
        "spec": copy.deepcopy(source["spec"]),
    }
    sidecar = next(c for c in rogue["spec"]["containers"] if c["name"] == "synchro-probe")
    other_url = f"redis://:$(SYNCHRO_REDIS_PASSWORD)@other-redis.{env.ns}.svc:6379/0"
    sidecar["env"] = [
        {"name": "SYNCHRO_REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "other-redis", "key": "password"}}},
        *[e for e in sidecar["env"] if e["name"] not in ("SYNCHRO_REDIS_PASSWORD", "SYNCHRO_PROBE_URL")],
        {"name": "SYNCHRO_PROBE_URL", "value": other_url},
    ]
    env.core.create_namespaced_pod(env.ns, rogue)
    wait_for(lambda: pod_ready(env, "rogue"), "the rogue pod to be Ready", 120)

    c = named(env, name, "SplitBrain", {"rogue": "Isolated"})
    assert c["message"].endswith(f"2 groups do not hear each other: {' '.join(pods)} | rogue")
    assert probe_status(env, name)["groups"] == [pods, ["rogue"]]

    env.core.delete_namespaced_pod("rogue", env.ns)
    all_healthy(env, name, 2)


def test_a_managed_redis_restart_is_reported_and_recovers_without_an_operator_restart(real_env: Env) -> None:
    """A deleted Redis pod is replaced in about two seconds here, often within one 2 s probe interval, so a plain
    delete may rightly go unseen. With the kubelet held, the restart is taken in two steps the probe must each
    report: the redis-server process dies (its pod still looks Ready), then its pod is deleted (the Deployment
    has no Redis available, and the replacement cannot start yet). The kubelet then resumes and starts a new,
    empty Redis, and the probe recovers with the same operator process."""
    env, name = real_env, "restart"
    pods = probed_cluster(env, name)
    operator = (ROOT / ".cluster" / "pids" / "operator.pid").read_text()

    def redis_pods() -> list[str]:
        return [
            p.metadata.name
            for p in env.core.list_namespaced_pod(env.ns).items
            if p.metadata.name.startswith(f"{name}-redis-") and not p.metadata.deletion_timestamp
        ]

    old = redis_pods()
    assert len(old) == 1
    redis_pid = wait_for(lambda: container_pid(env, old[0], "redis", "redis-server"), f"{old[0]}'s redis-server")
    seen: list[str] = []  # every PubSubHealthy reason observed until the probe is healthy again

    def reported(redis_reason: str) -> dict[str, Any]:
        status = env.sc(name).get("status") or {}  # one read: the conditions and status.probe of one write
        c = {c["type"]: c for c in status.get("conditions") or []}
        pubsub, redis = c.get("PubSubHealthy") or {}, c.get("RedisReady") or {}
        seen.append(pubsub.get("reason", ""))
        named_pods = {u["pod"]: u["reason"] for u in (status.get("probe") or {}).get("unhealthy") or []}
        if (pubsub.get("reason"), redis.get("reason")) != ("RedisUnavailable", redis_reason) or named_pods != {
            p: "RedisUnavailable" for p in pods
        }:
            raise LookupError(
                f"not yet: PubSubHealthy {pubsub.get('reason')}, RedisReady {redis.get('reason')}, "
                f"unhealthy {named_pods}"
            )
        return pubsub

    with stopped(kubelet_pid()):
        held_until = time.monotonic() + KUBELET_HELD_S
        os.kill(redis_pid, signal.SIGKILL)
        c = wait_for(
            lambda: reported("Unreachable"), f"{name}: Redis gone, RedisUnavailable", held_until - time.monotonic()
        )
        assert c["status"] == "False" and c["message"].startswith("the probe cannot reach Redis")
        env.core.delete_namespaced_pod(old[0], env.ns)
        wait_for(
            lambda: reported("Provisioning"),
            f"{name}: its pod deleted, still RedisUnavailable",
            held_until - time.monotonic(),
        )

    all_healthy(env, name, 2, timeout=120, seen=seen)
    env.wait_condition(name, "Ready", "True")
    assert "WaitingForRollout" not in seen, seen  # the rollout was long done: the probe has something to say
    new = redis_pods()
    assert len(new) == 1 and new != old  # a new Redis pod, with nothing in it
    assert pods == sorted(p.metadata.name for p in live_pods(env, name))  # nothing rolled
    assert env.deployment(name).spec.replicas == 2
    assert (ROOT / ".cluster" / "pids" / "operator.pid").read_text() == operator
