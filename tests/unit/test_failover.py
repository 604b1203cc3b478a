"""The failover core (synchro.redis.failover), table-driven over plain observations: which master is confirmed,
how the label moves, when and whom the fence cuts, which pod is deleted, and what RedisReady and status say;
and how nodes.look reads the names it is told."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis._parsers.helpers import parse_client_list  # what client_list() parses its reply with

from synchro import api
from synchro.conditions import Reason
from synchro.redis import failover, ha, nodes
from synchro.redis.failover import Client, Cut, Label, Node, Role, World
from synchro.redis.model import Credentials

OWN = frozenset({"synchro-operator", "synchro-sentinel", "synchro-replica"})
PODS = ("r-0", "r-1", "r-2")


def addr(pod: str) -> tuple[str, int]:
    return (f"{pod}.r-nodes.ns.svc", 6379)


def ip(pod: str) -> str:
    return f"10.0.0.{PODS.index(pod)}"


def master(offset: int = 1000) -> Role:
    return Role("master", offset)


def replica_of(pod: str, offset: int = 1000, up: bool = True) -> Role:
    return Role("slave", offset, addr(pod), up)


# The connections a non-master holds besides an app's: its link to the master, a Sentinel's two, the operator's.
QUIET = (
    Client(1, flags="M", user="synchro-replica"),
    Client(2, name="sentinel-1a2b3c4d-cmd", user="synchro-sentinel"),
    Client(3, name="sentinel-1a2b3c4d-pubsub", user="synchro-sentinel", flags="P", sub=1),
    Client(4, user="synchro-operator"),
)
APP = (Client(20, user="synchro-app"), Client(21, user="synchro-app", flags="P", sub=2))


def node(
    pod: str,
    role: Role | None,
    labelled: bool = False,
    apps: tuple[Client, ...] = (),
    down_s: float = 0.0,
    was_master: bool = False,
) -> Node:
    clients = None if role is None else QUIET + apps
    return Node(pod, frozenset({addr(pod), (ip(pod), 6379)}), ip(pod), labelled, role, clients, down_s, was_master)


def world(*nodes: Node, sentinels: tuple[str | None, ...], endpoints: tuple[str, ...] | None = None, **kw: Any):
    said = tuple(addr(p) if p else None for p in sentinels)
    routed = None if endpoints is None else frozenset(ip(p) for p in endpoints)
    return World(tuple(nodes), said, routed, OWN, now="2026-12-03T20:00:00Z", **kw)


@dataclass
class Case:
    id: str
    world: World
    master: str | None
    labels: tuple[Label, ...] = ()
    wait: bool = False
    cuts: tuple[Cut, ...] = ()
    delete: tuple[str, ...] = ()
    reason: str | None = None
    status: dict[str, Any] = field(default_factory=dict)  # a subset of the status fields


APP_IDS = (20, 21)


def settled(**kw: Any) -> World:
    """r-0 the master, labelled and routed; r-1 and r-2 its replicas; every Sentinel names r-0."""
    return world(
        node("r-0", master(), True),
        node("r-1", replica_of("r-0")),
        node("r-2", replica_of("r-0")),
        sentinels=("r-0", "r-0", "r-0"),
        endpoints=("r-0",),
        **kw,
    )


CASES = [
    Case(
        "settled, but one Sentinel knows no replica yet: a failover now would find none to promote",
        settled(known_replicas=(2, 0, None)),
        "r-0",
        reason=Reason.DEGRADED,
    ),
    Case("settled, and every Sentinel that answers knows both replicas", settled(known_replicas=(2, 2, 2)), "r-0"),
    Case(
        "settled: nothing to do",
        settled(),
        "r-0",
        status={"master": "r-0", "sentinels": {"ready": 3, "quorum": 2}},
    ),
    Case(
        "the invariant: an app client on a healthy replica is cut, not Sentinel's, replication's or ours",
        world(
            node("r-0", master(), True, apps=APP),
            node("r-1", replica_of("r-0"), apps=APP),
            node("r-2", replica_of("r-0")),
            sentinels=("r-0", "r-0", "r-0"),
            endpoints=("r-0",),
        ),
        "r-0",
        cuts=(Cut("r-1", APP_IDS),),
    ),
    Case(
        "master killed: label the new one first, then unlabel the old; wait for the Service before cutting",
        world(
            node("r-0", None, True, down_s=6.5),
            node("r-1", master(6000), apps=APP),
            node("r-2", replica_of("r-1", 1990), apps=APP),
            sentinels=("r-1", "r-1", None),
            endpoints=("r-0",),
            previous_master="r-0",
        ),
        "r-1",
        labels=(Label("r-1", True), Label("r-0", False)),
        wait=True,
        reason=Reason.FAILING_OVER,
        status={
            "lastFailover": {"time": "2026-12-03T20:00:00Z", "from": "r-0", "to": "r-1", "healSeconds": 6.5},
            "nodes": [
                {"pod": "r-0", "role": "unknown", "linkUp": False},
                {"pod": "r-1", "role": "master", "linkUp": True},
                {"pod": "r-2", "role": "replica", "linkUp": True, "lagBytes": 3072},  # 4010, in KiB steps
            ],
            "sentinels": {"ready": 2, "quorum": 2},
        },
    ),
    Case(
        "the next pass: the Service lists the new master alone, so the replica's apps are cut",
        world(
            node("r-0", None, down_s=9),
            node("r-1", master(), True, apps=APP),
            node("r-2", replica_of("r-1"), apps=APP),
            sentinels=("r-1", "r-1", None),
            endpoints=("r-1",),
            previous_master="r-1",
            last_failover={"time": "t", "from": "r-0", "to": "r-1", "healSeconds": 6.5},
        ),
        "r-1",
        cuts=(Cut("r-2", APP_IDS),),
        reason=Reason.DEGRADED,
        status={"lastFailover": {"time": "t", "from": "r-0", "to": "r-1", "healSeconds": 6.5}},
    ),
    Case(
        "the Service still lists the old master's address: no cut yet",
        world(
            node("r-0", None, down_s=9),
            node("r-1", master(), True),
            node("r-2", replica_of("r-1"), apps=APP),
            sentinels=("r-1", "r-1", "r-1"),
            endpoints=("r-0", "r-1"),
        ),
        "r-1",
        wait=True,
        reason=Reason.FAILING_OVER,
    ),
    Case(
        "EndpointSlices not read: no cut",
        world(
            node("r-0", master(), True),
            node("r-1", replica_of("r-0"), apps=APP),
            sentinels=("r-0", "r-0", "r-0"),
        ),
        "r-0",
        wait=True,
        reason=Reason.FAILING_OVER,
    ),
    Case(
        "the old master frozen past the bound loses its pod, once another master is confirmed",
        world(
            node("r-0", None, down_s=failover.DELETE_AFTER_S, was_master=True),
            node("r-1", master(), True),
            node("r-2", replica_of("r-1"), down_s=60),  # silent, but never a master: kept
            sentinels=("r-1", "r-1", "r-1"),
            endpoints=("r-1",),
        ),
        "r-1",
        delete=("r-0",),
        reason=Reason.DEGRADED,
    ),
    Case(
        "the old master frozen, not yet past the bound: kept",
        world(
            node("r-0", None, down_s=failover.DELETE_AFTER_S - 1, was_master=True),
            node("r-1", master(), True),
            node("r-2", replica_of("r-1")),
            sentinels=("r-1", "r-1", "r-1"),
            endpoints=("r-1",),
        ),
        "r-1",
        reason=Reason.DEGRADED,
    ),
    Case(
        "the old master back from SIGSTOP still says master: not confirmed, so its apps are cut",
        world(
            node("r-0", master(500), apps=APP),
            node("r-1", master(2000), True),
            node("r-2", replica_of("r-1")),
            sentinels=("r-1", "r-1", "r-1"),
            endpoints=("r-1",),
        ),
        "r-1",
        cuts=(Cut("r-0", APP_IDS),),
        reason=Reason.DEGRADED,
    ),
    Case(
        "split answers: no majority, so no pod keeps the label (fail closed), no cut, no delete",
        world(
            node("r-0", master(), True, apps=APP),
            node("r-1", master(), apps=APP),
            node("r-2", None, down_s=60, was_master=True),
            sentinels=("r-0", "r-1", None),
            endpoints=("r-0",),
        ),
        None,
        labels=(Label("r-0", False),),
        reason=Reason.NO_QUORUM,
        status={"master": "", "sentinels": {"ready": 2, "quorum": 2}},
    ),
    Case(
        "no quorum: one Sentinel of three answers",
        world(
            node("r-0", master(), True),
            node("r-1", replica_of("r-0")),
            node("r-2", replica_of("r-0")),
            sentinels=("r-0", None, None),
            endpoints=("r-0",),
        ),
        None,
        labels=(Label("r-0", False),),
        reason=Reason.NO_QUORUM,
    ),
    Case(
        "Sentinels agree on a pod whose ROLE is not master yet: none confirmed",
        world(
            node("r-0", None, True, down_s=6),
            node("r-1", replica_of("r-0", up=False)),
            node("r-2", replica_of("r-0", up=False)),
            sentinels=("r-1", "r-1", "r-1"),
            endpoints=("r-0",),
        ),
        None,
        labels=(Label("r-0", False),),
        reason=Reason.FAILING_OVER,
    ),
    Case(
        "a majority naming an address of no pod confirms nothing",
        World(
            (node("r-0", master(), True), node("r-1", replica_of("r-0")), node("r-2", replica_of("r-0"))),
            (("10.9.9.9", 6379), ("10.9.9.9", 6379), addr("r-0")),
            frozenset({ip("r-0")}),
            OWN,
        ),
        None,
        labels=(Label("r-0", False),),
        reason=Reason.NO_QUORUM,
    ),
    Case(
        "a replica labelled by hand while the master is labelled and healthy: unlabelled; cut once routed",
        world(
            node("r-0", master(), True),
            node("r-1", replica_of("r-0")),
            node("r-2", replica_of("r-0"), True, apps=APP),
            sentinels=("r-0", "r-0", "r-0"),
            endpoints=("r-0", "r-2"),
            previous_master="r-0",
        ),
        "r-0",
        labels=(Label("r-2", False),),
        wait=True,
        reason=Reason.FAILING_OVER,
        status={"master": "r-0"},  # and no lastFailover: the master did not change
    ),
    Case(
        "only a replica carries the label while the master is healthy: the master first, then the replica off",
        world(
            node("r-0", master()),
            node("r-1", replica_of("r-0"), True),
            node("r-2", replica_of("r-0")),
            sentinels=("r-0", "r-0", None),
            endpoints=("r-1",),
            previous_master="r-0",
        ),
        "r-0",
        labels=(Label("r-0", True), Label("r-1", False)),
        wait=True,
        reason=Reason.FAILING_OVER,
    ),
    Case(
        "a fresh StatefulSet: pod-0 labelled, no failover recorded",
        world(
            node("r-0", master()),
            node("r-1", replica_of("r-0")),
            node("r-2", replica_of("r-0")),
            sentinels=("r-0", "r-0", "r-0"),
        ),
        "r-0",
        labels=(Label("r-0", True),),
        wait=True,
        reason=Reason.FAILING_OVER,
    ),
    Case(
        "a replica whose link is down, or which follows another master, is reported Degraded",
        world(
            node("r-0", master(), True),
            node("r-1", replica_of("r-0", up=False)),
            node("r-2", replica_of("r-1")),
            sentinels=("r-0", "r-0", "r-0"),
            endpoints=("r-0",),
        ),
        "r-0",
        reason=Reason.DEGRADED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case) -> None:
    verdict = failover.decide(case.world)
    assert verdict.master == case.master
    assert verdict.labels == case.labels
    assert verdict.wait_for_endpoints == case.wait
    assert verdict.cuts == case.cuts
    assert verdict.delete == case.delete
    assert verdict.reason == case.reason, verdict.message
    for key, value in case.status.items():
        assert verdict.status[key] == value, key
    if case.master is None:
        assert not any(label.master for label in verdict.labels) and not verdict.serving
    if "lastFailover" not in case.status:
        assert "lastFailover" not in verdict.status


def test_the_labels_never_leave_the_service_empty_while_a_master_is_confirmed() -> None:
    """Applying the moves one by one, some pod carries the label after each, from the first on."""
    for case in CASES:
        verdict = failover.decide(case.world)
        if verdict.master is None:
            continue
        labelled = {n.pod for n in case.world.nodes if n.labelled}
        for move in verdict.labels:
            labelled = labelled | {move.pod} if move.master else labelled - {move.pod}
            assert labelled, case.id
        assert labelled == {verdict.master}, case.id


def test_client_list_and_role_replies_parse() -> None:
    # CLIENT LIST as redis-py's client_list() gives it (nodes.clients): one dict of strings per connection.
    text = (
        "id=5 addr=127.0.0.1:41234 laddr=127.0.0.1:6379 fd=9 name= age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0"
        " multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22426"
        " events=r cmd=client|list user=synchro-app redir=-1 resp=2\n"
        "id=7 addr=10.0.0.2:6379 laddr=10.0.0.1:50000 fd=10 name=sentinel-ab12cd34-cmd age=9 idle=0 flags=P db=0"
        " sub=1 psub=0 ssub=0 multi=-1 cmd=subscribe user=synchro-sentinel redir=-1 resp=2\n"
    )
    assert tuple(failover.client_from(fields) for fields in parse_client_list(text)) == (
        Client(5, "127.0.0.1:41234", "", "synchro-app", "N", 0, 0),
        Client(7, "10.0.0.2:6379", "sentinel-ab12cd34-cmd", "synchro-sentinel", "P", 1, 0),
    )
    assert failover.parse_role([b"master", 3129659, [[b"10.0.0.2", b"6379", b"3129242"]]]) == Role("master", 3129659)
    assert failover.parse_role([b"slave", b"r-0.r-nodes.ns.svc", 6379, b"connected", 3167038]) == Role(
        "slave", 3167038, ("r-0.r-nodes.ns.svc", 6379), True
    )
    assert failover.parse_role([b"slave", b"10.0.0.1", 6379, b"connect", -1]).link_up is False
    # Named with the cluster's domain (the start scripts announce that): the pod as the operator names it.
    fqdn = failover.parse_role([b"slave", b"R-0.r-nodes.ns.svc.cluster.local", 6379, b"connected", 1]).master
    assert fqdn == ("r-0.r-nodes.ns.svc", 6379) and failover.short_host("10.0.0.1") == "10.0.0.1"
    assert failover.short_host("r-0.r-nodes.ns.svc.my.domain") == "r-0.r-nodes.ns.svc"
    assert failover.domain_of("R-0.r-nodes.ns.svc.My.Domain") == "my.domain" and failover.domain_of("10.0.0.1") == ""
    assert failover.parse_role([b"sentinel", [b"synchro"]]).role == "sentinel"


def test_app_clients_are_everything_but_replication_sentinels_and_our_own_users() -> None:
    clients = (
        Client(1, flags="S"),  # a replica's link, on its master
        Client(2, flags="M"),  # our link to our master, on a replica
        Client(3, name="sentinel-0badf00d-cmd"),
        Client(4, user="synchro-sentinel"),
        Client(5, user="synchro-operator"),
        Client(6, user="synchro-app"),
        Client(7, user="synchro-app", flags="P", sub=1),
        Client(8, user="default", name="directus"),  # without auth every app is the default user
    )
    assert failover.app_clients(clients, OWN) == (6, 7, 8)


def test_silence_counts_from_the_first_unanswered_pass_and_forgets_a_pod_made_again() -> None:
    from synchro.redis import nodes

    now = [100.0]
    silence = failover.Silence(lambda: now[0])
    pod = nodes.Pod("r-0", ("10.0.0.0", 6379), ("10.0.0.0", 26379), frozenset(), uid="a")
    assert silence.heard(pod, master()) == (0.0, True)
    now[0] = 105
    assert silence.heard(pod, None) == (0.0, True)
    now[0] = 125
    assert silence.heard(pod, None) == (20.0, True)
    again = nodes.Pod("r-0", pod.redis, pod.sentinel, frozenset(), uid="b")  # deleted, made again
    assert silence.heard(again, None) == (0.0, False)
    now[0] = 200
    assert silence.heard(again, replica_of("r-1")) == (0.0, False)


def test_look_names_the_master_as_the_operator_does_and_keeps_the_domain_it_was_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """nodes.look, its Redis and Sentinel calls replaced: Sentinels that name the master with the cluster's domain
    give the World the short name every comparison uses (ha.pod_host), and the domain for the operator's own
    SENTINEL MONITOR. Silent ones and one that monitors nothing give no domain."""
    spec = api.parse(
        "ns", "web", {"redis": {"managed": {"replicas": 3}}, "targets": [{"name": "w", "preset": "generic"}]}
    )
    told = iter([None, failover.NO_MASTER, ("WEB-redis-0.web-redis-nodes.ns.svc.cluster.local", 6379)])

    async def sentinel_master(*_: Any, **__: Any) -> Any:
        return next(told)

    async def silent(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(nodes, "sentinel_master", sentinel_master)
    for name in ("role", "clients", "sentinel_view"):
        monkeypatch.setattr(nodes, name, silent)
    listed = [{"metadata": {"name": f"web-redis-{i}"}, "status": {"podIP": f"10.0.0.{i + 1}"}} for i in range(3)]
    pods = ha.pods(spec, listed, lambda ip: True)
    creds = Credentials("op", "x", 0, False)
    world = asyncio.run(nodes.look(pods, creds, frozenset(), None, failover.Silence()))
    assert world.sentinels == (None, failover.NO_MASTER, (ha.pod_host(spec, "web-redis-0"), 6379))
    assert world.domain == "cluster.local"
    assert failover.named_pod(world.nodes, world.sentinels[2]) == "web-redis-0"
