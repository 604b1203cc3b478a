"""decide, table-driven: a Snapshot of plain dicts in, conditions, writes and status out. No cluster, no fake API.

Each row names a situation a SyncCluster can be in; the table says what every condition reads and what is written.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from synchro import api, conditions
from synchro.conditions import Reason
from synchro.reconcile import decide
from synchro.reconcile.model import ExternalSeen, ManagedSeen, Pass, Snapshot, TargetSeen, Write
from synchro.redis.model import PingResult

NS, NAME = "ns", "web"
BODY = {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": NAME, "namespace": NS, "uid": "u1"}}
PASSWORD = {
    "metadata": {"name": "web-redis", "uid": "s1", "resourceVersion": "5"},
    "data": {api.PASSWORD_KEY: base64.b64encode(b"pw").decode(), "operator-password": base64.b64encode(b"op").decode()},
}
EXTERNAL = {
    "mode": "External",
    "external": {"url": "redis://cache:6379/1", "passwordSecretRef": {"name": "auth", "key": "password"}},
}
PONG = PingResult.answered(("10.0.0.5", 6379))
REFUSED = PingResult.unreachable("10.0.0.5:6379: Connection refused")
WRONGPASS = PingResult(False, Reason.AUTH_FAILED, "10.0.0.5:6379 refused the credentials: WRONGPASS")


def workload(name: str = "web", replicas: int = 1, containers: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": "1", "generation": 1},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": c} for c in containers]}}},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas},
    }


def landed(write: Write) -> dict[str, Any]:
    """The workload once `write` was applied and every replica of it rolled out and became ready."""
    live = copy.deepcopy(write.obj)
    n = live["spec"]["replicas"]
    containers = {  # server-side apply records which env entries are Synchro's
        "k:" + json.dumps({"name": c["name"]}, separators=(",", ":")): {
            "f:env": {"k:" + json.dumps({"name": e["name"]}, separators=(",", ":")): {} for e in c.get("env", [])}
        }
        for c in live["spec"]["template"]["spec"]["containers"]
    }
    fields = {"f:spec": {"f:template": {"f:spec": {"f:containers": containers}}}}
    live["metadata"]["managedFields"] = [{"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}]
    live["metadata"].update(resourceVersion="2", generation=2)
    live["status"] = {
        "observedGeneration": 2,
        "replicas": n,
        "updatedReplicas": n,
        "availableReplicas": n,
        "readyReplicas": n,
    }
    return live


def managed_up(ping: PingResult = PONG) -> ManagedSeen:
    deployment = {"metadata": {"name": "web-redis", "resourceVersion": "3"}, "status": {"availableReplicas": 1}}
    service = {"spec": {"clusterIP": "10.96.0.9"}}
    return ManagedSeen(PASSWORD, {("Deployment", "web-redis"): deployment, ("Service", "web-redis"): service}, (), ping)


@dataclass
class Case:
    spec: dict[str, Any] = field(default_factory=dict)  # merged over two replicas of one generic target
    redis: ManagedSeen | ExternalSeen = field(default_factory=managed_up)
    target: dict[str, Any] | None = field(default_factory=workload)
    owner: str | None = None
    rolled_out: bool = False  # a rollout of the injected config completed before (status.targets[].rolledOutHash)
    steps: int = 1  # passes, each landing the previous pass's target write (and rolling it out)


def snapshot(case: Case, target: dict[str, Any] | None, rolled_out: dict[tuple[str, str], str]) -> Snapshot:
    raw = {"replicas": 2, "targets": [{"name": "web", "preset": "generic"}], **case.spec}
    spec = api.parse(NS, NAME, raw)
    return Snapshot(
        BODY,
        spec,
        case.redis,
        (TargetSeen(spec.targets[0], target, case.owner),),
        rolled_out,
        "synchro.local/operator:test",
    )


def run(case: Case, failures: dict[tuple[str, str], tuple[str, str]] | None = None) -> tuple[Pass, list[Write]]:
    """`case.steps` passes; the outcome of the last, and the target writes of every pass."""
    target, rolled_out, writes = case.target, {}, []
    for _ in range(case.steps):
        decision = decide.decide(snapshot(case, target, rolled_out))
        mine = [w for w in decision.writes if w.target is not None]
        writes += mine
        result = decide.conclude(decision, failures or {})
        rolled_out = decide.rolled_out_hashes(result.fields)
        target = landed(mine[-1]) if mine else target
        if case.rolled_out and not rolled_out and mine:
            rolled_out = {
                ("Deployment", "web"): mine[-1].obj["spec"]["template"]["metadata"]["annotations"][
                    api.CONFIG_HASH_ANNOTATION
                ]
            }
    return result, writes


def reasons(result: Pass) -> dict[str, tuple[bool, str]]:
    found = list(result.conditions)
    found.append(conditions.ready(found))
    return {c.type: (c.status, c.reason) for c in found}


R, C, ROLL, READY = conditions.REDIS_READY, conditions.CONFIG_INJECTED, conditions.ROLLOUT_COMPLETE, conditions.READY
CASES: dict[str, tuple[Case, dict[str, tuple[bool, str]], list[int]]] = {
    # name: (situation, {condition: (status, reason)}, the replicas of each target write, pass by pass)
    "managed Redis without its Secret yet": (
        Case(redis=ManagedSeen(None)),
        {R: (False, Reason.PROVISIONING), C: (False, Reason.PROVISIONING), READY: (False, Reason.PROVISIONING)},
        [],
    ),
    "managed Redis pod not available: injected, held at 1": (
        Case(redis=ManagedSeen(PASSWORD, {("Deployment", "web-redis"): {"status": {}}})),
        {R: (False, Reason.PROVISIONING), C: (True, Reason.INJECTED), ROLL: (False, Reason.SCALE_HELD)},
        [1],
    ),
    "Redis refuses connections: held at 1": (
        Case(redis=managed_up(REFUSED)),
        {R: (False, Reason.UNREACHABLE), ROLL: (False, Reason.SCALE_HELD), READY: (False, Reason.UNREACHABLE)},
        [1],
    ),
    "Redis refuses the password": (
        Case(redis=managed_up(WRONGPASS)),
        {R: (False, Reason.AUTH_FAILED), ROLL: (False, Reason.SCALE_HELD)},
        [1],
    ),
    "Redis ready, first rollout not done: still held at 1": (
        Case(),
        {R: (True, Reason.REDIS_REACHABLE), ROLL: (False, Reason.SCALE_HELD)},
        [1],
    ),
    "first rollout done with Redis ready: scaled, then rolled out": (
        Case(steps=3),
        {
            R: (True, Reason.REDIS_REACHABLE),
            C: (True, Reason.INJECTED),
            ROLL: (True, Reason.ROLLED_OUT),
            READY: (True, Reason.READY),
        },
        [1, 2],
    ),
    "a rollout done once: a later config rolls at full scale even while Redis is down": (
        Case(redis=managed_up(REFUSED), rolled_out=True, steps=2),
        {R: (False, Reason.UNREACHABLE), ROLL: (False, Reason.ROLLING_OUT)},
        [1, 2],
    ),
    "external Redis, password Secret missing": (
        Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": None})),
        {R: (False, Reason.SECRET_NOT_FOUND), C: (False, Reason.SECRET_NOT_FOUND)},
        [],
    ),
    "external Redis, key missing in its Secret": (
        Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": {"metadata": {"uid": "a"}, "data": {}}})),
        {R: (False, Reason.SECRET_NOT_FOUND)},
        [],
    ),
    "external Redis answering": (
        Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": PASSWORD}, PONG), steps=3),
        {R: (True, Reason.REDIS_REACHABLE), READY: (True, Reason.READY)},
        [1, 2],
    ),
    "target not found": (
        Case(target=None),
        {C: (False, Reason.TARGET_NOT_FOUND), ROLL: (False, Reason.ROLLING_OUT)},
        [],
    ),
    "target claimed by an older SyncCluster": (
        Case(owner="other"),
        {C: (False, Reason.TARGET_CONFLICT), READY: (False, Reason.TARGET_CONFLICT)},
        [],
    ),
    "claimed by this SyncCluster is no conflict": (Case(owner=NAME), {C: (True, Reason.INJECTED)}, [1]),
    "a named container the pod lacks": (
        Case(spec={"targets": [{"name": "web", "preset": "generic", "containers": ["nope"]}]}),
        {C: (False, Reason.CONTAINER_NOT_FOUND)},
        [],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_decide(name: str) -> None:
    case, expected, replicas = CASES[name]
    result, writes = run(case)
    found = reasons(result)
    assert {k: found[k] for k in expected} == expected
    assert [w.obj["spec"]["replicas"] for w in writes] == replicas


def test_every_condition_reason_synchro_decides_is_in_the_table() -> None:
    """The PubSubHealthy reasons come from the probe's verdict (test_probe_verdict), InvalidSpec and ApplyFailed
    from their own tests below, WaitingForRollout and RedisNotReady show as ScaleHeld."""
    covered = {reason for _, expected, _ in CASES.values() for _, reason in expected.values()}
    elsewhere = {
        Reason.ALL_PODS_HEALTHY,
        Reason.PODS_UNREACHABLE,
        Reason.SPLIT_BRAIN,
        Reason.REDIS_UNAVAILABLE,
        Reason.INVALID_SPEC,
        Reason.APPLY_FAILED,
        Reason.WAITING_FOR_ROLLOUT,
        Reason.REDIS_NOT_READY,
        Reason.ACL_USERS,  # events of the managed Redis's passwords (test_managed_acl)
        Reason.ROTATING_PASSWORD,
        Reason.PASSWORD_ROTATED,
        Reason.DEGRADED,  # a managed Redis with replicas: its own table (test_decide_ha)
        Reason.RESIZING,
        Reason.RESIZED,
        Reason.PROMOTED,
        Reason.FAILING_OVER,
        Reason.NO_QUORUM,
        Reason.FAILED_OVER,  # its events (test_decide_ha)
        Reason.CLIENTS_ON_REPLICA,
        Reason.SWITCHOVER,
    }
    every = {v for k, v in vars(Reason).items() if k.isupper()}
    assert every - elsewhere - covered == set()


def test_a_spec_that_cannot_be_served_is_invalid_with_the_reason() -> None:
    result = decide.invalid(api.SpecError("the database index in redis.external.url must be a number, got 'x'"))
    assert [(c.type, c.status, c.reason) for c in result.conditions] == [(READY, False, Reason.INVALID_SPEC)]
    assert "must be a number" in result.conditions[0].message and result.probe is None


@pytest.mark.parametrize(("status", "reason"), [(404, Reason.TARGET_NOT_FOUND), (422, Reason.APPLY_FAILED)])
def test_a_target_act_could_not_write_is_reported_on_config_injected(status: int, reason: str) -> None:
    result, writes = run(Case(), {("Deployment", "web"): (reason, f"{status}: refused")})
    assert writes and reasons(result)[C] == (False, reason)
    assert result.conditions[1].message == f"{status}: refused"
    assert result.fields["targets"][0]["replicas"] == 0


def settled_external() -> tuple[Case, dict[str, Any], dict[tuple[str, str], str]]:
    """An external-Redis SyncCluster whose target rolled out at full scale: the case, the workload, rolledOutHash."""
    case = Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": PASSWORD}, PONG), steps=3)
    _, writes = run(case)
    config_hash = writes[-1].obj["spec"]["template"]["metadata"]["annotations"][api.CONFIG_HASH_ANNOTATION]
    return case, landed(writes[-1]), {("Deployment", "web"): config_hash}


def test_a_settled_cluster_decides_no_write() -> None:
    case, converged, rolled = settled_external()
    decision = decide.decide(snapshot(case, converged, rolled))
    assert decision.writes == () and not decision.create_secret


def test_the_managed_redis_objects_are_written_when_absent_or_different_and_never_the_secret() -> None:
    missing = decide.decide(snapshot(Case(redis=ManagedSeen(PASSWORD, {})), workload(), {}))
    kinds = [w.obj["kind"] for w in missing.writes if w.target is None]
    assert kinds == ["ConfigMap", "Service", "NetworkPolicy", "PodDisruptionBudget", "Deployment"]
    assert all(w.obj["metadata"]["ownerReferences"][0]["uid"] == "u1" for w in missing.writes if w.target is None)
    first = decide.decide(snapshot(Case(redis=ManagedSeen(None)), workload(), {}))
    assert first.create_secret and first.writes == ()


def test_the_probe_plan_waits_for_a_rolled_out_target_and_expects_every_ready_pod() -> None:
    result, _ = run(Case(steps=3))
    assert result.probe is not None and result.probing
    assert (result.probe.ready_pods, result.probe.address, result.probe.unavailable) == (2, ("10.0.0.5", 6379), "")
    held, _ = run(Case())
    assert held.probe is None and held.probing


@pytest.mark.parametrize(
    ("policy", "owner", "claimed_by", "given", "orphans"),
    [
        ("Delete", None, NAME, [("Deployment", "web")], 0),  # injected by this SyncCluster: given back
        ("Delete", "other", NAME, [], 0),  # another SyncCluster's claim wins: left alone
        ("Delete", None, None, [], 0),  # never injected (no claim annotation): nothing to give back
        ("Retain", None, NAME, [], 6),  # targets keep their config; the Secret and 5 objects are orphaned
    ],
)
def test_deletion(policy: str, owner: str | None, claimed_by: str | None, given: list[Any], orphans: int) -> None:
    spec = api.parse(NS, NAME, {"targets": [{"name": "web", "preset": "generic"}], "deletionPolicy": policy})
    live = workload()
    if claimed_by:
        live["metadata"]["annotations"] = {api.CLAIM_ANNOTATION: claimed_by}
    plan = decide.release(spec, {("Deployment", "web"): owner}, {("Deployment", "web"): live})
    assert (list(plan.targets), len(plan.orphans)) == (given, orphans)
    assert decide.release(spec, {}, {("Deployment", "web"): None}).targets == ()


ROTATED = {**PASSWORD, "data": {api.PASSWORD_KEY: base64.b64encode(b"pw2").decode()}}


@pytest.mark.parametrize(
    ("since_rollout_s", "rolls"),
    [(None, True), (3.0, False), (decide.ROLLOUT_EVERY_S + 1, True)],
)
def test_a_target_rolls_again_at_most_once_per_window(since_rollout_s: float | None, rolls: bool) -> None:
    """A rotation right after the last one waits its turn; the first one after a quiet spell, or after an operator
    restart (nothing remembered), rolls at once. The first injection and scaling are never paced."""
    _, converged, rolled = settled_external()
    rotated = Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": ROTATED}, PONG))
    seen = snapshot(rotated, converged, rolled)
    target = dataclasses.replace(seen.targets[0], since_rollout_s=since_rollout_s)
    decision = decide.decide(dataclasses.replace(seen, targets=(target,)))
    result = decide.conclude(decision, {})
    assert [w.rollout for w in decision.writes] == ([True] if rolls else [])
    assert result.busy is not rolls  # a paced target is looked at again soon
    rollout = reasons(result)[ROLL]
    assert rollout == (False, Reason.ROLLING_OUT)
    assert ("the next rollout" in result.conditions[2].message) is not rolls


def test_the_first_injection_and_a_scale_are_never_paced() -> None:
    _, first = run(Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": PASSWORD}, PONG)))
    assert first and not first[0].rollout
    _, converged, rolled = settled_external()
    scaled = Case(spec={"redis": EXTERNAL, "replicas": 5}, redis=ExternalSeen({"auth": PASSWORD}, PONG))
    seen = snapshot(scaled, converged, rolled)
    target = dataclasses.replace(seen.targets[0], since_rollout_s=1.0)
    decision = decide.decide(dataclasses.replace(seen, targets=(target,)))
    assert [(w.obj["spec"]["replicas"], w.rollout) for w in decision.writes] == [(5, False)]


def test_a_spec_that_no_longer_parses_can_still_be_deleted() -> None:
    """Stored before a rule existed (a 2h probe interval), it must not keep its finalizer forever: deletion gives
    back what it names and claims, and a name that could not be an object's is never used."""
    raw = {
        "probe": {"interval": "2h"},
        "deletionPolicy": "Delete",
        "targets": [
            {"name": "web"},
            {"name": "../secrets/x"},
            5,
            {"name": "db", "kind": "StatefulSet"},
            {"name": "pod", "kind": "Pod"},
        ],
    }
    with pytest.raises(api.SpecError):
        api.parse(NS, NAME, raw)
    spec = decide.release_view(NS, NAME, raw)
    assert [(t.kind, t.name) for t in spec.targets] == [("Deployment", "web"), ("StatefulSet", "db")]
    live = workload()
    live["metadata"]["annotations"] = {api.CLAIM_ANNOTATION: NAME}
    plan = decide.release(spec, {}, {("Deployment", "web"): live, ("StatefulSet", "db"): workload("db")})
    assert plan.targets == (("Deployment", "web"),)  # db carries no claim of ours
    assert decide.release_view(NS, NAME, {"deletionPolicy": "Retain", "targets": "x"}).retain_on_delete


def test_an_operator_upgrade_rolls_no_target_until_it_rolls_anyway() -> None:
    """A new operator image (the probe sidecar's too) alone writes nothing to a settled target: an upgrade must not
    restart every app. The next rollout Synchro makes anyway (here a password rotation) brings the new image."""
    case, converged, rolled = settled_external()
    upgraded = dataclasses.replace(snapshot(case, converged, rolled), probe_image="synchro.local/operator:next")
    assert decide.decide(upgraded).writes == ()
    rotated = Case(spec={"redis": EXTERNAL}, redis=ExternalSeen({"auth": ROTATED}, PONG))
    seen = dataclasses.replace(snapshot(rotated, converged, rolled), probe_image="synchro.local/operator:next")
    (write,) = decide.decide(seen).writes
    containers = {c["name"]: c for c in write.obj["spec"]["template"]["spec"]["containers"]}
    assert containers["synchro-probe"]["image"] == "synchro.local/operator:next"
