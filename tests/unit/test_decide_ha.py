"""The pass over a managed Redis with replicas (issue 15), table-driven: what the Sentinels and pods said (a World)
in, RedisReady, status.redis, the objects to apply and the Secret's step out; and the pure edges around it (the pods
observe builds from a pod list, the Events of a failover, a refused move between one pod and replicas)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from synchro import api, conditions
from synchro.conditions import Reason
from synchro.reconcile import decide
from synchro.reconcile.model import ManagedSeen, SecretStep, Snapshot, TargetSeen
from synchro.redis import failover, ha, managed, shrink
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
    "one Sentinel in TILT mode: the others would fail over": (
        seen(dataclasses.replace(world(*HEALTHY), tilted=(True, False, False))),
        (True, Reason.REDIS_REACHABLE),
    ),
    "every Sentinel in TILT mode: none would fail over": (
        seen(dataclasses.replace(world(*HEALTHY), tilted=(True, True, True))),
        (True, Reason.DEGRADED),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_redis_ready_follows_the_failover_verdict(name: str) -> None:
    redis, expected = CASES[name]
    found = redis_ready(redis)
    assert (found.status, found.reason) == expected, found.message
    assert ("TILT" in found.message) == name.startswith("every Sentinel in TILT")


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
    # ... and woken by the Sentinels' +switch-master: every one that may be reached is listened to.
    assert result.sentinels == tuple((ip(p), 26379) for p in PODS) and result.sentinel_creds == decision.redis.creds


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


ROTATE = {**BODY, "metadata": {**BODY["metadata"], "annotations": {api.ROTATE_PASSWORD_ANNOTATION: "r1"}}}


def staged_secret() -> dict[str, Any]:
    staged = secret(**{managed.STAGED_ANNOTATION: "r1"})
    staged["data"].update({key: b64("next-" + user) for user, key in managed.NEXT_KEYS.items()})
    return staged


def test_a_rotation_of_a_redis_with_replicas_reaches_every_pod_and_sentinel_and_keeps_their_users() -> None:
    stage = decide.decide(snapshot(seen(world(*HEALTHY)), body=ROTATE)).secret_step
    assert stage is not None and stage.kind == SecretStep.STAGE
    staged = dataclasses.replace(seen(world(*HEALTHY)), secret=staged_secret())
    switch = decide.decide(snapshot(staged, body=ROTATE)).secret_step
    assert switch is not None and switch.kind == SecretStep.SWITCH
    assert dict(switch.passwords) == {user: "next-" + user for user in managed.PASSWORD_KEYS}
    assert switch.reach.nodes == tuple((ip(p), 6379) for p in PODS)  # ACL users are not replicated: each pod
    assert switch.reach.sentinels == tuple((ip(p), 26379) for p in PODS)  # they have the operator's user too
    assert dict(switch.reach.kept) == {ha.REPLICA_USER: "x", ha.SENTINEL_USER: "x"}  # not rotated, kept
    assert "next-" not in repr(switch) and "'x'" not in repr(switch)  # no password in a log line
    # Every pod has the next passwords once the Secret names them, or the step waits and says for whom.
    silent = dataclasses.replace(staged, world=world(*HEALTHY[:2], node(PODS[2], None)))
    waiting = decide.decide(snapshot(silent, body=ROTATE))
    assert waiting.secret_step is None and waiting.rotation is not None
    assert "Redis pods not answering: web-redis-2" in waiting.rotation["message"]
    mute = dataclasses.replace(staged, world=world(*HEALTHY, sentinels=2))
    assert "Sentinels not answering: 1" in str(decide.decide(snapshot(mute, body=ROTATE)).rotation)
    # And none while the Redis moves between one pod and replicas: the one-pod Redis would miss them.
    growing_ = dataclasses.replace(staged, other=ours("Deployment"))
    assert "moving between one pod and replicas" in str(decide.decide(snapshot(growing_, body=ROTATE)).rotation)


def test_a_rotation_finishes_on_every_pod_and_sentinel_with_the_one_password() -> None:
    done = secret(**{managed.ROTATED_FOR_ANNOTATION: "r1"})
    reach = decide.rotation_reach(SPEC, seen(world(*HEALTHY)))
    target = decide.decide(snapshot(seen(world(*HEALTHY)))).targets[0]
    rolled = [dataclasses.replace(target, complete=True, problem=None)]
    step, _ = decide.secret_step(SPEC, ROTATE, done, True, rolled, reach)
    assert step is not None and step.kind == SecretStep.FINISH and step.reach == reach
    to_redis, to_sentinels = ha.rotation_commands(step.passwords, only=True)
    assert [c[:5] for c in to_redis] == [["ACL", "SETUSER", managed.APP_USER, "on", "resetpass"],
                                         ["ACL", "SETUSER", managed.OPERATOR_USER, "on", "resetpass"]]  # fmt: skip
    assert to_sentinels == [["ACL", "SETUSER", managed.OPERATOR_USER, "on", "resetpass",
                             managed.password_hash("op"), *ha.SENTINEL_OPERATOR_RIGHTS]]  # fmt: skip
    beside, _ = ha.rotation_commands(step.passwords, only=False)
    assert all("resetpass" not in c for c in beside)  # SWITCH: the old password still works meanwhile


def ours(kind: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": STS, "labels": managed.labels(NAME)}}


ONE = api.parse(NS, NAME, {"targets": TARGETS})  # replicas asked back to one pod
HEIR_IP = "10.0.0.8"
HEIR = "web-redis-7c4b9-m2p8z"


def heir_node(role: Role | None, labelled: bool = False) -> Node:
    return Node(HEIR, frozenset({(HEIR_IP, 6379)}), HEIR_IP, labelled, role, () if role else None)


def shrinking(heir: Node | None, *nodes: Node, sentinels: int = 3) -> ManagedSeen:
    """What observe sees while moving back to one pod: the StatefulSet's pods, then the heir (no Sentinel)."""
    heir_pod = Pod(HEIR, (HEIR_IP, 6379), ("", 26379), frozenset({(HEIR_IP, 6379)}), HEIR_IP, bool(heir and
                   heir.labelled), HEIR + "-uid", ha.SEED_REVISION, True, False)  # fmt: skip
    w = world(*(nodes or HEALTHY), *([heir] if heir else []), sentinels=sentinels)
    sts = {**ours("StatefulSet"), "spec": {"replicas": 3}}
    pods = (*(pod(p, p == PODS[0]) for p in PODS), *([heir_pod] if heir else []))
    return ManagedSeen(secret(), {}, pods=pods, world=w, other=sts, seed=heir_pod if heir else None)


def test_moving_back_to_one_pod_applies_only_the_deployment_and_makes_it_a_replica_of_the_master() -> None:
    assert decide.shrinks(ONE, ours("StatefulSet")) and not decide.shrinks(SPEC, ours("StatefulSet"))
    theirs = {"kind": "StatefulSet", "metadata": {"name": STS, "labels": {"app": "mine"}}}
    assert not decide.shrinks(ONE, theirs)  # somebody's own StatefulSet of that name is not Synchro's Redis
    assert decide.as_replicated(ONE, {"spec": {"replicas": 5}}).managed.replicas == 5
    waiting = decide.decide(snapshot(shrinking(None), spec=ONE))
    assert [w.obj["kind"] for w in waiting.writes if w.target is None] == ["Deployment"]  # the Service stays
    assert waiting.shrink is not None and waiting.shrink.kind == shrink.WAIT
    assert (waiting.redis.condition.status, waiting.redis.condition.reason) == (True, Reason.RESIZING)
    assert waiting.redis.address == (ip(PODS[0]), 6379)  # the master serves on
    empty = decide.decide(snapshot(shrinking(heir_node(MASTER)), spec=ONE))
    assert empty.shrink is not None and (empty.shrink.kind, empty.shrink.master) == (shrink.FOLLOW, PODS[0])
    assert empty.heir_commands == (
        ("CONFIG", "SET", "replica-priority", "0", "masteruser", ha.REPLICA_USER, "masterauth", "x"),
        ("REPLICAOF", ip(PODS[0]), "6379"),
    )
    assert empty.failover is not None and empty.failover.master == PODS[0]  # the Sentinels' master keeps its label
    assert "masterauth" not in repr(empty)


def test_moving_back_to_one_pod_switches_once_the_heir_follows_the_master_then_finishes() -> None:
    syncing = Role("slave", 50, (ip(PODS[0]), 6379), False)
    copying = decide.decide(snapshot(shrinking(heir_node(syncing)), spec=ONE))
    assert copying.shrink is not None and copying.shrink.kind == shrink.WAIT and copying.heir_commands == ()
    linked = Role("slave", 100, (ip(PODS[0]), 6379), True)
    switch = decide.decide(snapshot(shrinking(heir_node(linked)), spec=ONE))
    assert switch.shrink is not None and (switch.shrink.kind, switch.shrink.master) == (shrink.SWITCH, PODS[0])
    assert switch.failover is None  # the switch moves the label itself: no failover verdict fights it
    # If a Sentinel misses SENTINEL REMOVE, every Sentinel monitors the master the heir copies again, logged in.
    host, quorum = ha.pod_host(SPEC, PODS[0]), str(ha.quorum(3))
    assert switch.remonitor[:2] == (("SENTINEL", "REMOVE", ha.MASTER_NAME),
                                    ("SENTINEL", "MONITOR", ha.MASTER_NAME, host, "6379", quorum))  # fmt: skip
    assert switch.remonitor[2][-4:-2] == ("auth-user", ha.SENTINEL_USER) and copying.remonitor == ()
    # Sentinels that name the master with the cluster's domain are sent the same form (one pod, one name).
    named = shrinking(heir_node(linked))
    named = dataclasses.replace(named, world=dataclasses.replace(named.world, domain="cluster.local"))
    undo = decide.decide(snapshot(named, spec=ONE)).remonitor
    assert undo[1][3] == host + ".cluster.local"
    assert decide.conclude(switch, {}).busy  # polled: a switch put off (the heir behind) is tried again soon
    assert switch.redis.condition.reason == Reason.RESIZING and switch.redis.address == (ip(PODS[0]), 6379)
    # A Sentinel naming another master than the one the heir copies: not yet.
    split = shrinking(heir_node(linked))
    split = dataclasses.replace(split, world=dataclasses.replace(split.world, sentinels=(
        (ha.pod_host(SPEC, PODS[1]), 6379), None, None)))  # fmt: skip
    assert shrink.step(split.world, HEIR, failover.decide(split.world), STS).kind != shrink.SWITCH
    # A Sentinel that does not answer would miss SENTINEL REMOVE: the heir waits, the master serves on.
    mute = shrinking(heir_node(linked), sentinels=2)
    waiting = decide.decide(snapshot(mute, spec=ONE))
    assert waiting.shrink is not None and waiting.shrink.kind == shrink.WAIT
    assert "every Sentinel answers (1 did not)" in waiting.shrink.message
    assert waiting.redis.condition.reason == Reason.RESIZING and waiting.redis.address == (ip(PODS[0]), 6379)
    # The heir promoted and labelled (an operator stopped half way): what is left is done, the heir serves.
    done = decide.decide(snapshot(shrinking(heir_node(MASTER, labelled=True)), spec=ONE))
    assert done.shrink is not None and done.shrink.kind == shrink.FINISH and done.failover is None
    assert done.redis.address == (HEIR_IP, 6379) and done.redis.condition.status
    # Stopped right after the switch, before the label: the old master follows the heir, the Sentinels name none.
    demoted = node(PODS[0], Role("slave", 100, (HEIR_IP, 6379), True), labelled=True)
    after = shrinking(heir_node(MASTER), demoted, HEALTHY[1], HEALTHY[2], sentinels=0)
    assert shrink.step(after.world, HEIR, failover.decide(after.world), STS).kind == shrink.FINISH
    empty = shrinking(heir_node(MASTER))  # an empty heir nobody follows: not switched, made a replica
    assert shrink.step(empty.world, HEIR, failover.decide(empty.world), STS).kind == shrink.FOLLOW


def forgot(state: ManagedSeen) -> ManagedSeen:
    """The same, with every Sentinel answering that it monitors no master (SENTINEL REMOVE was sent)."""
    assert state.world is not None
    return dataclasses.replace(state, world=dataclasses.replace(state.world, sentinels=(failover.NO_MASTER,) * 3))


def test_a_switch_back_to_one_pod_cut_short_after_the_heirs_promotion_keeps_the_master_and_switches_again() -> None:
    """An operator stopped inside take_over, after SENTINEL REMOVE and the heir's REPLICAOF NO ONE but before the old
    master's demotion: two masters, no Sentinel monitoring either, the label still on the old one, where the apps
    write again once its 5 s pause ends. The master status named keeps its label (not fail closed: nothing else
    could be confirmed ever again), the heir copies it again, and the switch is made again."""
    cut = forgot(shrinking(heir_node(MASTER)))
    again = decide.decide(snapshot(cut, spec=ONE))
    assert again.failover is not None and again.failover.master == PODS[0] and again.failover.labels == ()
    assert again.redis.condition.status and again.redis.address == (ip(PODS[0]), 6379)
    assert "no Sentinel monitors a master" in again.failover.message
    assert again.shrink is not None and (again.shrink.kind, again.shrink.master) == (shrink.FOLLOW, PODS[0])
    assert again.heir_commands[-1] == ("REPLICAOF", ip(PODS[0]), "6379")  # its copy replaced by the newer one
    # Linked again: switched again, though no Sentinel names the master it copies.
    linked = forgot(shrinking(heir_node(Role("slave", 100, (ip(PODS[0]), 6379), True))))
    switch = decide.decide(snapshot(linked, spec=ONE))
    assert switch.shrink is not None and (switch.shrink.kind, switch.shrink.master) == (shrink.SWITCH, PODS[0])
    # Only every Sentinel forgetting counts: one still naming the master, or silent, is the usual majority rule.
    mixed = dataclasses.replace(cut.world, sentinels=(failover.NO_MASTER, failover.NO_MASTER, None))
    assert failover.confirmed_master(mixed) is None
    assert failover.sentinel_answers(cut.world) == "no master, no master, no master"


def test_moving_back_to_one_pod_waits_without_a_master_to_copy() -> None:
    lost = decide.decide(snapshot(shrinking(heir_node(MASTER), sentinels=1), spec=ONE))
    assert lost.shrink is not None and lost.shrink.kind == shrink.WAIT and lost.heir_commands == ()
    assert (lost.redis.condition.status, lost.redis.condition.reason) == (False, Reason.NO_QUORUM)


# Growing from one pod: the Deployment's pod (the seed) is one more node, last, running no Sentinel.
SEED = "web-redis-6d9f8-x2k4q"
SEED_IP = "10.0.0.9"
SEED_POD = Pod(SEED, (SEED_IP, 6379), ("", 26379), frozenset({(SEED_IP, 6379)}), SEED_IP, False, SEED + "-uid",
               ha.SEED_REVISION, True, False)  # fmt: skip
FOLLOWS_SEED = Role("slave", 100, (SEED_IP, 6379), True)


def growing(*nodes: Node, named: str | None = None, before: str = "", sts: dict[str, Any] | None = None,
            **secret_keys: bool) -> ManagedSeen:  # fmt: skip
    """What observe sees while growing: the Sentinels name `named` (None: nobody, as before they know the seed)."""
    said = tuple((SEED_IP, 6379) if named == SEED else (ha.pod_host(SPEC, named), 6379) if named else None
                 for _ in range(3))  # fmt: skip
    w = World(nodes, said, frozenset({SEED_IP}), ha.OWN_USERS, "now", before, fallback=SEED)
    live = {("StatefulSet", STS): sts} if sts else {}
    pods = (*(pod(p) for p in PODS), SEED_POD)
    return ManagedSeen(secret(**secret_keys), live, pods=pods, world=w, other=ours("Deployment"), seed=SEED_POD)


def seed_node(role: Role | None, labelled: bool = False) -> Node:
    return Node(SEED, SEED_POD.names, SEED_IP, labelled, role, () if role else None)


def test_growing_the_seed_serves_until_the_sentinels_agree_and_redis_ready_says_resizing() -> None:
    decision = decide.decide(snapshot(growing(seed_node(MASTER))))
    assert decision.failover is not None and decision.failover.master == SEED
    assert decision.redis.address == (SEED_IP, 6379)
    ready = decision.redis.condition
    assert (ready.status, ready.reason) == (True, Reason.RESIZING) and "moving from one pod to 3" in ready.message
    assert decision.failover.labels == (Label(SEED, True),)  # the client Service follows the label
    # The ConfigMap names the seed: a new pod that finds no Sentinel replicates from it.
    [config] = [w.obj for w in decision.writes if w.obj["kind"] == "ConfigMap"]
    assert config["data"][ha.SEED_KEY] == SEED_IP
    assert ha.config_version(SPEC) == ha.config_version(SPEC)  # the seed is not in it: no pod restarts for it
    assert ha.SEED_KEY not in ha.config_version(SPEC)


def test_growing_the_seed_is_given_the_replication_users_while_it_is_the_master_and_only_then() -> None:
    decision = decide.decide(snapshot(growing(seed_node(MASTER))))
    users = [c[2] for c in decision.seed_commands if c[:2] == ("ACL", "SETUSER")]
    assert users == [ha.REPLICA_USER, ha.SENTINEL_USER]
    assert ("CONFIG", "SET", "masteruser", ha.REPLICA_USER, "masterauth", "x") in decision.seed_commands
    assert decide.decide(snapshot(growing(seed_node(None)))).seed_commands == ()  # not answering: nothing to send
    follower = growing(node(PODS[0], MASTER), seed_node(FOLLOWS_SEED), named=PODS[0], before=PODS[0])
    assert decide.decide(snapshot(follower)).seed_commands == ()  # demoted: it already has them
    assert "masterauth" not in repr(decide.decide(snapshot(growing(seed_node(MASTER)))))  # no passwords in logs


def test_growing_without_the_seed_pod_writes_nothing_and_waits_for_it() -> None:
    redis = dataclasses.replace(growing(), seed=None, pods=tuple(pod(p) for p in PODS))
    redis = dataclasses.replace(redis, world=dataclasses.replace(redis.world, fallback=""))
    decision = decide.decide(snapshot(redis))
    assert [w for w in decision.writes if w.target is None] == []  # a StatefulSet now would start empty
    assert (decision.redis.condition.status, decision.redis.condition.reason) == (False, Reason.PROVISIONING)
    assert "Deployment web-redis" in decision.redis.condition.message


def test_a_secret_of_the_one_pod_redis_gets_the_replication_users_first() -> None:
    step, _ = decide.secret_step(SPEC, BODY, secret(ha_users=False), True, [])
    assert step is not None and step.kind == SecretStep.HA_USERS


def test_growing_the_seed_is_failed_over_once_the_sentinels_name_it_then_its_deployment_retired() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"name": STS}, "status": {"readyReplicas": 3, "updateRevision": "r1"}}
    pods = tuple(dataclasses.replace(pod(p), revision="r1", ready=True) for p in PODS)
    synced = tuple(node(p, FOLLOWS_SEED) for p in PODS)
    on_seed = dataclasses.replace(growing(*synced, seed_node(MASTER, True), named=SEED, before=SEED, sts=sts),
                                  pods=(*pods, SEED_POD))  # fmt: skip
    ask = decide.decide(snapshot(on_seed)).switchover
    assert ask is not None and ask.failover and f"one-pod Redis {SEED}" in ask.message
    moved = growing(node(PODS[0], MASTER, True), node(PODS[1], SYNCED), node(PODS[2], SYNCED),
                    seed_node(Role("slave", 100, (ha.pod_host(SPEC, PODS[0]), 6379), True)),
                    named=PODS[0], before=PODS[0], sts=sts)  # fmt: skip
    routed = dataclasses.replace(moved.world, endpoints=frozenset({ip(PODS[0])}))
    moved = dataclasses.replace(moved, pods=(*pods, SEED_POD), world=routed)
    done = decide.decide(snapshot(moved))
    assert done.retire == STS and done.switchover is None  # the Deployment goes, not its pod
    assert done.redis.condition.reason == Reason.RESIZING
    # The seed no longer serves as the fallback once status named a StatefulSet pod.
    lost = dataclasses.replace(moved.world, sentinels=(None, None, None), previous_master=PODS[0])
    assert failover.confirmed_master(lost) is None


def test_the_seed_pod_is_the_listed_pod_a_deployment_made_and_runs_no_sentinel() -> None:
    sts_pod = listed(PODS[0], "10.0.0.1")
    deployment_pod = listed(SEED, SEED_IP, **{ha.POD_TEMPLATE_HASH: "6d9f8"})
    deployment_pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    found = ha.seed_pod(SPEC, [sts_pod, deployment_pod], lambda address: True)
    assert found is not None and (found.name, found.ip, found.has_sentinel) == (SEED, SEED_IP, False)
    assert (found.revision, found.ready) == (ha.SEED_REVISION, True)
    assert ha.seed_pod(SPEC, [sts_pod], lambda address: True) is None
    assert ha.seed_pod(SPEC, [deployment_pod], lambda address: address != SEED_IP) is None


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


def test_the_operator_promotes_a_replica_only_when_the_sentinels_list_none_and_their_master_stays_silent() -> None:
    lost = dataclasses.replace(node(PODS[0], None), unanswered_s=failover.STUCK_AFTER_S)
    linked_down = Role("slave", -1, (ha.pod_host(SPEC, PODS[0]), 6379), False)
    replicas = (node(PODS[1], linked_down), node(PODS[2], linked_down))
    stuck = dataclasses.replace(world(lost, *replicas), listed_replicas=(0, 0, None))
    found = failover.rescue(stuck)
    assert found is not None and found.replicas == (PODS[1], PODS[2])
    listing = dataclasses.replace(stuck, listed_replicas=(0, 1, None))
    assert failover.rescue(listing) is None  # a Sentinel that lists one fails over itself
    assert failover.rescue(dataclasses.replace(stuck, listed_replicas=(0, None, None))) is None  # no majority asked
    early = dataclasses.replace(stuck, nodes=(dataclasses.replace(lost, unanswered_s=3.0), *replicas))
    assert failover.rescue(early) is None  # down-after and an election first
    answering = dataclasses.replace(stuck, nodes=(node(PODS[0], MASTER), *replicas))
    assert failover.rescue(answering) is None
    decision = decide.decide(snapshot(seen(stuck)))
    assert decision.rescue == found
    first = decision.monitor_commands[0]
    assert first[1] == ("SENTINEL", "MONITOR", ha.MASTER_NAME, ha.pod_host(SPEC, PODS[1]), "6379", "2")
    assert first[2][-2:] == ("auth-pass", "x") and "auth-pass" not in repr(decision)
