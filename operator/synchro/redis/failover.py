"""Pure: what the operator does about an HA managed Redis (redis/ha.py), from what it saw of the pods and Sentinels.

Sentinel picks the master; the operator only follows it, and fences:

1. a master is confirmed when a majority of all Sentinels names it AND its own ROLE says master; else there is
   none, and no pod may carry the master label (fail closed: a refused connection beats a split brain);
2. the label goes on the confirmed master first, then off every other pod, so the client Service is never empty
   while it moves (soketi exits on a publish that finds no Redis: docs/presets.md);
3. app connections are cut on the other pods only once the client Service's EndpointSlices list the master
   alone, so that a client's reconnect lands on the master (Stalwart waits 64 s after a failed resubscribe);
4. an old master that stays unanswered past DELETE_AFTER_S loses its pod: its app connections cannot be cut
   while it is frozen, and deleting the pod closes them.

No I/O, and no clock but the one Silence is handed: redis/nodes.py gathers a World and carries out a Verdict.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro.conditions import Reason
from synchro.redis.model import Address

DELETE_AFTER_S = 20.0  # an old master unanswered this long (Sentinel's down-after is 5 s) loses its pod
REPLICATION_FLAGS = frozenset("SM")  # CLIENT LIST flags: S a replica's link to us, M our link to our master
SENTINEL_NAME_PREFIX = "sentinel-"  # what a Sentinel names its connections (CLIENT SETNAME)
# status.redis.nodes[].lagBytes is rounded down to this: the offsets are read a moment apart, and the bytes of the
# probe's own PUBLISHes in between would otherwise rewrite status on every 2 s pass.
LAG_STEP_BYTES = 1024
# What a Sentinel that answered but monitors no master says, in World.sentinels: after SENTINEL REMOVE, which only
# the switch back to one pod sends (redis/shrink.py).
NO_MASTER: Address = ("", 0)


@dataclass(frozen=True)
class Client:
    """One line of CLIENT LIST."""

    id: int
    addr: str = ""
    name: str = ""
    user: str = ""
    flags: str = "N"
    sub: int = 0
    psub: int = 0


def client_from(fields: Mapping[str, str]) -> Client:
    """One connection's `key=value` fields, as CLIENT LIST gives them."""
    return Client(
        id=int(fields["id"]),
        addr=fields.get("addr", ""),
        name=fields.get("name", ""),
        user=fields.get("user", ""),
        flags=fields.get("flags", "N"),
        sub=int(fields.get("sub", "0") or 0),
        psub=int(fields.get("psub", "0") or 0),
    )


@dataclass(frozen=True)
class Role:
    """ROLE's reply: a master with its replicas' offsets, or a replica with its link to its master."""

    role: str  # "master", "slave" (Redis's word) or "sentinel"
    offset: int = 0  # a master's replication offset, or the offset a replica has processed
    master: Address | None = None  # a replica's master
    link_up: bool = True  # a replica's link to its master is "connected"


def short_host(host: str) -> str:
    """A host as the operator names the pods (ha.pod_host: `<pod>.<headless service>.<namespace>.svc`, or an IP),
    from what a Redis or Sentinel reports: the start scripts announce the names with the cluster's domain after
    `.svc`, pods of an older Synchro without it."""
    head, svc, _ = host.lower().partition(".svc.")
    return head + ".svc" if svc else host.lower()


def domain_of(host: str) -> str:
    """The cluster's domain a reported name goes on with after `.svc` ("": none, or an IP)."""
    return host.lower().partition(".svc.")[2]


def parse_role(reply: Sequence[Any]) -> Role:
    def text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    role = text(reply[0])
    if role == "master":
        return Role("master", int(reply[1]))
    if role == "slave":
        master = (short_host(text(reply[1])), int(reply[2]))
        return Role("slave", int(reply[4]), master, text(reply[3]) == "connected")
    return Role(role)


@dataclass(frozen=True)
class Pod:
    """Where the operator reaches one Redis pod and its Sentinel, and what the Kubernetes side knows of it."""

    name: str
    redis: Address  # ("", port): not reachable (no pod, no IP yet, or outside SYNCHRO_REDIS_NETWORKS)
    sentinel: Address
    names: frozenset[Address]  # what the Sentinels call it: its stable DNS name (and its IP)
    ip: str | None = None
    labelled: bool = False
    uid: str = ""  # a pod made again under the same name starts a new silence
    revision: str = ""  # the StatefulSet revision it was made from (its controller-revision-hash label)
    ready: bool = False  # its Ready condition
    has_sentinel: bool = True  # False: the one-pod Redis being grown from, which runs none

    @property
    def reachable(self) -> bool:
        return bool(self.redis[0])


@dataclass(frozen=True)
class Node:
    """One Redis pod, as seen this pass. None for what it did not answer."""

    pod: str
    addresses: frozenset[Address]  # the names Sentinels may give it: its stable DNS name, its IP
    ip: str | None = None  # the pod's IP, as the client Service's EndpointSlices list it
    labelled: bool = False  # it carries the master label
    role: Role | None = None
    clients: tuple[Client, ...] | None = None
    unanswered_s: float = 0.0  # how long it has not answered ROLE (0: it answers)
    was_master: bool = False  # the last ROLE it answered (this pod, not an earlier one of its name) said master
    uid: str = ""  # the pod's uid: a deletion must not reach a pod made again under its name


@dataclass(frozen=True)
class World:
    nodes: tuple[Node, ...]
    # Each Sentinel's get-master-addr-by-name; None: it did not answer; NO_MASTER: it monitors none.
    sentinels: tuple[Address | None, ...]
    endpoints: frozenset[str] | None  # ready addresses of the client Service's EndpointSlices; None: not read
    own_users: frozenset[str]  # the operator's, the replicas' and the Sentinels' ACL users: never cut
    now: str = ""  # for lastFailover.time
    previous_master: str = ""  # status.redis.master as written before ("": none)
    last_failover: Mapping[str, Any] | None = None  # status.redis.lastFailover as written before
    # Per Sentinel, in the order of `sentinels`: how many replicas it knows up and linked (None: no answer; empty:
    # not asked). A Sentinel learns them from the master's INFO: until it knows one, it has nobody to promote.
    known_replicas: tuple[int | None, ...] = ()
    listed_replicas: tuple[int | None, ...] = ()  # the same, counting every replica it lists, down or not
    # The same order: whether it is in TILT mode. A Sentinel whose timer found its clock jumped (over 2 s between
    # two ticks: on the real node, blocking name lookups right after its pod started) acts on nothing until 30 s
    # after the last jump: no failover it is asked for, none it would start. It still answers and votes.
    tilted: tuple[bool | None, ...] = ()
    # The one-pod Redis a Redis with replicas grows from (its pod, last in `nodes`): the master while no Sentinel
    # majority names one and status named no other before.
    fallback: str = ""
    # The cluster's domain the Sentinels name the master with ("": the short form, or none seen): the operator's
    # own SENTINEL MONITOR names a pod the same way (a pod known under two names breaks a failover: ha.py).
    domain: str = ""


@dataclass(frozen=True)
class Label:
    pod: str
    master: bool  # True: put the master label on; False: take it off


@dataclass(frozen=True)
class Cut:
    pod: str
    ids: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    master: str | None
    labels: tuple[Label, ...]  # in this order
    wait_for_endpoints: bool  # the Service may still route elsewhere: cut nothing yet
    cuts: tuple[Cut, ...]
    delete: tuple[str, ...]  # pods to delete
    reason: str | None  # RedisReady's reason when not plainly reachable: Degraded, FailingOver or NoQuorum
    message: str
    status: dict[str, Any] = field(default_factory=dict)  # status.redis's HA fields

    @property
    def serving(self) -> bool:
        """RedisReady may be True: a master is confirmed and the Service routes to it alone."""
        return self.master is not None and not self.wait_for_endpoints


def majority(sentinels: int) -> int:
    return sentinels // 2 + 1


def named_pod(nodes: Sequence[Node], address: Address | None) -> str | None:
    if address is None:
        return None
    host, port = address
    return next((n.pod for n in nodes if (host.lower(), port) in n.addresses), None)


def sentinel_choice(world: World) -> tuple[str | None, int]:
    """The pod a majority of all Sentinels names as master (None: no majority), and how many answered."""
    answered = [a for a in world.sentinels if a is not None]
    votes = Counter(named_pod(world.nodes, a) for a in answered)
    pod, count = votes.most_common(1)[0] if votes else (None, 0)
    return (pod if pod is not None and count >= majority(len(world.sentinels)) else None), len(answered)


def forgotten(world: World) -> bool:
    """Every Sentinel answered, and none monitors a master: the switch back to one pod sent them SENTINEL REMOVE,
    and may have been cut short (an operator stopped) before the master moved."""
    return bool(world.sentinels) and all(a == NO_MASTER for a in world.sentinels)


def confirmed_master(world: World) -> str | None:
    pod, _ = sentinel_choice(world)
    if pod is None and world.fallback and world.previous_master in ("", world.fallback):
        pod = world.fallback  # growing from one pod: it serves until its Sentinels agree (they follow it too)
    if pod is None and forgotten(world):
        pod = world.previous_master  # the master status named serves on, if it says so, until the switch is done
    node = next((n for n in world.nodes if n.pod == pod), None)
    return pod if node is not None and node.role is not None and node.role.role == "master" else None


STUCK_AFTER_S = 20.0  # the master the Sentinels name silent this long, and no replica listed: the operator steps in


@dataclass(frozen=True)
class Rescue:
    """The operator's own failover, for the one state Sentinel cannot leave (docs/ha.md)."""

    replicas: tuple[str, ...]  # the replicas that answer: the one with the most data is promoted, the rest follow
    message: str  # to go on with which one


def rescue(world: World, after_s: float = STUCK_AFTER_S) -> Rescue | None:
    """A master lost before the Sentinels learnt its replicas (they learn them only from its INFO): a majority
    names it, it has not answered for `after_s`, and no Sentinel that answers lists a single replica, so every
    failover they try ends in -failover-abort-no-good-slave. Then the replica with the most data is promoted by the
    operator, and the Sentinels are told to monitor it. Which one holds the most is asked at that moment (ROLE
    says -1 of a replica whose link is down)."""
    chosen, _ = sentinel_choice(world)
    node = next((n for n in world.nodes if n.pod == chosen), None)
    listed = [k for k in world.listed_replicas if k is not None]
    if (
        node is None
        or node.role is not None
        or node.unanswered_s < after_s
        or len(listed) < majority(len(world.sentinels))
        or any(listed)
    ):
        return None
    replicas = [n for n in world.nodes if n.role is not None and n.role.role == "slave"]
    if not replicas:
        return None
    message = (
        f"the Sentinels name {chosen}, silent for {node.unanswered_s:.0f} s, and list no replica to promote:"
        " the operator promotes the replica with the most data"
    )
    return Rescue(tuple(n.pod for n in replicas), message)


def label_moves(nodes: Sequence[Node], master: str | None) -> tuple[Label, ...]:
    """The master labelled first, then every other label taken off: the Service is never empty while a master is
    confirmed, and never points anywhere while none is."""
    first = [Label(master, True)] if master and not any(n.labelled for n in nodes if n.pod == master) else []
    return (*first, *(Label(n.pod, False) for n in nodes if n.labelled and n.pod != master))


def app_clients(clients: Sequence[Client], own_users: frozenset[str]) -> tuple[int, ...]:
    """The connections an app made: not replication (S, M), not a Sentinel's, not the operator's own."""
    return tuple(
        c.id
        for c in clients
        if not (REPLICATION_FLAGS & set(c.flags))
        and not c.name.startswith(SENTINEL_NAME_PREFIX)
        and c.user not in own_users
    )


def cuts(world: World, master: str) -> tuple[Cut, ...]:
    found = [Cut(n.pod, app_clients(n.clients, world.own_users)) for n in world.nodes if n.pod != master and n.clients]
    return tuple(c for c in found if c.ids)


def routed_to_master(world: World, master: str) -> bool:
    node = next(n for n in world.nodes if n.pod == master)
    return world.endpoints is not None and node.ip is not None and world.endpoints == {node.ip}


def to_delete(world: World, master: str | None) -> tuple[str, ...]:
    """An old master that stays silent: it may still hold app connections, which only its end closes. Only once
    another master is confirmed (deleting the only copy of the data helps nobody), and never a pod that was not
    a master (one still starting, say: deleting it would only start it again)."""
    if master is None:
        return ()
    return tuple(
        n.pod
        for n in world.nodes
        if n.pod != master and n.role is None and n.was_master and n.unanswered_s >= DELETE_AFTER_S
    )


def decide(world: World) -> Verdict:
    master = confirmed_master(world)
    labels = label_moves(world.nodes, master)
    wait = master is not None and (bool(labels) or not routed_to_master(world, master))
    fence = cuts(world, master) if master is not None and not wait else ()
    reason, message = redis_reason(world, master, wait)
    return Verdict(
        master,
        labels,
        wait,
        fence,
        to_delete(world, master),
        reason,
        message,
        status_fields(world, master),
    )


def redis_reason(world: World, master: str | None, wait: bool) -> tuple[str | None, str]:
    chosen, answered = sentinel_choice(world)
    need = majority(len(world.sentinels))
    if chosen is None and master is not None and forgotten(world):
        return Reason.DEGRADED, (
            f"{master} serves alone: no Sentinel monitors a master any more (the switch back to one pod told them"
            " to forget it)"
        )
    if chosen is None and master is not None:  # the fallback
        return Reason.DEGRADED, (
            f"{master} serves alone; {answered} of {len(world.sentinels)} Sentinels answered, {need} must name it"
        )
    if chosen is None:
        return Reason.NO_QUORUM, (
            f"{answered} of {len(world.sentinels)} Sentinels answered, {need} must name the same master:"
            f" {sentinel_answers(world)}; no pod is labelled master"
        )
    if master is None:
        return Reason.FAILING_OVER, f"the Sentinels name {chosen}, whose ROLE is not master yet"
    if wait:
        return Reason.FAILING_OVER, f"{master} is the master; waiting for Service routing to list it alone"
    followed = next(n.addresses for n in world.nodes if n.pod == master)
    missing = [f"{n.pod} ({following(n)})" for n in world.nodes if n.pod != master and not replica_of(n, followed)]
    replicas = len(world.nodes) - 1
    unaware = [
        f"{n.pod}'s ({known} of {replicas})"
        for n, known in zip(world.nodes, world.known_replicas, strict=False)
        if known is not None and known < replicas
    ]
    tilt = tilted_pods(world)
    stuck = bool(tilt) and len(tilt) == answered  # none of them would start a failover
    if missing or answered < len(world.sentinels) or unaware or stuck:
        unknown = f"; Sentinels that do not know every replica yet: {', '.join(unaware)}" if unaware else ""
        unknown += "; every Sentinel that answers is in TILT mode: none fails over until one leaves it" if stuck else ""
        return Reason.DEGRADED, (
            f"{master} serves; replicas not in sync: {', '.join(missing) or 'none'};"
            f" Sentinels answering: {answered} of {len(world.sentinels)}{unknown}"
        )
    return None, f"{master} serves, with {len(world.nodes) - 1} replicas in sync"


def replica_of(node: Node, master: frozenset[Address]) -> bool:
    """A replica of the master at one of these addresses, with its link up."""
    role = node.role
    return (
        role is not None
        and role.role == "slave"
        and role.link_up
        and role.master is not None
        and ((role.master[0].lower(), role.master[1]) in master)
    )


def following(node: Node) -> str:
    """What a pod that is not an in-sync replica of the master says of itself."""
    role = node.role
    if role is None:
        return "no answer"
    if role.role != "slave" or role.master is None:
        return f"says {role.role}"
    host, port = role.master
    return f"replica of {host}:{port}, link {'up' if role.link_up else 'down'}"


def tilted_pods(world: World) -> frozenset[str]:
    """The pods whose Sentinel said it is in TILT mode this pass (World.tilted)."""
    return frozenset(n.pod for n, tilt in zip(world.nodes, world.tilted, strict=False) if tilt)


def sentinel_answers(world: World) -> str:
    said = [
        "no master" if a == NO_MASTER else named_pod(world.nodes, a) or (f"{a[0]}:{a[1]}" if a else "no answer")
        for a in world.sentinels
    ]
    return ", ".join(said)


def status_fields(world: World, master: str | None) -> dict[str, Any]:
    """status.redis's HA fields: master, nodes, sentinels, and lastFailover, which a confirmed master other than
    the one status named before records (healSeconds: how long the old master had not answered by then)."""
    offset = next((n.role.offset for n in world.nodes if n.pod == master and n.role), None)
    nodes = []
    for n in world.nodes:
        role = "unknown" if n.role is None else ("master" if n.role.role == "master" else "replica")
        entry: dict[str, Any] = {"pod": n.pod, "role": role, "linkUp": n.role is not None and n.role.link_up}
        if role == "replica" and offset is not None and n.role is not None:
            lag = max(offset - n.role.offset, 0)
            entry["lagBytes"] = lag - lag % LAG_STEP_BYTES
        nodes.append(entry)
    fields: dict[str, Any] = {
        "master": master or "",
        "nodes": nodes,
        "sentinels": {"ready": sum(a is not None for a in world.sentinels), "quorum": majority(len(world.sentinels))},
    }
    before = world.previous_master
    if master is not None and before and before != master:
        down = next((n.unanswered_s for n in world.nodes if n.pod == before), 0.0)
        fields["lastFailover"] = {"time": world.now, "from": before, "to": master, "healSeconds": round(down, 1)}
    elif world.last_failover:
        fields["lastFailover"] = dict(world.last_failover)
    return fields


@dataclass(frozen=True)
class Told:
    events: tuple[tuple[str, str, str], ...]  # (type, reason, message)
    untold: tuple[str, str] | None  # a failover (from, to) whose Event waits for its fence


def tell(world: World, verdict: Verdict, untold: tuple[str, str] | None, cut: int) -> Told:
    """The Events of a pass: one per failover, once the Service routes to the new master and the fence ran (so it
    can say how many connections were cut), and one per pass that cut app connections outside a failover."""
    before, master = world.previous_master, verdict.master
    if master is not None and before and before != master:
        untold = (before, master)
    if untold is not None and verdict.serving:
        message = f"{untold[1]} replaced {untold[0]} as the Redis master; app connections cut on the other pods: {cut}"
        return Told((("Normal", Reason.FAILED_OVER, message),), None)
    if cut:
        pods = ", ".join(c.pod for c in verdict.cuts)
        message = f"app connections on {pods}, which are not the master ({master}): {cut} cut"
        return Told((("Warning", Reason.CLIENTS_ON_REPLICA, message),), untold)
    return Told((), untold)


class Silence:
    """Since when each pod has not answered ROLE, and whether the last ROLE it answered said master: what
    failover.Node's unanswered_s and was_master read. Kept per pod uid, so a pod deleted and made again under the
    same name starts afresh. One per SyncCluster, kept between passes in reconcile/memory.py."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._since: dict[tuple[str, str], float] = {}
        self._master: dict[tuple[str, str], bool] = {}

    def heard(self, pod: Pod, answer: Role | None) -> tuple[float, bool]:
        """(seconds unanswered, was master) after this pass's answer."""
        key = (pod.name, pod.uid)
        if answer is not None:
            self._since.pop(key, None)
            self._master[key] = answer.role == "master"
            return 0.0, self._master[key]
        now = self.clock()
        return now - self._since.setdefault(key, now), self._master.get(key, False)
