"""Pure: a Snapshot in, a Decision out; then the Decision and what act could not write in, the Pass out.

No I/O and no clock: every function here is a plain function of its arguments, tested table-driven in
tests/unit/test_decide.py. A layer contract (`make lint`) keeps kube, kopf, kubernetes and redis out.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synchro import api, conditions, inject, presets
from synchro.api import Obj
from synchro.conditions import Condition, Reason
from synchro.probe import sidecar
from synchro.reconcile.model import (
    Claim,
    ClaimKey,
    Decision,
    ExternalSeen,
    ManagedSeen,
    Pass,
    ProbePlan,
    Problem,
    Reach,
    RedisState,
    Release,
    SecretStep,
    Snapshot,
    TargetSeen,
    TargetState,
    WorkloadKey,
    Write,
)
from synchro.redis import failover, ha, managed, shrink, switchover
from synchro.redis.model import Credentials, PingResult, service_addresses

ROLLOUT_EVERY_S = 10.0  # a target that runs an injected config starts at most one new rollout in this long


def decide(seen: Snapshot) -> Decision:
    spec = seen.spec
    verdict = None
    if isinstance(seen.redis, ManagedSeen):
        verdict = failover.decide(seen.redis.world) if seen.redis.world is not None else None
        redis = managed_redis(spec, seen.redis, verdict)
        writes = managed_writes(spec, seen.body, seen.redis)
    else:
        redis, writes = external_redis(spec, seen.redis), []
    targets = []
    for target in seen.targets:
        state, write = target_state(spec, target, redis, seen.rolled_out, seen.probe_image)
        targets.append(state)
        writes += [write] if write else []
    if not isinstance(seen.redis, ManagedSeen):
        return Decision(spec, redis, tuple(targets), tuple(writes))
    reach = rotation_reach(spec, seen.redis)
    step, rotation = secret_step(spec, seen.body, seen.redis.secret, redis.ready, targets, reach)
    update = pod_update(spec, seen.redis, verdict)
    retire = ""
    if update is not None and seen.redis.seed is not None and update.delete == seen.redis.seed.name:
        retire, update = managed.name(spec.name), None  # the one-pod Redis, demoted and in sync: its Deployment
    commands = seed_commands(spec, seen.redis)
    moving = shrink_step(spec, seen.redis, verdict)
    if moving is not None and moving.kind in (shrink.SWITCH, shrink.FINISH):
        verdict = None  # the switch to the one-pod Redis moves the master label itself
    follow, remonitor = heir_commands(spec, seen.redis, moving), switch_undo(spec, seen.redis, moving)
    sentinels = tuple(p.sentinel for p in seen.redis.pods if p.has_sentinel and p.reachable)
    rescue, monitor = rescue_of(spec, seen.redis)
    return Decision(spec, redis, tuple(targets), tuple(writes), step, rotation, verdict, update, commands, retire,
                    moving, follow, sentinels, rescue, monitor, remonitor)  # fmt: skip


def conclude(decision: Decision, failures: Mapping[WorkloadKey, Problem]) -> Pass:
    """The pass's outcome, with each target act could not write reported as its problem."""
    spec, redis = decision.spec, decision.redis
    targets = tuple(
        failed(t, failures[(t.kind, t.name)]) if (t.kind, t.name) in failures else t for t in decision.targets
    )
    # The probe runs once every target has rolled out an injected config, and keeps running through a
    # Redis outage: that is when it has the most to say.
    probing = all(t.problem is None and t.rolled_out_hash for t in targets)
    fields = status_fields(spec, redis, targets)
    if decision.rotation is not None:
        fields["redis"]["passwordRotation"] = decision.rotation
    if decision.failover is not None:
        fields["redis"].update(decision.failover.status)
    staged = (decision.rotation or {}).get("phase") == "Staged"
    moving = decision.shrink is not None
    return Pass(
        target_conditions(spec, redis, targets),
        fields,
        # Rollouts report through the workloads' watch events; Redis coming up, a paced rollout's turn, a staged
        # rotation's next step, the master of a Redis with replicas (no watch says a Sentinel moved it) and a move
        # back to one pod are polled.
        busy=not redis.ready or any(t.paced_s for t in targets) or staged or is_ha(spec) or moving,
        probe=probe_plan(spec, redis, targets) if probing else None,
        probing=spec.probe.sidecar,
        sentinels=decision.sentinels,
        sentinel_creds=decision.redis.creds if decision.sentinels else None,
    )


def invalid(error: Exception) -> Pass:
    return Pass([Condition(conditions.READY, False, Reason.INVALID_SPEC, str(error))], {}, False, None)


def grows(spec: api.SyncClusterSpec, other: Obj | None) -> bool:
    """Replicas asked of a managed Redis that runs as one pod (Synchro's Deployment, not somebody's own workload
    of that name): the new pods replicate from it, and it is deleted once a new pod is the master."""
    if other is None or not is_ha(spec) or other.get("kind") != "Deployment":
        return False
    return managed.owner_of((other.get("metadata") or {}).get("labels")) == spec.name


def shrinks(spec: api.SyncClusterSpec, other: Obj | None) -> bool:
    """One pod asked of a managed Redis that runs with replicas (Synchro's StatefulSet, not somebody's own
    workload of that name): the one-pod Redis copies the master, takes over, and the StatefulSet is deleted."""
    if other is None or spec.managed is None or is_ha(spec) or other.get("kind") != "StatefulSet":
        return False
    return managed.owner_of((other.get("metadata") or {}).get("labels")) == spec.name


def as_replicated(spec: api.SyncClusterSpec, stateful_set: Obj) -> api.SyncClusterSpec:
    """The spec a StatefulSet being moved back to one pod was made for: its pods and Sentinels, by name."""
    assert spec.managed is not None
    replicas = int((stateful_set.get("spec") or {}).get("replicas") or api.MIN_HA_REPLICAS)
    return dataclasses.replace(spec, managed=dataclasses.replace(spec.managed, replicas=replicas))


def failed(state: TargetState, problem: Problem) -> TargetState:
    return dataclasses.replace(state, problem=problem, replicas=0, ready_replicas=0, complete=False)


# ------------------------------------------------------------------ small facts


def owner_of(claims: Mapping[ClaimKey, Any], key: ClaimKey) -> str | None:
    found: list[Claim] = list(claims.get(key, ()))
    return min(found)[1] if found else None


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def secret_value(secret: Mapping[str, Any] | None, key: str) -> str | None:
    raw = ((secret or {}).get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw is not None else None


def secret_version(secret: Mapping[str, Any] | None, key: str) -> str:
    return inject.secret_version(secret["metadata"]["uid"], secret.get("data"), key) if secret else ""


def rolled_out_hashes(*statuses: Mapping[str, Any] | None) -> dict[WorkloadKey, str]:
    """(kind, name) -> rolledOutHash, from status dicts; later ones win where they know a hash."""
    found: dict[WorkloadKey, str] = {}
    for status in statuses:
        for t in (status or {}).get("targets") or []:
            if t.get("rolledOutHash"):
                found[(t.get("kind", api.DEFAULT_KIND), t["name"])] = t["rolledOutHash"]
    return found


def redis_condition(result: PingResult) -> Condition:
    reason = Reason.REDIS_REACHABLE if result.ok else result.reason
    return Condition(conditions.REDIS_READY, result.ok, reason, result.message)


# ------------------------------------------------------------------ Redis


def managed_creds(spec: api.SyncClusterSpec, secret: Mapping[str, Any] | None) -> Credentials:
    """The operator's own user; the default user with the one password while the Secret predates ACL users."""
    assert spec.managed is not None
    if not spec.managed.auth:
        return Credentials(None, None, 0, False)
    if before_acl(secret):
        return Credentials(None, secret_value(secret, api.PASSWORD_KEY), 0, False)
    return Credentials(managed.OPERATOR_USER, secret_value(secret, managed.OPERATOR_PASSWORD_KEY), 0, False)


def before_acl(secret: Mapping[str, Any] | None) -> bool:
    """A Secret made by a Synchro before ACL users: one password, for the default user."""
    return secret is not None and secret_value(secret, managed.OPERATOR_PASSWORD_KEY) is None


def passwords(secret: Mapping[str, Any] | None, keys: Mapping[str, str]) -> dict[str, str] | None:
    """User -> password, read from the Secret's `keys` (managed.PASSWORD_KEYS or NEXT_KEYS); None if one is missing."""
    found = {user: secret_value(secret, key) for user, key in keys.items()}
    return None if None in found.values() else {user: value for user, value in found.items() if value is not None}


def is_ha(spec: api.SyncClusterSpec) -> bool:
    """A managed Redis with replicas and Sentinels (redis/ha.py), rather than one pod (redis/managed.py)."""
    return spec.managed is not None and spec.managed.ha


def redis_objects(spec: api.SyncClusterSpec, config_version: str, seed: str = "") -> list[Obj]:
    if is_ha(spec):
        return ha.applied_objects(spec, config_version, seed)
    return managed.applied_objects(spec, config_version)


def redis_kinds(spec: api.SyncClusterSpec) -> list[tuple[str, str, str]]:
    return ha.applied_kinds(spec) if is_ha(spec) else managed.applied_kinds(spec)


def managed_redis(spec: api.SyncClusterSpec, seen: ManagedSeen, verdict: failover.Verdict | None = None) -> RedisState:
    assert spec.managed is not None
    name = managed.name(spec.name)
    host = f"{name}.{spec.namespace}.svc"
    display = f"{host}:{api.REDIS_PORT}"
    if seen.secret is None:
        return RedisState(
            Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, f"creating Secret {name}"), display=display
        )
    auth = spec.managed.auth
    version = secret_version(seen.secret, api.PASSWORD_KEY) if auth else ""
    endpoint = presets.Endpoint(
        host=host,
        port=api.REDIS_PORT,
        db=0,
        prefix=spec.prefix,
        username=managed.APP_USER if auth else None,
        password=presets.SecretKeyRef(name, api.PASSWORD_KEY) if auth else None,
    )
    creds = managed_creds(spec, seen.secret)
    if shrinks(spec, seen.other):
        return shrinking_redis(spec, seen, verdict, RedisState(NOT_TRIED, endpoint, display, version, None, creds))
    if is_ha(spec):
        return replicated_redis(spec, seen, verdict, RedisState(NOT_TRIED, endpoint, display, version, None, creds))
    if not managed.available(seen.live.get(("Deployment", name))):
        waiting = f"waiting for the Redis pod of Deployment {name} to be ready"
        return RedisState(
            Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, waiting), endpoint, display, version
        )
    result = seen.ping or PingResult.unreachable("not tried")
    address = result.address or next(iter(service_addresses(seen.live.get(("Service", name)), seen.slices)), None)
    return RedisState(redis_condition(result), endpoint, display, version, address, creds)


NOT_TRIED = Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, "not tried")


def replicated_redis(
    spec: api.SyncClusterSpec, seen: ManagedSeen, verdict: failover.Verdict | None, state: RedisState
) -> RedisState:
    """RedisReady of a Redis with replicas, from the failover verdict: ready while the confirmed master is the one
    pod the Service routes to. The operator and the probe talk to that pod's IP."""
    name = managed.name(spec.name)
    stateful_set = seen.live.get(("StatefulSet", name)) or {}
    growing = grows(spec, seen.other)
    waiting = f"waiting for the Redis pods of StatefulSet {name} to be ready"
    if growing and seen.seed is None:
        waiting = f"waiting for the Redis pod of Deployment {name} to be ready: the new pods copy its keys first"
    ready = (stateful_set.get("status") or {}).get("readyReplicas") or (growing and seen.seed is not None)
    if verdict is None or seen.world is None or not ready:
        waiting_condition = Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, waiting)
        return dataclasses.replace(state, condition=waiting_condition)
    master = next((p for p in seen.pods if p.name == verdict.master and p.reachable), None)
    if growing and verdict.master is not None and (verdict.serving or not seen.world.previous_master):
        # the one-pod Redis serves on: its label goes on before the client Service is applied, in this pass
        moving = f"moving from one pod to {len(ha.pod_names(spec))}, keys and all: {verdict.message}"
        condition = Condition(conditions.REDIS_READY, True, Reason.RESIZING, moving)
    elif verdict.serving:
        condition = Condition(conditions.REDIS_READY, True, verdict.reason or Reason.REDIS_REACHABLE, verdict.message)
    elif not seen.world.previous_master:  # it has never served: still coming up
        condition = Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, verdict.message)
    else:
        condition = Condition(conditions.REDIS_READY, False, verdict.reason or Reason.FAILING_OVER, verdict.message)
    return dataclasses.replace(state, condition=condition, address=master.redis if master else None)


def shrink_step(spec: api.SyncClusterSpec, seen: ManagedSeen, verdict: failover.Verdict | None) -> shrink.Step | None:
    """Moving back from replicas to one pod: the next step (None: not moving, or nothing seen yet)."""
    if not shrinks(spec, seen.other) or seen.world is None or verdict is None:
        return None
    heir = seen.seed.name if seen.seed is not None else None
    return shrink.step(seen.world, heir, verdict, managed.name(spec.name))


def shrinking_redis(
    spec: api.SyncClusterSpec, seen: ManagedSeen, verdict: failover.Verdict | None, state: RedisState
) -> RedisState:
    """RedisReady while moving back to one pod: True (Resizing) while a master serves, the StatefulSet's until
    the switch, then the one-pod Redis's."""
    moving = shrink_step(spec, seen, verdict)
    if moving is None or verdict is None:
        waiting = f"waiting for the Redis pods of StatefulSet {managed.name(spec.name)} to answer"
        return dataclasses.replace(
            state, condition=Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, waiting)
        )
    serving = seen.seed.name if moving.kind == shrink.FINISH and seen.seed else moving.master or verdict.master
    pod = next((p for p in seen.pods if p.name == serving and p.reachable), None)
    if moving.kind in (shrink.SWITCH, shrink.FINISH) or verdict.serving:
        message = f"moving from replicas to one pod, keys and all: {moving.message}"
        condition = Condition(conditions.REDIS_READY, True, Reason.RESIZING, message)
    else:
        condition = Condition(conditions.REDIS_READY, False, verdict.reason or Reason.FAILING_OVER, verdict.message)
    return dataclasses.replace(state, condition=condition, address=pod.redis if pod else None)


def heir_commands(
    spec: api.SyncClusterSpec, seen: ManagedSeen, moving: shrink.Step | None
) -> tuple[tuple[str, ...], ...]:
    """What makes the one-pod Redis a replica of the master while moving back to it (FOLLOW only)."""
    node = next((n for n in seen.world.nodes if n.pod == moving.master), None) if moving and seen.world else None
    if moving is None or moving.kind != shrink.FOLLOW or node is None or node.ip is None:
        return ()
    assert spec.managed is not None
    found = passwords(seen.secret, ha.HA_PASSWORD_KEYS) if spec.managed.auth else None
    return tuple(tuple(c) for c in ha.heir_commands(found, (node.ip, api.REDIS_PORT)))


def switch_undo(
    spec: api.SyncClusterSpec, seen: ManagedSeen, moving: shrink.Step | None
) -> tuple[tuple[str, ...], ...]:
    """SWITCH only: what makes the Sentinels monitor the master again, if one misses SENTINEL REMOVE (with the
    quorum of the StatefulSet's replicas: the spec already asks for one pod)."""
    if moving is None or moving.kind != shrink.SWITCH or seen.other is None:
        return ()
    return monitor_of(as_replicated(spec, seen.other), seen, moving.master)


def rescue_of(
    spec: api.SyncClusterSpec, seen: ManagedSeen
) -> tuple[failover.Rescue | None, tuple[tuple[tuple[str, ...], ...], ...]]:
    """The stuck state Sentinel cannot leave (failover.rescue), and what each Sentinel is then sent."""
    found = failover.rescue(seen.world) if seen.world is not None and is_ha(spec) else None
    if found is None:
        return None, ()
    return found, tuple(monitor_of(spec, seen, pod) for pod in found.replicas)


def monitor_of(spec: api.SyncClusterSpec, seen: ManagedSeen, pod: str) -> tuple[tuple[str, ...], ...]:
    """ha.monitor_commands for `pod`: named as the Sentinels name the master (World.domain), logged in as they
    are, with the quorum of `spec`'s replicas."""
    assert spec.managed is not None
    logins = passwords(seen.secret, ha.HA_PASSWORD_KEYS) if spec.managed.auth else None
    host = ha.pod_host(spec, pod, seen.world.domain if seen.world else "")
    return tuple(tuple(c) for c in ha.monitor_commands(spec, host, logins))


def pod_update(
    spec: api.SyncClusterSpec, seen: ManagedSeen, verdict: failover.Verdict | None
) -> switchover.Step | None:
    """A Redis with replicas on an old pod template: its next pod to delete, or the switchover to ask for."""
    stateful_set = seen.live.get(("StatefulSet", managed.name(spec.name))) or {}
    target = (stateful_set.get("status") or {}).get("updateRevision", "")
    if verdict is None or not target:
        return None
    tilted = failover.tilted_pods(seen.world) if seen.world is not None else frozenset()
    step = switchover.step(target, seen.pods, verdict, verdict.reason is None, seen.since_failover_asked_s, tilted)
    seed = seen.seed.name if seen.seed is not None else None
    if step is not None and step.failover and verdict.master == seed:
        message = f"the master moves from the one-pod Redis {seed} to a pod of StatefulSet {managed.name(spec.name)}"
        return dataclasses.replace(step, message=f"{message}: the Sentinels are asked to fail over")
    return step


def seed_commands(spec: api.SyncClusterSpec, seen: ManagedSeen) -> tuple[tuple[str, ...], ...]:
    """Growing from one pod: the users and the login its config lacks, sent while it is a master that answers."""
    assert spec.managed is not None
    node = next((n for n in seen.world.nodes if seen.seed and n.pod == seen.seed.name), None) if seen.world else None
    found = passwords(seen.secret, {**managed.PASSWORD_KEYS, **ha.HA_PASSWORD_KEYS})
    if not spec.managed.auth or node is None or node.role is None or node.role.role != "master" or found is None:
        return ()
    return tuple(tuple(command) for command in ha.seed_commands(found))


def managed_writes(spec: api.SyncClusterSpec, body: Mapping[str, Any], seen: ManagedSeen) -> list[Write]:
    """The managed Redis objects that differ from what Synchro wants (the Secret is created, never applied).
    The passwords are not part of the Redis pod's config hash: a rotation reaches the running Redis live."""
    if seen.secret is None:
        return []
    configs = ha.config_version(spec) if is_ha(spec) else {"redis.conf": managed.redis_conf(spec)}
    redis_version = inject.config_hash({k: [{"conf": v}] for k, v in configs.items()}, "")
    writes: list[Write] = []
    if grows(spec, seen.other) and seen.seed is None:
        return writes  # a StatefulSet made now would start empty: wait for the pod whose keys it must copy
    seed = seen.seed.ip or "" if seen.seed is not None else ""
    objects = redis_objects(spec, redis_version, seed)
    if shrinks(spec, seen.other):  # the Service and the rest stay the StatefulSet's until the switch
        objects = [o for o in objects if o["kind"] in ("Deployment", "PersistentVolumeClaim")]
    for obj in objects:
        obj["metadata"]["ownerReferences"] = [owner_reference(body)]
        live = seen.live.get((obj["kind"], obj["metadata"]["name"]))
        if live is None or not inject.subset_equal(obj, live):
            writes.append(Write(obj, live))
    return writes


def secret_step(
    spec: api.SyncClusterSpec,
    body: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    redis_ready: bool,
    targets: list[TargetState],
    reach: Reach | None = None,
) -> tuple[SecretStep | None, dict[str, str] | None]:
    """What the managed Redis's Secret needs before anything else, and status.redis.passwordRotation.

    A rotation is told by the Secret alone, so an operator killed at any point redoes the step it was in: the next
    passwords are staged in the Secret first (Redis does not know them), then Redis takes them beside the old ones
    and the Secret makes them current (the apps roll), and once every target runs them Redis drops the old ones."""
    if secret is None:
        return SecretStep(SecretStep.CREATE), None
    assert spec.managed is not None
    requested = ((body.get("metadata") or {}).get("annotations") or {}).get(api.ROTATE_PASSWORD_ANNOTATION, "")
    if not spec.managed.auth:
        refused = rotation_status(requested, "Refused", "redis.managed.auth is off: there is no password")
        return None, refused if requested else None
    version = secret["metadata"].get("resourceVersion", "")
    if before_acl(secret):
        return SecretStep(SecretStep.UPGRADE, "", passwords(secret, {managed.APP_USER: api.PASSWORD_KEY}) or {}), None
    if is_ha(spec) and passwords(secret, ha.HA_PASSWORD_KEYS) is None:
        return SecretStep(SecretStep.HA_USERS, "", passwords(secret, managed.PASSWORD_KEYS) or {}), None
    marks = secret["metadata"].get("annotations") or {}
    staged, current, done = (marks.get(k, "") for k in managed.ROTATION_ANNOTATIONS)
    following = passwords(secret, managed.NEXT_KEYS)
    ready = redis_ready and (reach is None or not reach.missing)
    why = f" ({reach.missing})" if redis_ready and reach is not None and reach.missing else ""
    if following is not None:
        step = SecretStep(SecretStep.SWITCH, staged, following, version, reach or Reach()) if ready else None
        waiting = f"new passwords in the Secret, for Redis once it answers{why}"
        return step, rotation_status(requested, "Staged", waiting)
    if requested and requested != current:
        return SecretStep(SecretStep.STAGE, requested), rotation_status(requested, "Staged", "staging new passwords")
    if current and current != done:
        rolled = all(t.complete and t.problem is None for t in targets)
        now = passwords(secret, managed.PASSWORD_KEYS) or {}
        step = SecretStep(SecretStep.FINISH, current, now, version, reach or Reach()) if ready and rolled else None
        waiting = "every target to run the new one" if ready else f"Redis to answer{why}"
        return step, rotation_status(
            requested, "RollingOut", f"the old password is still accepted, waiting for {waiting}"
        )
    if current:
        return None, rotation_status(requested, "Done", "the old password is refused")
    return None, None


def rotation_reach(spec: api.SyncClusterSpec, seen: ManagedSeen) -> Reach | None:
    """With replicas, where a rotation's passwords go: every Redis pod and every Sentinel, each of which must
    answer (a pod that missed them would refuse the apps once it is the master). None: one pod."""
    moving = seen.other is not None and (grows(spec, seen.other) or shrinks(spec, seen.other))
    if not is_ha(spec) and not moving:
        return None
    kept = passwords(seen.secret, ha.HA_PASSWORD_KEYS) or {}
    pods = [p for p in seen.pods if p.has_sentinel]
    nodes, sentinels = tuple(p.redis for p in pods), tuple(p.sentinel for p in pods)
    if moving:
        return Reach(nodes, sentinels, kept, "the Redis is moving between one pod and replicas")
    world = seen.world
    silent = [n.pod for n in world.nodes if n.role is None] if world is not None else [p.name for p in pods]
    mute = sum(1 for a in world.sentinels if a is None) if world is not None else len(pods)
    missing = ", ".join(
        [*([f"Redis pods not answering: {' '.join(silent)}"] if silent else []),
         *([f"Sentinels not answering: {mute}"] if mute else [])]
    )  # fmt: skip
    return Reach(nodes, sentinels, kept, missing if pods else "no Redis pod yet")


def rotation_status(requested: str, phase: str, message: str) -> dict[str, str]:
    return {"requested": requested, "phase": phase, "message": message}


@dataclass(frozen=True)
class ExternalAccess:
    creds: Credentials | None  # None: a Secret or key is missing
    version: str = ""  # the password's content version (inject.secret_version)
    missing: str = ""  # what is missing, for RedisReady's message


def external_access(spec: api.SyncClusterSpec, secrets: Mapping[str, Obj | None]) -> ExternalAccess:
    ext = spec.external
    assert ext is not None
    values: dict[str, str | None] = {"password": None, "ca": None}
    for what, ref in (("password", ext.password), ("ca", ext.ca)):
        if ref is None:
            continue
        secret = secrets.get(ref.name)
        values[what] = secret_value(secret, ref.key)
        if values[what] is None:
            found = "Secret" if secret is None else f"key {ref.key!r} in Secret"
            return ExternalAccess(None, missing=f"{found} {ref.name!r} not found in namespace {spec.namespace}")
    version = secret_version(secrets.get(ext.password.name), ext.password.key) if ext.password else ""
    return ExternalAccess(Credentials(ext.username, values["password"], ext.db, ext.tls, values["ca"]), version)


def external_redis(spec: api.SyncClusterSpec, seen: ExternalSeen) -> RedisState:
    ext = spec.external
    assert ext is not None
    display = f"{ext.host}:{ext.port}/{ext.db}"
    access = external_access(spec, seen.secrets)
    if access.creds is None:
        missing = Condition(conditions.REDIS_READY, False, Reason.SECRET_NOT_FOUND, access.missing)
        return RedisState(missing, display=display)
    endpoint = presets.Endpoint(
        host=ext.host,
        port=ext.port,
        db=ext.db,
        tls=ext.tls,
        username=ext.username,
        password=ext.password,
        prefix=spec.prefix,
    )
    result = seen.ping or PingResult.unreachable("not tried")
    return RedisState(redis_condition(result), endpoint, display, access.version, (ext.host, ext.port), access.creds)


# ------------------------------------------------------------------ targets


def target_state(
    spec: api.SyncClusterSpec,
    seen: TargetSeen,
    redis: RedisState,
    rolled_out: Mapping[WorkloadKey, str],
    probe_image: str,
) -> tuple[TargetState, Write | None]:
    """What one target should carry, and the apply that makes it so (None: nothing to write)."""
    t, workload = seen.target, seen.workload
    state = TargetState(t.kind, t.name, rolled_out_hash=rolled_out.get((t.kind, t.name), ""))
    problem = target_problem(spec, seen, redis)
    if problem is not None or workload is None or redis.endpoint is None:
        return dataclasses.replace(state, problem=problem), None
    plan = target_plan(spec, t, workload, redis.endpoint, redis.secret_version, probe_image)
    if plan.missing_containers:
        missing = f"{t.kind} {t.name} has no container {', '.join(plan.missing_containers)}"
        return dataclasses.replace(state, problem=(Reason.CONTAINER_NOT_FOUND, missing)), None
    config_hash = inject.config_hash(plan.env, redis.secret_version, plan.sidecar)
    # Judge the rollout on the workload as observed, before this pass changes anything. It counts as
    # the first safe rollout only while Redis answers: pods that came up against a dead Redis prove nothing.
    rolled = inject.template_hash(workload) == config_hash and inject.rollout_complete(workload)
    rolled_out_hash = config_hash if rolled and redis.ready else state.rolled_out_hash
    scale = inject.decide_replicas(spec.replicas, redis.ready, bool(rolled_out_hash))
    desired = inject.desired_apply(t.kind, spec.namespace, t.name, spec.name, plan, config_hash, scale.replicas)
    applied = inject.is_applied(workload, desired)
    status = workload.get("status") or {}
    complete = applied and rolled and scale.held_because is None and workload["spec"].get("replicas") == spec.replicas
    # A target that already runs an injected config rolls again at most once per ROLLOUT_EVERY_S: a burst of
    # rotations (a secrets manager refreshing, a script retrying) rolls it twice, the latest config last.
    again = bool(rolled_out_hash) and inject.template_hash(workload) not in (None, config_hash)
    wait = ROLLOUT_EVERY_S - seen.since_rollout_s if again and seen.since_rollout_s is not None else 0.0
    state = dataclasses.replace(
        state,
        config_hash=config_hash,
        rolled_out_hash=rolled_out_hash,
        replicas=status.get("replicas", 0),
        ready_replicas=status.get("readyReplicas", 0),
        complete=complete,
        held_because=scale.held_because,
        kept_user_vars=plan.kept_user_vars,
        paced_s=max(wait, 0.0),
    )
    if applied or state.paced_s:
        return state, None
    note = f"config {config_hash}, replicas {scale.replicas}"
    return state, Write(desired, workload, (t.kind, t.name), note, rollout=again)


def target_plan(
    spec: api.SyncClusterSpec,
    t: api.Target,
    workload: Obj,
    endpoint: presets.Endpoint,
    secret_version: str,
    probe_image: str,
) -> inject.TargetPlan:
    """The env and sidecar one target should carry. An operator upgrade must not restart every app: a sidecar
    already in the template keeps its image until the target rolls for another reason, and then takes the
    operator's (the same rollout carries both)."""
    env = presets.env_for(presets.get(t.preset), endpoint, t.env)

    def plan(image: str) -> inject.TargetPlan:
        probe = sidecar.container(endpoint, image, spec.probe.interval_s) if spec.probe.sidecar else None
        return inject.plan_env(workload, t.containers, env, probe)

    running = sidecar.image_in(workload)
    if running is None or running == probe_image:
        return plan(probe_image)
    kept = plan(running)
    unchanged = inject.template_hash(workload) == inject.config_hash(kept.env, secret_version, kept.sidecar)
    return kept if unchanged else plan(probe_image)


def target_problem(spec: api.SyncClusterSpec, seen: TargetSeen, redis: RedisState) -> Problem | None:
    t = seen.target
    if seen.owner not in (None, spec.name):
        return Reason.TARGET_CONFLICT, f"{t.kind} {t.name} is already claimed by SyncCluster {seen.owner}"
    if seen.workload is None:
        return Reason.TARGET_NOT_FOUND, f"{t.kind} {t.name} not found in {spec.namespace}"
    if redis.endpoint is None:
        return redis.condition.reason, "waiting for the Redis endpoint: " + redis.condition.message
    return None


# ------------------------------------------------------------------ status


def target_conditions(
    spec: api.SyncClusterSpec, redis: RedisState, targets: tuple[TargetState, ...]
) -> list[Condition]:
    """RedisReady, ConfigInjected and RolloutComplete (Ready and PubSubHealthy are the controller loop's)."""
    problems = [t.problem for t in targets if t.problem is not None]
    if problems:
        message = "; ".join(message for _, message in problems)
        injected = Condition(conditions.CONFIG_INJECTED, False, problems[0][0], message)
    else:
        kept = [f"{t.name}: {', '.join(t.kept_user_vars)}" for t in targets if t.kept_user_vars]
        note = f"; the user's own values were kept for {'; '.join(kept)}" if kept else ""
        injected = Condition(
            conditions.CONFIG_INJECTED,
            True,
            Reason.INJECTED,
            f"{len(targets)} target(s) carry the {spec.mode} Redis config{note}",
        )
    return [redis.condition, injected, rollout_condition(spec, targets)]


def rollout_condition(spec: api.SyncClusterSpec, targets: tuple[TargetState, ...]) -> Condition:
    held = [t for t in targets if t.held_because]
    pending = [t for t in targets if not t.complete]
    if held:
        why = (
            "Redis is ready" if held[0].held_because == Reason.REDIS_NOT_READY else "the injected config has rolled out"
        )
        return Condition(
            conditions.ROLLOUT_COMPLETE,
            False,
            Reason.SCALE_HELD,
            f"{', '.join(t.name for t in held)} held at 1 replica until {why}",
        )
    if pending:
        paced = [f"{t.name} in {t.paced_s:.0f}s" for t in pending if t.paced_s]
        turn = f"; the next rollout (one per {ROLLOUT_EVERY_S:.0f}s per target): {', '.join(paced)}" if paced else ""
        return Condition(
            conditions.ROLLOUT_COMPLETE,
            False,
            Reason.ROLLING_OUT,
            f"waiting for {', '.join(t.name for t in pending)} to run {spec.replicas} "
            f"ready replica(s) of the injected config{turn}",
        )
    return Condition(
        conditions.ROLLOUT_COMPLETE,
        True,
        Reason.ROLLED_OUT,
        f"every target runs {spec.replicas} ready replica(s) of the injected config",
    )


def status_fields(spec: api.SyncClusterSpec, redis: RedisState, targets: tuple[TargetState, ...]) -> dict[str, Any]:
    found = [t for t in targets if t.problem is None]
    return {
        "replicas": min((t.replicas for t in found), default=0),
        "readyReplicas": min((t.ready_replicas for t in found), default=0),
        "selector": f"{api.CLUSTER_LABEL}={spec.name}",
        "redis": {"mode": spec.mode, "endpoint": redis.display},
        "targets": [t.as_status() for t in targets],
    }


def probe_plan(spec: api.SyncClusterSpec, redis: RedisState, targets: tuple[TargetState, ...]) -> ProbePlan | None:
    if not spec.probe.sidecar or redis.endpoint is None:
        return None
    return ProbePlan(spec, redis, tuple(targets))


# ------------------------------------------------------------------ deletion


def release(
    spec: api.SyncClusterSpec, owners: Mapping[WorkloadKey, str | None], workloads: Mapping[WorkloadKey, Obj | None]
) -> Release:
    """With Retain, the managed Redis is orphaned so garbage collection keeps it, and targets keep their config.
    Otherwise every target this SyncCluster injected (it carries the claim) is given back."""
    if spec.retain_on_delete:
        objects = [managed.secret(spec, {}), *redis_objects(spec, "")] if spec.managed else []
        return Release(orphans=tuple(objects))
    given: list[WorkloadKey] = []
    for t in spec.targets:
        key = (t.kind, t.name)
        workload = workloads.get(key)
        if owners.get(key) not in (None, spec.name) or workload is None:
            continue
        if (workload["metadata"].get("annotations") or {}).get(api.CLAIM_ANNOTATION) == spec.name:
            given.append(key)
    return Release(targets=tuple(given))


def release_view(namespace: str, name: str, raw: Mapping[str, Any]) -> api.SyncClusterSpec:
    """What deletion needs of a spec that no longer parses (stored before a rule existed, say): the targets it
    names, its deletionPolicy and whether its Redis is managed. Only targets that carry this SyncCluster's claim
    are given back (`release`), so a name read from a broken spec can touch nothing else."""
    raw_targets = raw.get("targets")
    targets = tuple(
        api.Target(name=t["name"], preset="generic", kind=t.get("kind", api.DEFAULT_KIND))
        for t in (raw_targets if isinstance(raw_targets, list) else [])
        if isinstance(t, Mapping)
        and isinstance(t.get("name"), str)
        and re.fullmatch(api.OBJECT_NAME_RE, t["name"]) is not None  # it becomes part of an API path
        and t.get("kind", api.DEFAULT_KIND) in api.TARGET_KINDS
    )
    redis = raw.get("redis")
    external = isinstance(redis, Mapping) and redis.get("mode") == "External"
    return api.SyncClusterSpec(
        namespace=namespace,
        name=name,
        replicas=api.DEFAULT_REPLICAS,
        prefix=api.default_prefix(namespace, name),
        targets=targets,
        managed=None if external else api.ManagedRedis(),
        external=None,
        probe=api.Probe(),
        retain_on_delete=raw.get("deletionPolicy") == "Retain",
    )
