"""The pass over a managed Redis with replicas (issue 15), table-driven: what the Sentinels and pods said (a World)
in, RedisReady, status.redis, the objects to apply and the Secret's step out; and the pure edges around it (the pods
observe builds from a pod list, the Events of a failover, a refused move between one pod and replicas)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from synchro import api, conditions
from synchro.conditions import Reason
from synchro.reconcile import decide
from synchro.reconcile.model import ManagedSeen, SecretStep, Snapshot, TargetSeen
from synchro.redis import failover, ha, managed
from synchro.redis.failover import Client, Cut, Label, Node, Pod, Role, Verdict, World

NS, NAME = "ns", "web"
STS = "web-redis"
BODY = {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": NAME, "namespace": NS, "uid": "u1"}}
PODS = ("web-redis-0", "web-redis-1", "web-redis-2")
TARGETS = [{"name": "web", "preset": "generic"}]
SPEC = api.parse(NS, NAME, {"redis": {"managed": {"replicas": 3}}, "targets": TARGETS})


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret(ha_users: bool = True, **annotations: str) -> dict[str, Any]:
    keys = {api.PASSWORD_KEY: "app", managed.OPERATOR_PASSWORD_KEY: "op"}
    if ha_users:
        keys.update({key: "x" for key in ha.HA_PASSWORD_KEYS.values()})
    meta = {"name": STS, "uid": "s1", "resourceVersion": "5", "annotations": annotations}
    return {"metadata": meta, "data": {k: b64(v) for k, v in keys.items()}}


def ip(pod: str) -> str:
    return f"10.0.0.{PODS.index(pod)}"


def pod(name: str, labelled: bool = False) -> Pod:
    names = frozenset({(ha.pod_host(SPEC, name), 6379), (ip(name), 6379)})
    return Pod(name, (ip(name), 6379), (ip(name), 26379), names, ip(name), labelled, uid=name + "-uid")


def node(name: str, role: Role | None, labelled: bool = False, apps: int = 0) -> Node:
    clients = None if role is None else tuple(Client(i, user="synchro-app") for i in range(apps))
    return Node(name, pod(name).names, ip(name), labelled, role, clients)


MASTER = Role("master", 100)
SYNCED = Role("slave", 100, (ha.pod_host(SPEC, PODS[0]), 6379), True)


def world(*nodes: Node, sentinels: int = 3, routed: tuple[str, ...] = (PODS[0],), before: str = PODS[0]) -> World:
    said = tuple((ha.pod_host(SPEC, PODS[0]), 6379) if i < sentinels else None for i in range(3))
    return World(nodes, said, frozenset(ip(p) for p in routed), ha.OWN_USERS, "now", before)


HEALTHY = (node(PODS[0], MASTER, True), node(PODS[1], SYNCED), node(PODS[2], SYNCED))
READY_STS = {"kind": "StatefulSet", "metadata": {"name": STS}, "status": {"readyReplicas": 3}}


def seen(w: World | None, sts: dict[str, Any] | None = READY_STS, labelled: tuple[str, ...] = ()) -> ManagedSeen:
    live = {("StatefulSet", STS): sts}
    pods = tuple(pod(p, p in labelled) for p in PODS)
    return ManagedSeen(secret(), live, pods=pods if w else (), world=w)


def snapshot(redis: ManagedSeen, spec: api.SyncClusterSpec = SPEC, body: dict[str, Any] = BODY) -> Snapshot:
    return Snapshot(body, spec, redis, (TargetSeen(spec.targets[0], None, None),), {}, "synchro.local/operator:test")


def redis_ready(redis: ManagedSeen) -> conditions.Condition:
    return decide.decide(snapshot(redis)).redis.condition


CASES = {
    # name: (what was seen, RedisReady (status, reason))
    "no StatefulSet yet": (seen(None, sts=None), (False, Reason.PROVISIONING)),
    "pods not ready yet": (
        seen(world(*HEALTHY), sts={"metadata": {"name": STS}, "status": {}}),
        (False, Reason.PROVISIONING),
    ),
    "a master and two replicas in sync, routed": (seen(world(*HEALTHY)), (True, Reason.REDIS_REACHABLE)),
    "a replica down: still serving": (
        seen(world(HEALTHY[0], HEALTHY[1], node(PODS[2], None), sentinels=2)),
        (True, Reason.DEGRADED),
    ),
    "first master confirmed, its label just put on: still coming up": (
        seen(world(node(PODS[0], MASTER), HEALTHY[1], HEALTHY[2], routed=(), before="")),
        (False, Reason.PROVISIONING),
    ),
    "the master moved, the Service not yet": (
        seen(world(node(PODS[0], MASTER), HEALTHY[1], HEALTHY[2], routed=(PODS[1],), before=PODS[1])),
        (False, Reason.FAILING_OVER),
    ),
    "one Sentinel of three answers: fail closed": (
        seen(world(*HEALTHY, sentinels=1)),
        (False, Reason.NO_QUORUM),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_redis_ready_follows_the_failover_verdict(name: str) -> None:
    redis, expected = CASES[name]
    found = redis_ready(redis)
    assert (found.status, found.reason) == expected, found.message


def test_a_serving_master_is_where_the_operator_and_the_probe_talk_and_status_names_it() -> None:
    decision = decide.decide(snapshot(seen(world(*HEALTHY))))
    assert decision.redis.address == (ip(PODS[0]), 6379)
    assert decision.redis.creds is not None and decision.redis.creds.username == managed.OPERATOR_USER
    result = decide.conclude(decision, {})
    redis = result.fields["redis"]
    assert redis["master"] == PODS[0]
    assert [n["role"] for n in redis["nodes"]] == ["master", "replica", "replica"]
    assert redis["sentinels"] == {"ready": 3, "quorum": 2}
    assert result.busy  # polled: no watch says that a Sentinel moved the master


def test_without_a_confirmed_master_nobody_is_routed_and_the_probe_has_no_address() -> None:
    decision = decide.decide(snapshot(seen(world(*HEALTHY, sentinels=1), labelled=(PODS[0],))))
    assert decision.redis.address is None
    assert decision.failover is not None and decision.failover.labels == (Label(PODS[0], False),)


def test_the_objects_are_the_statefulset_and_its_services_each_compared_by_kind_and_name() -> None:
    decision = decide.decide(snapshot(seen(None, sts=None)))
    kinds = [(w.obj["kind"], w.obj["metadata"]["name"]) for w in decision.writes if w.target is None]
    assert kinds == [
        ("ConfigMap", STS),
        ("Service", STS + "-nodes"),
        ("Service", STS),
        ("NetworkPolicy", STS),
        ("PodDisruptionBudget", STS),
        ("StatefulSet", STS),
    ]
    # Applied once, nothing is written again: each live object is matched by its own name.
    live = {(w.obj["kind"], w.obj["metadata"]["name"]): w.obj for w in decision.writes if w.target is None}
    again = decide.decide(snapshot(ManagedSeen(secret(), live)))
    assert [w for w in again.writes if w.target is None] == []


def test_a_change_of_the_start_scripts_rolls_the_pods() -> None:
    version = {}
    for replicas in (3, 5):
        spec = api.parse(NS, NAME, {"redis": {"managed": {"replicas": replicas}}, "targets": TARGETS})
        [sts] = [
            w.obj for w in decide.managed_writes(spec, BODY, ManagedSeen(secret())) if w.obj["kind"] == "StatefulSet"
        ]
        version[replicas] = sts["spec"]["template"]["metadata"]["annotations"][api.CONFIG_HASH_ANNOTATION]
    assert version[3] != version[5]  # the scripts ask each pod's Sentinel: their number is in them


def test_the_secret_is_created_then_given_the_replication_users_when_it_lacks_them() -> None:
    assert decide.secret_step(SPEC, BODY, None, False, [])[0] == SecretStep(SecretStep.CREATE)
    step, _ = decide.secret_step(SPEC, BODY, secret(ha_users=False), False, [])
    assert step is not None and step.kind == SecretStep.HA_USERS
    assert dict(step.passwords) == {managed.APP_USER: "app", managed.OPERATOR_USER: "op"}  # kept, not replaced
    assert decide.secret_step(SPEC, BODY, secret(), True, []) == (None, None)


def test_a_rotation_asked_of_a_redis_with_replicas_is_refused_with_a_reason() -> None:
    body = {**BODY, "metadata": {**BODY["metadata"], "annotations": {api.ROTATE_PASSWORD_ANNOTATION: "r1"}}}
    step, rotation = decide.secret_step(SPEC, body, secret(), True, [])
    assert step is None and rotation is not None and rotation["phase"] == "Refused"


def ours(kind: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": STS, "labels": managed.labels(NAME)}}


def test_moving_a_live_redis_between_one_pod_and_replicas_is_refused_and_nothing_is_written() -> None:
    refused = decide.shape_change(snapshot(ManagedSeen(secret(), other=ours("Deployment"))))
    assert refused is not None and refused.fields == {} and refused.probe is None
    [ready] = refused.conditions
    assert (ready.status, ready.reason) == (False, Reason.INVALID_SPEC)
    assert "from one pod to replicas" in ready.message and "Deployment web-redis" in ready.message
    one = api.parse(NS, NAME, {"targets": TARGETS})
    back = decide.shape_change(snapshot(ManagedSeen(secret(), other=ours("StatefulSet")), spec=one))
    assert back is not None and "from replicas to one pod" in back.conditions[0].message
    # Somebody's own Deployment of that name is not Synchro's Redis: nothing to refuse.
    theirs = {"kind": "Deployment", "metadata": {"name": STS, "labels": {"app": "mine"}}}
    assert decide.shape_change(snapshot(ManagedSeen(secret(), other=theirs))) is None
    assert decide.shape_change(snapshot(ManagedSeen(secret()))) is None


def test_retain_orphans_the_statefulset_and_both_services() -> None:
    spec = api.parse(NS, NAME, {**{"redis": {"managed": {"replicas": 3}}}, "deletionPolicy": "Retain",
                                "targets": TARGETS})  # fmt: skip
    kinds = {(o["kind"], o["metadata"]["name"]) for o in decide.release(spec, {}, {}).orphans}
    assert {("StatefulSet", STS), ("Service", STS), ("Service", STS + "-nodes"), ("Secret", STS)} <= kinds


def listed(name: str, ip_: str | None, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name + "-u", "labels": labels}, "status": {"podIP": ip_} if ip_ else {}}


def test_observe_reaches_every_pod_the_statefulset_should_have_by_ip_where_it_may() -> None:
    found = ha.pods(
        SPEC,
        [listed(PODS[0], "10.0.0.1", **{ha.ROLE_LABEL: ha.MASTER}), listed(PODS[1], None), listed("other", "10.0.0.9")],
        lambda address: address != "10.0.0.3",
    )
    assert [p.name for p in found] == list(PODS)  # the one missing counts: a majority is of all Sentinels
    first, starting, missing = found
    assert (first.redis, first.sentinel, first.labelled, first.uid) == (("10.0.0.1", 6379), ("10.0.0.1", 26379), True,
                                                                         PODS[0] + "-u")  # fmt: skip
    assert first.names == {(f"{PODS[0]}.web-redis-nodes.ns.svc", 6379), ("10.0.0.1", 6379)}
    assert not starting.reachable and not missing.reachable
    barred = ha.pods(SPEC, [listed(PODS[0], "10.0.0.3")], lambda address: address != "10.0.0.3")[0]
    assert not barred.reachable and barred.ip == "10.0.0.3"  # still named by its IP: a Sentinel may call it that


def verdict(master: str | None, serving: bool = True, cuts: tuple[Cut, ...] = ()) -> Verdict:
    return Verdict(master, (), not serving, cuts, (), None, "")


def test_one_event_per_failover_once_its_fence_ran_and_one_per_cut_outside_a_failover() -> None:
    moved = world(*HEALTHY, before=PODS[1])
    waiting = failover.tell(moved, verdict(PODS[0], serving=False), None, 0)
    assert waiting.events == () and waiting.untold == (PODS[1], PODS[0])  # the Service has not moved yet
    settled = world(*HEALTHY, before=PODS[0])
    told = failover.tell(settled, verdict(PODS[0], cuts=(Cut(PODS[1], (7, 8)),)), waiting.untold, 2)
    [(type_, reason, message)] = told.events
    assert (type_, reason, told.untold) == ("Normal", Reason.FAILED_OVER, None)
    assert message.startswith(f"{PODS[0]} replaced {PODS[1]} as the Redis master") and message.endswith(": 2")
    stray = failover.tell(settled, verdict(PODS[0], cuts=(Cut(PODS[2], (9,)),)), None, 1)
    [(type_, reason, message)] = stray.events
    assert (type_, reason) == ("Warning", Reason.CLIENTS_ON_REPLICA) and PODS[2] in message
    assert failover.tell(settled, verdict(PODS[0]), None, 0).events == ()


def test_a_pod_being_deleted_is_not_ready_and_each_pod_carries_its_template_revision() -> None:
    ready = {"conditions": [{"type": "Ready", "status": "True"}], "podIP": "10.0.0.1"}
    up = {"metadata": {"name": PODS[0], "labels": {"controller-revision-hash": "web-redis-abc"}}, "status": ready}
    going = {"metadata": {"name": PODS[1], "deletionTimestamp": "2026-12-03T00:00:00Z"}, "status": ready}
    first, second, _ = ha.pods(SPEC, [up, going], lambda address: True)
    assert (first.ready, first.revision) == (True, "web-redis-abc")
    assert not second.ready  # the StatefulSet makes it again: an update waits for that one too
