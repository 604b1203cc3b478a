"""Pure: observations in, metav1-style conditions out, keeping lastTransitionTime when the status holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REDIS_READY = "RedisReady"
CONFIG_INJECTED = "ConfigInjected"
ROLLOUT_COMPLETE = "RolloutComplete"
PUBSUB_HEALTHY = "PubSubHealthy"
READY = "Ready"

# The order in which Ready names the first thing that is wrong.
FOLDED_INTO_READY = (REDIS_READY, CONFIG_INJECTED, ROLLOUT_COMPLETE, PUBSUB_HEALTHY)


class Reason:
    """Every reason Synchro writes, in one place. docs/synccluster.md's condition table mirrors it (a unit test
    checks that)."""

    READY = "Ready"
    REDIS_REACHABLE = "Reachable"
    PROVISIONING = "Provisioning"
    UNREACHABLE = "Unreachable"
    AUTH_FAILED = "AuthFailed"
    SECRET_NOT_FOUND = "SecretNotFound"
    # RedisReady of a managed Redis with replicas (synchro.redis.failover)
    DEGRADED = "Degraded"
    FAILING_OVER = "FailingOver"
    NO_QUORUM = "NoQuorum"
    FAILED_OVER = "FailedOver"  # Events: a new Redis master, and the app connections cut on the other pods
    CLIENTS_ON_REPLICA = "ClientsOnReplica"  # Events: app connections found on a pod that is not the master
    RESIZING = "Resizing"  # RedisReady: a managed Redis moving from one pod to replicas; Events: each step of it
    RESIZED = "Resized"  # Events: the move is done, the one-pod Redis deleted
    PROMOTED = "Promoted"  # Event (Warning): the operator promoted a replica the Sentinels could not (docs/ha.md)
    SWITCHOVER = "Switchover"  # Events: a planned failover, so that the master's pod can take a new template
    INVALID_SPEC = "InvalidSpec"
    INJECTED = "Injected"
    TARGET_NOT_FOUND = "TargetNotFound"
    TARGET_CONFLICT = "TargetConflict"
    CONTAINER_NOT_FOUND = "ContainerNotFound"
    APPLY_FAILED = "ApplyFailed"
    ROLLED_OUT = "RolledOut"
    ROLLING_OUT = "RollingOut"
    SCALE_HELD = "ScaleHeld"
    WAITING_FOR_ROLLOUT = "WaitingForRollout"
    # Why a target is held at one replica (inject.decide_replicas): WAITING_FOR_ROLLOUT, or Redis not ready yet.
    # Never a condition's reason: ScaleHeld's message says which.
    REDIS_NOT_READY = "RedisNotReady"
    # PubSubHealthy, from the probe's verdict (synchro.probe.verdict)
    ALL_PODS_HEALTHY = "AllPodsHealthy"
    PODS_UNREACHABLE = "PodsUnreachable"
    SPLIT_BRAIN = "SplitBrain"
    REDIS_UNAVAILABLE = "RedisUnavailable"
    # Events of the managed Redis's passwords (synchro.reconcile.act), never a condition's reason
    ACL_USERS = "AclUsers"
    ROTATING_PASSWORD = "RotatingPassword"
    PASSWORD_ROTATED = "PasswordRotated"


# Reasons for a False condition that only say "in progress": their changes are told by Ready's own events.
PROGRESS_REASONS = frozenset({Reason.PROVISIONING, Reason.ROLLING_OUT, Reason.SCALE_HELD, Reason.WAITING_FOR_ROLLOUT})


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str

    def as_dict(self, generation: int, now: str, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        status = "True" if self.status else "False"
        changed = previous is None or previous.get("status") != status
        return {
            "type": self.type,
            "status": status,
            "reason": self.reason,
            "message": self.message,
            "observedGeneration": generation,
            "lastTransitionTime": now if changed or previous is None else previous.get("lastTransitionTime", now),
        }


def ready(conditions: Sequence[Condition]) -> Condition:
    by_type = {c.type: c for c in conditions}
    for kind in FOLDED_INTO_READY:
        c = by_type.get(kind)
        if c is not None and not c.status:
            return Condition(READY, False, c.reason, f"{kind}: {c.message}")
    return Condition(READY, True, Reason.READY, "Redis is ready and every target runs the injected config")


def merge(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Condition], generation: int, now: str
) -> list[dict[str, Any]]:
    """The new conditions list, keeping each lastTransitionTime while its status holds."""
    old = {c["type"]: c for c in previous}
    return [c.as_dict(generation, now, old.get(c.type)) for c in current]


def same_ignoring_time(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def strip(cs: Sequence[Mapping[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
        return sorted(tuple(sorted((k, v) for k, v in c.items() if k != "lastTransitionTime")) for c in cs)

    return strip(a) == strip(b)


def worth_an_event(before: Sequence[Mapping[str, Any]], after: Sequence[Condition]) -> list[Condition]:
    """The transitions a person wants in `kubectl describe`: Ready turning True or False, and any condition
    that starts or stops reporting a problem. Steps of a normal bring-up (Provisioning, ScaleHeld,
    RollingOut, ...) show as Ready's reason and post nothing, so a new SyncCluster posts one event: Ready."""
    was = {c["type"]: (c.get("status") == "True", c.get("reason")) for c in before}

    def problem(status: bool | None, reason: str | None) -> bool:
        return status is False and reason not in PROGRESS_REASONS

    out = []
    for c in after:
        old_status, old_reason = was.get(c.type, (None, None))
        if (old_status, old_reason) == (c.status, c.reason):
            continue
        # A first status that is False in a progress reason is the bring-up starting, not Ready turning False.
        ready_turned = c.type == READY and old_status != c.status and (old_status is not None or c.status)
        if ready_turned or problem(c.status, c.reason) or problem(old_status, old_reason):
            out.append(c)
    return out
