"""Two operator replicas behind one Lease (issue 16): the leader killed, the leader cut off from the API server,
both restarted at once. The replicas run on the host as the chart's ServiceAccount (replicas.py), with the tests'
short Lease timings (8 s duration, 4 s renew deadline, 1 s retry); the session's operator is stopped meanwhile,
so that only the pair serves (cluster-wide, like the chart)."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blackhole import BlackHole
from kit import KUBECTL, ROOT, Env, app, cluster_cmd, sync_cluster
from kubernetes import client
from replicas import Replica, ReplicaExited, lease_holder, service_account_kubeconfig, through

from poll import wait_for

pytestmark = pytest.mark.integration
AUDIT_LOG = ROOT / ".cluster" / "logs" / "audit.log"


def host_operator_running() -> bool:
    pid_file = ROOT / ".cluster" / "pids" / "operator.pid"
    return pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists()


@pytest.fixture(scope="module")
def sa_kubeconfig(cluster: client.ApiClient, synccluster_crd: None) -> Iterator[Path]:
    """The chart ServiceAccount's kubeconfig, with the session's operator stopped for this module."""
    was_running = host_operator_running()
    cluster_cmd("stop-operator")
    yield service_account_kubeconfig()
    if was_running:
        cluster_cmd("start-operator", "--as-service-account")


@pytest.fixture()
def pair(
    cluster: client.ApiClient, namespace: str, sa_kubeconfig: Path, tmp_path: Path
) -> Iterator[tuple[Env, str, list[Replica]]]:
    """An Env for the namespace, a fresh Lease name, and the list the test appends its replicas to (all
    stopped at the end, their logs shown when the test fails)."""
    started: list[Replica] = []
    yield Env(cluster, namespace), f"failover-{uuid.uuid4().hex[:6]}", started
    for replica in started:  # all at once: each takes seconds to stop kopf
        if replica.exited() is None:
            replica.proc.terminate()  # type: ignore[union-attr]
    for replica in started:
        replica.stop()
        print(f"---- {replica.identity}\n{replica.tail()}")


def start(replicas: list[Replica], replica: Replica) -> Replica:
    replicas.append(replica.start())
    return replica


def scale(env: Env, name: str, replicas: int) -> None:
    subprocess.run(
        [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", "scale", "-n", env.ns, f"synccluster/{name}",
         f"--replicas={replicas}"],
        check=True,
        capture_output=True,
    )  # fmt: skip


def leader_and_standby(
    api: client.ApiClient, env: Env, lease: str, kubeconfig: Path, log_dir: Path, replicas: list[Replica]
) -> tuple[Replica, Replica]:
    """Replica a takes the Lease, then b starts and stands by; a's pass brings web up to 2 replicas."""
    a = start(replicas, Replica("a", lease, kubeconfig, log_dir))
    wait_for(a.leads, "replica a to take the Lease", fatal=(ReplicaExited,))
    b = start(replicas, Replica("b", lease, kubeconfig, log_dir))
    wait_for(lambda: b.role() == "standby b; leader: a", "replica b to stand by behind a", fatal=(ReplicaExited,))
    assert b.leader_metric() == 0 and a.leader_metric() == 1
    env.create(app("web"))
    env.create(sync_cluster("web", [{"name": "web", "preset": "generic"}], replicas=2))
    wait_for(lambda: env.deployment("web").spec.replicas == 2, "web at 2 replicas, set by the leader")
    return a, b


def test_a_killed_leader_is_replaced_and_a_scale_made_meanwhile_reaches_the_target(
    cluster: client.ApiClient, pair: tuple[Env, str, list[Replica]], sa_kubeconfig: Path, tmp_path: Path
) -> None:
    env, lease, replicas = pair
    a, b = leader_and_standby(cluster, env, lease, sa_kubeconfig, tmp_path, replicas)
    assert lease_holder(cluster, lease) == ("a", 0)

    killed = time.monotonic()
    a.kill()  # as a node's death or a forced pod delete: no release, the Lease has to run out
    scale(env, "web", 4)  # made while no replica leads
    wait_for(lambda: env.deployment("web").spec.replicas == 4, "the standby to scale web to 4", timeout=60)
    print(f"kill -> the standby's write: {time.monotonic() - killed:.1f} s (Lease duration {a.timings['duration']} s)")
    assert b.leads() and b.leader_metric() == 1
    assert lease_holder(cluster, lease) == ("b", 1)


def audited_writes(source: str, since: datetime.datetime) -> list[dict[str, Any]]:
    """The API server's audit lines (hack/cluster.py: every write by the operator's ServiceAccount) of writes that
    came from `source` after `since` and were carried out (any answer below 400)."""
    assert AUDIT_LOG.exists(), "no audit log: this API server predates it; `python3 hack/cluster.py down` then `up`"
    found = []
    for line in AUDIT_LOG.read_text().splitlines():
        event = json.loads(line)
        received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if source in event.get("sourceIPs", []) and received > since and event["responseStatus"]["code"] < 400:
            found.append(event)
    return found


def test_a_leader_cut_off_from_the_api_server_stops_before_its_lease_expires(
    cluster: client.ApiClient, pair: tuple[Env, str, list[Replica]], sa_kubeconfig: Path, tmp_path: Path
) -> None:
    """Replica a reaches the API server only through a black hole (from 127.0.0.2, which the audit log names);
    frozen, a hears nothing, no RST, no FIN. It must exit on its own before b may take the Lease, and none of its
    writes may land after the cut, not even what it had in flight once the path heals."""
    env, lease, replicas = pair
    server = json.loads(sa_kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    with BlackHole(("127.0.0.1", int(server.rsplit(":", 1)[1])), source="127.0.0.2") as hole:
        cut_kubeconfig = through(sa_kubeconfig, f"https://127.0.0.1:{hole.port}", tmp_path / "cut.kubeconfig")
        a = start(replicas, Replica("a", lease, cut_kubeconfig, tmp_path))
        wait_for(a.leads, "replica a to take the Lease through the proxy", fatal=(ReplicaExited,))
        b = start(replicas, Replica("b", lease, sa_kubeconfig, tmp_path))
        wait_for(lambda: b.role() == "standby b; leader: a", "replica b to stand by behind a", fatal=(ReplicaExited,))
        env.create(app("web"))
        env.create(sync_cluster("web", [{"name": "web", "preset": "generic"}], replicas=2))
        env.wait_condition("web", "Ready", "True")  # a's passes are done: it has nothing left to write
        assert audited_writes("127.0.0.2", datetime.datetime.min.replace(tzinfo=datetime.UTC)), "a's writes unseen"

        hole.freeze()
        cut = datetime.datetime.now(datetime.UTC)  # from here on, not a byte of a's reaches the API server
        scale(env, "web", 4)  # only b can carry it out
        a_alive_when_b_took: list[bool] = []

        def b_took() -> bool:
            if lease_holder(cluster, lease)[0] != "b":
                return False
            a_alive_when_b_took.append(a.exited() is None)
            return True

        wait_for(b_took, "replica b to take the Lease", timeout=60)
        assert a_alive_when_b_took == [False], "a still ran when b took its Lease:\n" + a.tail()
        assert a.exited() == 1 and "no Lease renewal" in a.tail()
        wait_for(lambda: env.deployment("web").spec.replicas == 4, "replica b to scale web to 4")

        hole.thaw()  # the path heals: whatever a had sent meanwhile reaches the API server now
        wait_for(lambda: hole.pumps == 0, "a's last connections to drain through the healed path")
    assert audited_writes("127.0.0.2", cut) == []


def test_both_replicas_restarted_at_once_change_nothing(
    cluster: client.ApiClient, pair: tuple[Env, str, list[Replica]], sa_kubeconfig: Path, tmp_path: Path
) -> None:
    env, lease, replicas = pair
    leader_and_standby(cluster, env, lease, sa_kubeconfig, tmp_path, replicas)
    env.wait_condition("web", "Ready", "True")
    before = (env.deployment("web").metadata.resource_version, env.sc("web")["metadata"]["resourceVersion"])
    restarted = datetime.datetime.now(datetime.UTC)

    for replica in replicas:  # SIGTERM both at once, as a rollout of every pod or a node restart would
        replica.proc.terminate()  # type: ignore[union-attr]
    for replica in replicas:
        assert replica.proc.wait(30) == 0  # type: ignore[union-attr]
    replicas[:] = [start([], Replica(r.identity, lease, sa_kubeconfig, tmp_path)) for r in replicas]
    env.create(app("marker"))
    env.create(sync_cluster("marker", [{"name": "marker", "preset": "generic"}]))
    env.wait_condition("marker", "Ready", "True")  # whichever took the Lease has made its first passes

    assert (env.deployment("web").metadata.resource_version, env.sc("web")["metadata"]["resourceVersion"]) == before
    seen = [e for e in audited_writes("127.0.0.1", restarted) if e["objectRef"].get("namespace") == env.ns]
    assert any(e["objectRef"].get("name") == "marker" for e in seen), "the audit log shows not even the marker's"
    written = [  # anything but the marker's objects and events (posted only on the marker's transitions)
        (e["verb"], e["requestURI"])
        for e in seen
        if e["objectRef"].get("name") != "marker"
        and e["objectRef"]["resource"] != "events"
    ]  # fmt: skip
    assert written == []
