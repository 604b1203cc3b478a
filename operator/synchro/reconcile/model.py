"""Pure: what a pass saw (the Snapshot), what it decided (the Decision), and what it hands back (the Pass).

Plain frozen data, no I/O: observe fills a Snapshot, decide turns it into a Decision, act writes the Decision's
Writes and decide.conclude folds what act could not write into the Pass the controller loop publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from synchro import api, presets
from synchro.api import Obj
from synchro.conditions import Condition
from synchro.redis.failover import Pod, Rescue, Verdict, World
from synchro.redis.model import Address, Credentials, PingResult
from synchro.redis.shrink import Step as ShrinkStep
from synchro.redis.switchover import Step

ClaimKey = tuple[str, str, str]  # (namespace, kind, name) of a target workload, a Secret, ...
Claim = tuple[str, str]  # (creationTimestamp, SyncCluster name): the oldest claim wins
WorkloadKey = tuple[str, str]  # (kind, name) of a target in the SyncCluster's namespace
Problem = tuple[str, str]  # (condition reason, message)
WORKLOAD_KINDS = api.TARGET_KINDS  # the kinds the watch cache holds (synchro.handlers' indexes)


# ------------------------------------------------------------------ observed


@dataclass(frozen=True)
class ManagedSeen:
    """The Redis Synchro runs, as observed. Without its Secret nothing else is read."""

    secret: Obj | None  # the generated password; None until created
    live: Mapping[WorkloadKey, Obj | None] = field(default_factory=dict)  # (kind, name) -> the object (None: absent)
    slices: tuple[Obj, ...] = ()  # the Service's EndpointSlices, read once the Deployment has an available pod
    ping: PingResult | None = None  # None: not tried yet (no available pod); never with replicas (the World says)
    pods: tuple[Pod, ...] = ()  # with replicas: every pod the StatefulSet should have, and where each answers
    world: World | None = None  # with replicas: what the Sentinels and the pods said (None: no StatefulSet yet)
    other: Obj | None = None  # Synchro's Redis workload of the other shape (a Deployment while replicas are asked)
    since_failover_asked_s: float | None = None  # since the operator last asked its Sentinels for a switchover
    # Moving between one pod and replicas: the one-pod Redis's pod (also last in `pods`), the seed the replicas grow
    # from, or the heir they move back to
    seed: Pod | None = None


@dataclass(frozen=True)
class ExternalSeen:
    """The user's Redis, as observed."""

    secrets: Mapping[str, Obj | None]  # name -> the password's and the CA's Secrets (None: absent)
    ping: PingResult | None = None  # None: not tried (a Secret or its key is missing)


@dataclass(frozen=True)
class TargetSeen:
    target: api.Target
    workload: Obj | None  # None: not found
    owner: str | None  # the SyncCluster whose claim on it wins; None: nobody claims it
    since_rollout_s: float | None = None  # since Synchro last rolled it again (None: not since the operator started)


@dataclass(frozen=True)
class Snapshot:
    """Everything one pass read. Decide needs nothing else."""

    body: Mapping[str, Any]  # the SyncCluster (for owner references)
    spec: api.SyncClusterSpec
    redis: ManagedSeen | ExternalSeen
    targets: tuple[TargetSeen, ...]
    rolled_out: Mapping[WorkloadKey, str]  # the last config hash that completed a rollout, per target
    probe_image: str


# ------------------------------------------------------------------ decided


@dataclass(frozen=True)
class RedisState:
    condition: Condition  # RedisReady
    endpoint: presets.Endpoint | None = None  # what the apps get; None until it is known
    display: str = ""
    secret_version: str = ""
    address: Address | None = None  # where the operator's PING was answered, else its first candidate
    creds: Credentials | None = None

    @property
    def ready(self) -> bool:
        return self.condition.status


@dataclass(frozen=True)
class TargetState:
    kind: str
    name: str
    problem: Problem | None = None  # why it could not be injected
    config_hash: str = ""
    rolled_out_hash: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    complete: bool = False
    held_because: str | None = None
    kept_user_vars: tuple[str, ...] = ()
    paced_s: float = 0.0  # its next rollout waits this long (decide.ROLLOUT_EVERY_S)

    def as_status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "configHash": self.config_hash,
            "rolledOutHash": self.rolled_out_hash,
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
        }


@dataclass(frozen=True)
class Write:
    """One server-side apply that brings an object to what Synchro wants of it."""

    obj: Obj  # the apply body: only the fields Synchro owns
    live: Obj | None  # the object as observed; for a workload, memory keeps the answer until the watch moves past it
    target: WorkloadKey | None = None  # a target's failure is reported on its condition; any other one is raised
    note: str = ""  # for the log line once written
    rollout: bool = False  # rolls a target that already runs an injected config again: memory notes when


@dataclass(frozen=True)
class Reach:
    """Where a rotation's ACL SETUSER goes in a Redis with replicas (ACL users are not replicated): every Redis pod
    and every Sentinel. `kept`: the replication and Sentinel users' passwords, which a rotation keeps. Empty for
    one pod: the Redis the pass PINGs takes them."""

    nodes: tuple[Address, ...] = ()
    sentinels: tuple[Address, ...] = ()
    kept: Mapping[str, str] = field(default_factory=dict, repr=False)
    missing: str = ""  # why not every one of them can be reached now ("": all can)


@dataclass(frozen=True)
class SecretStep:
    """One change to the managed Redis's Secret, and to the users of the running Redis, that act makes before the
    pass looks again (decide.secret_step). A rotation is three steps, each one pass, each safe to redo."""

    CREATE: ClassVar[str] = "create"  # a new managed Redis: its passwords
    UPGRADE: ClassVar[str] = "upgrade"  # a Secret made before ACL users: the operator's password and the users
    STAGE: ClassVar[str] = "stage"  # rotate: the next passwords into the Secret (Redis does not know them yet)
    SWITCH: ClassVar[str] = "switch"  # Redis takes the next passwords beside the old; the Secret makes them current
    FINISH: ClassVar[str] = "finish"  # every target rolled: Redis keeps only the current passwords
    HA_USERS: ClassVar[str] = "ha-users"  # replicas asked of a Secret made for one pod: the replication users

    kind: str
    request: str = ""  # the rotate-password request it serves
    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)  # user -> what it sets (never logged)
    resource_version: str = ""  # the Secret it was decided on: a write on top of another one is refused (409)
    reach: Reach = field(default_factory=Reach)  # SWITCH and FINISH with replicas: every pod and Sentinel


@dataclass(frozen=True)
class Decision:
    spec: api.SyncClusterSpec
    redis: RedisState
    targets: tuple[TargetState, ...]
    writes: tuple[Write, ...]  # in order: the managed Redis first, then the targets
    secret_step: SecretStep | None = None  # act makes it first, and the pass looks again
    rotation: Mapping[str, str] | None = None  # status.redis.passwordRotation; None: never asked for
    failover: Verdict | None = None  # with replicas: labels to move, connections to cut, pods to delete
    switchover: Step | None = None  # with replicas and a new pod template: the next pod to update, or a failover
    # Growing from one pod: what the one-pod Redis is sent before anything else (ha.seed_commands; passwords)
    seed_commands: tuple[tuple[str, ...], ...] = field(default=(), repr=False)
    retire: str = ""  # growing from one pod, done: the one-pod Redis's Deployment, to delete
    shrink: ShrinkStep | None = None  # moving back from replicas to one pod: the next step
    heir_commands: tuple[tuple[str, ...], ...] = field(default=(), repr=False)  # its FOLLOW (ha.heir_commands)
    sentinels: tuple[Address, ...] = ()  # with replicas: the Sentinels that may be reached, to listen to
    rescue: Rescue | None = None  # with replicas, stuck: the replica the operator promotes itself
    # Per replica of the rescue: what each Sentinel is sent if that one is promoted (ha.monitor_commands)
    monitor_commands: tuple[tuple[tuple[str, ...], ...], ...] = field(default=(), repr=False)
    # SWITCH to the one-pod Redis: what the Sentinels are sent if one missed SENTINEL REMOVE (ha.monitor_commands)
    remonitor: tuple[tuple[str, ...], ...] = field(default=(), repr=False)

    @property
    def create_secret(self) -> bool:
        return self.secret_step is not None and self.secret_step.kind == SecretStep.CREATE


@dataclass(frozen=True)
class Release:
    """What deleting a SyncCluster gives back."""

    orphans: tuple[Obj, ...] = ()  # managed Redis objects that drop their owner reference (deletionPolicy Retain)
    targets: tuple[WorkloadKey, ...] = ()  # targets whose injected fields are removed, at one replica


# ------------------------------------------------------------------ handed to the controller loop


@dataclass(frozen=True)
class ProbePlan:
    """What the probe needs from a pass: where Redis answered, and what every pod should run."""

    spec: api.SyncClusterSpec
    redis: RedisState
    targets: tuple[TargetState, ...]

    @property
    def address(self) -> Address | None:  # None while no Redis answers at all (a managed Redis pod re-created)
        return self.redis.address

    @property
    def creds(self) -> Credentials | None:
        return self.redis.creds

    @property
    def unavailable(self) -> str:  # RedisReady's message when not ready: the verdict if no address may be tried
        return "" if self.redis.ready else self.redis.condition.message

    @property
    def prefix(self) -> str:
        return self.spec.prefix

    @property
    def interval_s(self) -> int:
        return self.spec.probe.interval_s

    @property
    def timeout_s(self) -> int:
        return self.spec.probe.timeout_s

    @property
    def in_cluster_redis(self) -> bool:  # the managed Redis sees pod IPs; an external one may see only the nodes'
        return self.spec.managed is not None

    @property
    def ready_pods(self) -> int:  # what the workloads report ready: the probe waits until it sees as many pods
        return sum(t.ready_replicas for t in self.targets)

    @cached_property
    def desired_url(self) -> str:
        assert self.redis.endpoint is not None
        return presets.redis_url(self.redis.endpoint)

    @cached_property
    def desired_hashes(self) -> frozenset[str]:
        return frozenset(t.config_hash for t in self.targets)

    @cached_property
    def expected_subscribers(self) -> Mapping[str, int]:
        """App channel -> how many processes subscribe to it: every ready replica of each target using it."""
        assert self.redis.endpoint is not None
        channels: dict[str, int] = {}
        for target, state in zip(self.spec.targets, self.targets, strict=True):
            for channel in presets.get(target.preset).probe_channels(self.redis.endpoint):
                channels[channel] = channels.get(channel, 0) + state.ready_replicas
        return channels

    @cached_property
    def legacy_channels(self) -> Mapping[str, str]:  # app channel -> older releases' channel
        assert self.redis.endpoint is not None
        legacy: dict[str, str] = {}
        for target in self.spec.targets:
            legacy.update(presets.get(target.preset).legacy_channels(self.redis.endpoint))
        return legacy


@dataclass(frozen=True)
class Pass:
    conditions: list[Condition]  # without Ready: the caller folds the probe's verdict in first
    fields: dict[str, Any]
    busy: bool  # Redis does not answer yet: look again soon
    probe: ProbePlan | None
    probing: bool = False  # spec.probe.sidecar: PubSubHealthy is expected
    sentinels: tuple[Address, ...] = ()  # with replicas: the Sentinels whose +switch-master wakes the loop
    sentinel_creds: Credentials | None = field(default=None, repr=False)
