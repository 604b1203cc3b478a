"""Control-plane faults (issue 17): etcd stopped and started, the operator SIGKILLed between the inject and the
scale, its watches black-holed, the apiserver restarted during a burst.

Each test builds its data first, makes one fault, then counts exactly. Every bound comes from timeouts.py; the
measured times are printed (`-s`) and recorded in docs/reliability.md. They restart components of this
worktree's cluster only, by the PIDs hack/cluster.py recorded, and leave the session's operator running.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from blackhole import BlackHole
from kit import (
    GROUP,
    KUBECTL,
    PLURAL,
    ROOT,
    VERSION,
    Env,
    app,
    cluster_cmd,
    probed_managed_cluster,
    real_app,
    sync_cluster,
)
from kubernetes import client
from kubernetes.stream import stream
from timeouts import TIMEOUTS

from poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]
PIDS = ROOT / ".cluster" / "pids"
OPERATOR_LOG = ROOT / ".cluster" / "logs" / "operator.log"


@pytest.fixture(scope="module", autouse=True)
def without_leader_election() -> Iterator[None]:
    """The module's operators run without leader election: these faults are about what kopf and the passes survive
    in one process. With election on (the chart's default), an API server out of reach for longer than the renew
    deadline, or a process frozen that long, makes the leader exit at once for its pod to restart
    (docs/install.md, High availability), and nothing restarts a host process."""
    os.environ["SYNCHRO_LEADER_ELECTION"] = "false"  # read by every operator cluster.py starts from here
    cluster_cmd("stop-operator")
    cluster_cmd("start-operator", "--as-service-account")
    try:
        yield
    finally:
        del os.environ["SYNCHRO_LEADER_ELECTION"]
        cluster_cmd("stop-operator")
        cluster_cmd("start-operator", "--as-service-account")


def pid(component: str) -> int:
    return int((PIDS / f"{component}.pid").read_text())


def state(process: int) -> str:
    """The process's state letter (R, S, T for stopped, Z), or "" once it is gone."""
    try:
        return Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def hold(seconds: float, fault_holds: Callable[[], bool], what: str) -> None:
    """Keep a fault in place for its duration, checking all along that it really holds (a fault that did not
    happen would prove nothing)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert fault_holds(), f"the fault did not hold: {what}"
        time.sleep(1)


def kubectl(*args: str) -> str:
    return subprocess.run(
        [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", *args], check=True, capture_output=True, text=True
    ).stdout


@contextmanager
def own_operator(**env: str) -> Iterator[int]:
    """The session's operator replaced by one started with `env`; the session's own is back afterwards."""
    cluster_cmd("stop-operator")
    try:
        subprocess.run(
            ["python3", str(ROOT / "hack" / "cluster.py"), "start-operator", "--as-service-account"],
            check=True,
            capture_output=True,
            env={**os.environ, **env},
        )
        yield pid("operator")
    finally:
        cluster_cmd("stop-operator")
        cluster_cmd("start-operator", "--as-service-account")


def log_since(offset: int, needle: str) -> list[str]:
    with OPERATOR_LOG.open(errors="replace") as log:
        log.seek(offset)
        return [line for line in log if needle in line]


def settled(env: Env, name: str, replicas: int) -> None:
    env.wait_condition(name, "Ready", "True", timeout=TIMEOUTS.ready)
    wait_for(lambda: env.deployment(name).status.ready_replicas == replicas, f"{replicas} ready", TIMEOUTS.ready)


def test_sigkill_between_inject_and_scale_resumes_once(env: Env) -> None:
    """Issue 17 item 5. The hook stops the operator right after it wrote the inject (held at one replica) and
    before any scale write; it is SIGKILLed there. The restarted operator scales the target once, from what it
    observes, and rolls nothing again: still two ReplicaSets (the user's and the injected one), revision 2."""
    env.create(app("held"))
    wait_for(lambda: len(env.replica_sets("held")) == 1, "the user's own ReplicaSet", TIMEOUTS.ready)
    with own_operator(SYNCHRO_TEST_HALT_AFTER_INJECT=env.ns) as halting:
        env.create(sync_cluster("held", [{"name": "held", "preset": "generic"}], replicas=3))
        wait_for(lambda: state(halting) == "T", "the operator to halt after the inject", TIMEOUTS.halted)
        injected = env.deployment("held")
        assert injected.spec.replicas == 1 and injected.spec.template.spec.containers[0].env, "inject not written"
        os.kill(halting, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: state(halting) in ("", "Z"), "the SIGKILLed operator to be gone", 10)
        restarted_at = OPERATOR_LOG.stat().st_size
    bound = TIMEOUTS.scaled_after_restart
    wait_for(lambda: env.deployment("held").status.ready_replicas == 3, "3 ready replicas after the restart", bound)
    env.wait_condition("held", "Ready", "True", timeout=bound)
    print(f"\nitem 5: 3 ready replicas and Ready {time.monotonic() - killed:.1f}s after the SIGKILL (restart included)")
    after = env.deployment("held")
    assert len(env.replica_sets("held")) == 2, [rs.metadata.name for rs in env.replica_sets("held")]
    assert after.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert after.spec.template == injected.spec.template  # the same injected config: nothing rolled twice
    applied = log_since(restarted_at, "applied Deployment held (")
    assert len(applied) == 1 and "replicas 3" in applied[0], applied  # scaled once, by one write


def api_ready() -> bool:
    out = subprocess.run(
        [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", "get", "--raw=/readyz", "--request-timeout=3s"],
        capture_output=True,
    )
    return out.returncode == 0


def test_etcd_stopped_then_started_a_scale_is_applied_after_recovery(env: Env) -> None:
    """Issue 17 item 2: etcd stopped for 20 s (the apiserver unready all along), then started. The same operator
    process (no restart) applies a `kubectl scale` made after recovery within the bound, and rolls nothing."""
    env.create(app("steady"))
    env.create(sync_cluster("steady", [{"name": "steady", "preset": "generic"}], replicas=2))
    settled(env, "steady", 2)
    operator = pid("operator")

    cluster_cmd("stop", "etcd")
    hold(TIMEOUTS.etcd_down, lambda: not api_ready(), "the apiserver stayed ready without etcd")
    cluster_cmd("up")  # starts etcd again; returns once /readyz answers
    wait_for(api_ready, "the apiserver ready again", TIMEOUTS.api_back)

    kubectl("scale", "-n", env.ns, "synccluster/steady", "--replicas=3")
    scaled = time.monotonic()
    wait_for(lambda: env.deployment("steady").spec.replicas == 3, "the scale applied", TIMEOUTS.scale_after_recovery)
    print(f"\nitem 2: the scale applied {time.monotonic() - scaled:.1f}s after it was made")
    assert pid("operator") == operator and state(operator) not in ("", "Z"), "the operator was restarted"
    generation = env.sc("steady")["metadata"]["generation"]
    wait_for(lambda: env.sc("steady")["status"]["observedGeneration"] == generation, "status to follow", 10)
    # Not the third pod's readiness: once, kwok v0.7.0 left a pod made after the outage Ready=False for good.
    assert len(env.replica_sets("steady")) == 2  # the user's and the injected one: the scale rolled nothing


ETCD_URL = f"http://127.0.0.1:{2379 + int(os.environ.get('SYNCHRO_PORT_OFFSET', '0'))}"


def compact_etcd() -> int:
    """Compact etcd at its current revision (through its JSON gateway): every older resourceVersion is gone."""
    revision = int(json.loads(etcd("range", {"key": "AA==", "limit": 1}))["header"]["revision"])
    etcd("compaction", {"revision": revision, "physical": True})
    return revision


def etcd(call: str, body: dict[str, object]) -> str:
    request = urllib.request.Request(f"{ETCD_URL}/v3/kv/{call}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(answer.read().decode())


@contextmanager
def operator_frozen() -> Iterator[int]:
    """The session's operator stopped (SIGSTOP) while the block runs: it sees no watch event meanwhile."""
    operator = pid("operator")
    os.kill(operator, signal.SIGSTOP)
    try:
        yield operator
    finally:
        os.kill(operator, signal.SIGCONT)


def restart_apiserver() -> None:
    cluster_cmd("stop", "kube-apiserver")
    cluster_cmd("up")  # returns once /readyz answers


def names(items: list[dict[str, Any]]) -> set[str]:
    return {i["metadata"]["name"] for i in items}


RELISTED = re.compile(r"a (?P<kind>\w+) watch listed again \(410 Gone\): (?P<ghosts>\d+) deleted meanwhile")


def test_410_gone_leaves_no_stale_claim_or_cached_target(env: Env) -> None:
    """Issue 17 item 4. While the operator is frozen, a SyncCluster and a target are deleted, etcd is compacted
    past every resourceVersion the operator knows, and the apiserver restarts (its watch cache starts afresh):
    the thawed operator's watches get 410 Gone and list again, which brings no DELETED event. Neither ghost may
    steer the next passes: the SyncCluster that lost the conflict to the deleted one takes the target, and the
    one whose target was deleted says TargetNotFound."""
    env.create(app("shared"))
    env.create(sync_cluster("first", [{"name": "shared", "preset": "generic"}]))
    env.wait_condition("first", "Ready", "True", timeout=TIMEOUTS.ready)
    env.create(sync_cluster("second", [{"name": "shared", "preset": "generic"}]))
    env.wait_condition("second", "ConfigInjected", "False", "TargetConflict", timeout=TIMEOUTS.ready)
    env.create(app("lost"))
    env.create(sync_cluster("lonely", [{"name": "lost", "preset": "generic"}]))
    env.wait_condition("lonely", "Ready", "True", timeout=TIMEOUTS.ready)

    gone: dict[str, Any] = {"finalizers": None}
    log_from = OPERATOR_LOG.stat().st_size
    with operator_frozen():
        restart_apiserver()  # its watch connections closed: the deletions below never reach them
        # Deleted with no operator to see it: its finalizer removed by hand, as `kubectl patch` would.
        env.custom.patch_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "first", {"metadata": gone})
        env.custom.delete_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL, "first")
        env.apps.delete_namespaced_deployment("lost", env.ns, propagation_policy="Background")
        wait_for(
            lambda: not names(env.custom.list_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL)["items"])
            & {"first"},
            "first gone",
            30,
        )
        compact_etcd()
        restart_apiserver()  # a watch cache that starts past every resourceVersion the operator knows
    thawed = time.monotonic()
    env.wait_condition("second", "ConfigInjected", "True", timeout=TIMEOUTS.gone_settled)
    env.wait_condition("lonely", "ConfigInjected", "False", "TargetNotFound", timeout=TIMEOUTS.gone_settled)
    print(f"\nitem 4: both decisions right {time.monotonic() - thawed:.1f}s after the thaw")

    # The fault happened: one SyncCluster and one Deployment were ghosts. Polled: the two watches list again each
    # on its own, and the decisions above can be right before the second one has logged it (seen once in CI).
    # At least one each: a watch also forgets objects an earlier test deleted while it was away (a cold CI run
    # logged "2 deleted meanwhile" for both kinds).
    def both() -> dict[str, int] | None:
        said = (RELISTED.search(line) for line in log_since(log_from, "listed again (410 Gone)"))
        found = {m["kind"]: int(m["ghosts"]) for m in said if m}
        return found if found.keys() >= {"SyncCluster", "Deployment"} else None

    relisted = wait_for(both, "both watches to say they listed again", 30)
    assert relisted["SyncCluster"] >= 1 and relisted["Deployment"] >= 1, relisted
    wait_for(lambda: log_since(log_from, "Daemon 'controller' succeeded"), "the deleted one's loop to end", 10)


def test_blackholed_watches_resume_after_the_block(env: Env) -> None:
    """Issue 17 item 3: the operator's API connections black-holed for 90 s (nothing flows, no RST, no FIN), and
    those it had then never come back. A `kubectl scale` made during the block is applied within the bound after
    the block is lifted, by the same operator process: kopf's watch timeouts (handlers.configure) drop the dead
    streams and connect again."""
    env.create(app("cut"))
    api = ("127.0.0.1", 6443 + int(os.environ.get("SYNCHRO_PORT_OFFSET", "0")))
    with BlackHole(api) as hole, own_operator(SYNCHRO_OPERATOR_API_URL=f"https://127.0.0.1:{hole.port}") as op:
        # Created now, so that the operator behind the proxy is the one that serves it: the block must fall on
        # an operator whose watches run, not on one still starting (once, the session's operator had served a
        # SyncCluster created earlier, and the block cut the new one's start-up: not this fault).
        env.create(sync_cluster("cut", [{"name": "cut", "preset": "generic"}], replicas=2))
        settled(env, "cut", 2)
        hole.freeze(forget=True)  # the connections open now never come back, as behind a NAT that forgot them
        kubectl("scale", "-n", env.ns, "synccluster/cut", "--replicas=3")  # made during the block, not through it
        hold(TIMEOUTS.blackhole, lambda: env.deployment("cut").spec.replicas == 2, "the operator acted through it")
        hole.thaw()
        thawed = time.monotonic()
        wait_for(lambda: env.deployment("cut").spec.replicas == 3, "the scale applied", TIMEOUTS.change_after_blackhole)
        print(f"\nitem 3: the scale made during the block applied {time.monotonic() - thawed:.1f}s after it")
        assert pid("operator") == op and state(op) not in ("", "Z"), "the operator was restarted"
        assert hole.connections > len(hole.forgotten) // 2, "the operator never connected again"


BURST = 100


def create_until_done(create: Callable[[], object]) -> None:
    """Create through an apiserver that may be down: retried until it succeeds, or answers 409 (an earlier try
    went through, its answer lost)."""

    def attempt() -> bool:
        try:
            create()
        except client.ApiException as e:
            if e.status != 409:
                raise
        return True

    wait_for(attempt, "a create to go through", TIMEOUTS.api_back)


def test_apiserver_killed_during_a_burst_of_synccluster_creations(env: Env) -> None:
    """Issue 17 item 1, on kwok: kube-apiserver SIGKILLed after a third of 100 SyncClusters were created, and
    started again (in the cluster's mode) while the rest are created. All 100 go Ready; every target was injected
    once (one config per target in the operator's log) and rolled once (revision 2, two ReplicaSets)."""
    for i in range(BURST):
        env.create(app(f"b{i}"))
    wait_for(lambda: len(env.apps.list_namespaced_replica_set(env.ns).items) == BURST, "the targets' own RS", 120)
    log_from = OPERATOR_LOG.stat().st_size
    restart: threading.Thread | None = None
    for i in range(BURST):
        if i == BURST // 3:
            os.kill(pid("kube-apiserver"), signal.SIGKILL)
            killed = time.monotonic()
            restart = threading.Thread(target=cluster_cmd, args=("up",))  # the rest are created meanwhile
            restart.start()
        spec = sync_cluster(f"b{i}", [{"name": f"b{i}", "preset": "generic"}], replicas=1)
        create_until_done(lambda: env.create(spec))  # noqa: B023 (called at once)
    assert restart is not None
    restart.join()

    def ready() -> int:
        items = env.custom.list_namespaced_custom_object(GROUP, VERSION, env.ns, PLURAL)["items"]
        conditions = [{c["type"]: c["status"] for c in (i.get("status") or {}).get("conditions") or []} for i in items]
        return sum(c.get("Ready") == "True" for c in conditions)

    wait_for(lambda: ready() == BURST, f"{BURST} SyncClusters Ready", TIMEOUTS.burst_ready)
    print(f"\nitem 1: {BURST} Ready {time.monotonic() - killed:.1f}s after the kill")
    died = log_since(log_from, "failed with an exception")  # kopf starts a dead loop again only 60 s later
    assert not died, died[:3]
    revisions = {
        d.metadata.name: d.metadata.annotations.get("deployment.kubernetes.io/revision")
        for d in env.apps.list_namespaced_deployment(env.ns).items
    }
    assert set(revisions.values()) == {"2"}, {n: r for n, r in revisions.items() if r != "2"}
    per_target = collections.Counter(
        rs.metadata.labels["app"] for rs in env.apps.list_namespaced_replica_set(env.ns).items
    )
    assert set(per_target.values()) == {2}, {n: c for n, c in per_target.items() if c != 2}
    configs: dict[str, set[str]] = collections.defaultdict(set)
    for line in log_since(log_from, "applied Deployment b"):
        if found := re.search(r"applied Deployment (b\d+) \(config (\w+),", line):
            configs[found[1]].add(found[2])
    # An apply the killed apiserver carried out but never answered leaves no log line (seen for 2 of 100 on the
    # real node): the revisions and ReplicaSets above are the count; the log may only never show two configs.
    assert all(len(c) == 1 for c in configs.values()), "a target was injected twice"


def test_after_an_apiserver_restart_a_new_managed_redis_is_reached_by_name(real_env: Env) -> None:
    """Issue 17 item 1, on the real node: kube-apiserver SIGKILLed and started again by `cluster.py up`, which
    keeps the cluster's mode. A Managed SyncCluster created afterwards goes PubSubHealthy: its target pods' probe
    sidecars reach Redis by the Service's DNS name, so CoreDNS learnt a Service created after the restart. Restarted
    bound to loopback (SYNCHRO_API_BIND=127.0.0.1, what `up` did before it kept the mode), this test fails: the
    pods run and the operator reaches Redis at its pod IP, but every sidecar reports NoReply (tried)."""
    env = real_env
    apiserver = pid("kube-apiserver")
    os.kill(apiserver, signal.SIGKILL)
    wait_for(lambda: state(apiserver) in ("", "Z"), "the apiserver gone", 10)
    cluster_cmd("up")
    wait_for(api_ready, "the apiserver ready again", TIMEOUTS.api_back)

    env.create(real_app("named", "app", ["sleep", "infinity"]))
    env.create(probed_managed_cluster("named", "named"))
    host = f"named-redis.{env.ns}.svc"
    env.wait_condition("named", "PubSubHealthy", "True", "AllPodsHealthy", timeout=TIMEOUTS.real_ready)
    pod = env.core.list_namespaced_pod(env.ns, label_selector="synchro.dev/cluster=named").items[0]
    resolved = stream(
        env.core.connect_get_namespaced_pod_exec,
        pod.metadata.name,
        env.ns,
        container="synchro-probe",
        command=["python3", "-c", f"import socket; print(socket.gethostbyname({host!r}))"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    ).strip()
    service = env.core.read_namespaced_service("named-redis", env.ns)
    assert resolved == service.spec.cluster_ip, f"{host} resolved to {resolved!r} in {pod.metadata.name}"
