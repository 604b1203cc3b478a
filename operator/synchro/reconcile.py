"""One level-based pass over a SyncCluster: observe, compare with the desired state, write only differences.

Every step below reads the live world, calls the pure core (api, presets, redis.managed, inject,
conditions) and writes with server-side apply when, and only when, something differs. Running it
twice in a row, or after an operator restart, writes nothing the second time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from synchro import api, conditions, inject, presets
from synchro.conditions import Condition, Reason
from synchro.config import Config
from synchro.kube import Kube, KubeError, Obj
from synchro.probe import sidecar
from synchro.redis import connect, managed

T = TypeVar("T")
SETTLED_RESYNC_S = 60.0  # look again this often even when no watch event wakes the loop
BUSY_RESYNC_S = 2.0  # Redis does not answer yet, and nothing watched will say when it does: look again soon

ClaimKey = tuple[str, str, str]  # (namespace, kind, name) of a target workload
WORKLOAD_KINDS = ("Deployment", "StatefulSet")  # held by the watch cache (the indexes in synchro.handlers)
Claim = tuple[str, str]  # (creationTimestamp, SyncCluster name): the oldest claim wins


async def io(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking Kubernetes client call off the event loop."""
    return await asyncio.to_thread(fn, *args)


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


@dataclass
class RedisState:
    condition: Condition
    endpoint: presets.Endpoint | None = None  # what the apps get; None until it is known
    display: str = ""
    secret_version: str = ""
    address: tuple[str, int] | None = None  # where the operator's PING was answered
    creds: connect.Credentials | None = None

    @property
    def ready(self) -> bool:
        return self.condition.status


@dataclass
class TargetState:
    kind: str
    name: str
    problem: tuple[str, str] | None = None  # (reason, message) when it could not be injected
    config_hash: str = ""
    rolled_out_hash: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    complete: bool = False
    held_because: str | None = None
    kept_user_vars: tuple[str, ...] = ()

    def as_status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "configHash": self.config_hash,
            "rolledOutHash": self.rolled_out_hash,
            "replicas": self.replicas,
            "readyReplicas": self.ready_replicas,
        }


def rolled_out_hashes(*statuses: Mapping[str, Any] | None) -> dict[tuple[str, str], str]:
    """(kind, name) -> rolledOutHash, from status dicts; later ones win where they know a hash."""
    found: dict[tuple[str, str], str] = {}
    for status in statuses:
        for t in (status or {}).get("targets") or []:
            if t.get("rolledOutHash"):
                found[(t.get("kind", "Deployment"), t["name"])] = t["rolledOutHash"]
    return found


@dataclass
class Memory:
    """What one SyncCluster's loop remembers between passes so that a settled pass makes no API call.

    Deployments and StatefulSets come from the watch cache. Right after Synchro's own apply the cache may
    still hold the object as it was before that write: `applied` keeps the apply's answer until the cache
    moves past the version it replaced. Managed objects nothing watches (ConfigMap, Service, ...) are read
    back at most once per SETTLED_RESYNC_S while what Synchro wants of them stays the same. A Secret read is
    reused while the watch reports no newer version of it; the managed Redis's EndpointSlices while its
    Deployment is unchanged and Redis answered at them."""

    applied: dict[tuple[str, str], tuple[str, Obj]] = field(default_factory=dict)  # -> (replaced version, answer)
    verified: dict[tuple[str, str], tuple[str, float, Obj]] = field(default_factory=dict)  # -> (want, when, live)
    secrets: dict[str, Obj] = field(default_factory=dict)  # name -> the Secret as last read
    endpoints: tuple[str, list[Obj]] | None = None  # (the Redis Deployment's version when listed, its slices)

    def known_secret(self, name: str, latest: str | None) -> Obj | None:
        known = self.secrets.get(name)
        if known is None or latest is None or known["metadata"].get("resourceVersion") != latest:
            return None
        return known

    def known_endpoints(self, deployment: Obj) -> list[Obj] | None:
        version = deployment["metadata"].get("resourceVersion", "")
        return self.endpoints[1] if self.endpoints is not None and self.endpoints[0] == version else None

    def remember_endpoints(self, deployment: Obj, slices: list[Obj], answered: bool) -> None:
        """A new Redis pod changes its Deployment's status, and an address that stopped answering is listed anew."""
        self.endpoints = (deployment["metadata"].get("resourceVersion", ""), slices) if answered else None

    def freshest(self, kind: str, name: str, cached: Obj) -> Obj:
        mine = self.applied.get((kind, name))
        if mine is not None and cached.get("metadata", {}).get("resourceVersion") == mine[0]:
            return mine[1]
        self.applied.pop((kind, name), None)
        return cached

    def recently_verified(self, obj: Obj, now: float) -> Obj | None:
        found = self.verified.get((obj["kind"], obj["metadata"]["name"]))
        if found is None or found[0] != fingerprint(obj) or now - found[1] > SETTLED_RESYNC_S:
            return None
        return found[2]

    def verify(self, obj: Obj, live: Obj, now: float) -> None:
        self.verified[(obj["kind"], obj["metadata"]["name"])] = (fingerprint(obj), now, live)


def fingerprint(obj: Obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ProbePlan:
    """What the probe needs from a pass: where Redis answered, and what every pod should run."""

    address: tuple[str, int] | None  # None while no Redis answers at all (a managed Redis pod being re-created)
    creds: connect.Credentials | None
    prefix: str
    desired_url: str
    desired_hashes: frozenset[str]
    interval_s: int
    timeout_s: int
    expected_subscribers: Mapping[str, int]
    in_cluster_redis: bool  # the managed Redis sees pod IPs; an external one may see only the nodes'
    ready_pods: int  # what the workloads report ready: the probe waits until it sees as many pods
    unavailable: str = ""  # RedisReady's message when not ready: the verdict if no address may be tried
    legacy_channels: Mapping[str, str] = field(default_factory=dict)  # app channel -> older releases' channel


@dataclass(frozen=True)
class Pass:
    conditions: list[Condition]  # without Ready: the caller folds the probe's verdict in first
    fields: dict[str, Any]
    busy: bool
    probe: ProbePlan | None
    probing: bool = False  # spec.probe.sidecar: PubSubHealthy is expected


@dataclass
class Reconciler:
    kube: Kube
    body: Mapping[str, Any]
    claims: Mapping[ClaimKey, Any]
    config: Config
    rolled_out: Mapping[tuple[str, str], str]  # (kind, name) -> the last config hash that completed a rollout
    cached: Callable[[str, str, str], Obj | None]  # (namespace, kind, name) -> the watched workload, if cached
    memory: Memory
    logger: logging.Logger | logging.LoggerAdapter[Any] = field(default_factory=lambda: logging.getLogger("synchro"))
    secret_version: Callable[[str, str], str | None] = lambda namespace, name: None  # the watch's latest, if seen

    async def run(self) -> Pass:
        """One pass: observe and write what differs. Status is left to the caller (see synchro.controller)."""
        meta = self.body["metadata"]
        try:
            spec = api.parse(meta["namespace"], meta["name"], self.body.get("spec") or {})
        except (api.SpecError, KeyError) as e:
            return Pass([Condition(conditions.READY, False, Reason.INVALID_SPEC, str(e))], {}, False, None)
        # Redis and the targets are observed at once: the first injection waits for neither PING nor Secret.
        redis, workloads = await asyncio.gather(
            self.managed_redis(spec) if spec.managed else self.external_redis(spec),
            asyncio.gather(*(self.read("apps/v1", t.kind, spec.namespace, t.name) for t in spec.targets)),
        )
        targets = [await self.sync_target(spec, t, redis, w) for t, w in zip(spec.targets, workloads, strict=True)]
        # Rollouts report through the workloads' watch events; only Redis coming up has to be polled.
        busy = not redis.ready
        # The probe runs once every target has rolled out an injected config, and keeps running through a
        # Redis outage: that is when it has the most to say.
        probing = all(t.problem is None and t.rolled_out_hash for t in targets)
        return Pass(
            self.conditions(spec, redis, targets),
            self.status_fields(spec, redis, targets),
            busy,
            self.probe_plan(spec, redis, targets) if probing else None,
            spec.probe.sidecar,
        )

    @staticmethod
    def probe_plan(spec: api.SyncClusterSpec, redis: RedisState, targets: list[TargetState]) -> ProbePlan | None:
        if not spec.probe.sidecar or redis.endpoint is None:
            return None
        channels: dict[str, int] = {}
        legacy: dict[str, str] = {}
        for target, state in zip(spec.targets, targets, strict=True):
            preset = presets.get(target.preset)
            for channel in preset.probe_channels(redis.endpoint):
                channels[channel] = channels.get(channel, 0) + state.ready_replicas
            legacy.update(preset.legacy_channels(redis.endpoint))
        return ProbePlan(
            redis.address,
            redis.creds,
            spec.prefix,
            presets.redis_url(redis.endpoint),
            frozenset(t.config_hash for t in targets),
            spec.probe.interval_s,
            spec.probe.timeout_s,
            channels,
            spec.managed is not None,
            sum(t.ready_replicas for t in targets),
            "" if redis.ready else redis.condition.message,
            legacy,
        )

    # ------------------------------------------------------------ Redis

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """The live object: from the watch cache for workloads it holds, else from the API server."""
        cached = self.cached(namespace, kind, name) if kind in WORKLOAD_KINDS else None
        if cached is not None:
            return self.memory.freshest(kind, name, cached)
        return await io(self.kube.get, api_version, kind, namespace, name)

    async def secret(self, namespace: str, name: str) -> Obj | None:
        """A Secret: the copy read last while the watch has seen no other version of it, else a GET."""
        known = self.memory.known_secret(name, self.secret_version(namespace, name))
        if known is not None:
            return known
        secret = await io(self.kube.get, "v1", "Secret", namespace, name)
        if secret is None:
            self.memory.secrets.pop(name, None)
        else:
            self.memory.secrets[name] = secret
        return secret

    async def apply(self, obj: Obj, live: Obj | None) -> Obj:
        answer = await io(self.kube.apply, obj)
        if live is not None and obj["kind"] in WORKLOAD_KINDS:
            self.memory.applied[(obj["kind"], obj["metadata"]["name"])] = (
                live["metadata"]["resourceVersion"],
                inject.slim(answer),
            )
        return answer

    async def apply_if_changed(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        now = time.monotonic()
        if obj["kind"] not in WORKLOAD_KINDS and (known := self.memory.recently_verified(obj, now)) is not None:
            return known
        live = await self.read(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        if live is None or not inject.subset_equal(obj, live):
            live = await self.apply(obj, live)
        if obj["kind"] not in WORKLOAD_KINDS:
            self.memory.verify(obj, live, now)
        return live

    async def managed_redis(self, spec: api.SyncClusterSpec) -> RedisState:
        assert spec.managed is not None
        ns, name = spec.namespace, managed.name(spec.name)
        secret = await self.secret(ns, name)
        if secret is None:
            fresh = managed.secret(spec, managed.new_password())
            fresh["metadata"]["ownerReferences"] = [owner_reference(self.body)]
            await io(self.kube.create, fresh)
            secret = await self.secret(ns, name)
        password = secret_value(secret, api.PASSWORD_KEY) if spec.managed.auth else None
        version = (
            inject.secret_version(secret["metadata"]["uid"], secret.get("data"), api.PASSWORD_KEY)
            if secret and spec.managed.auth
            else ""
        )
        redis_version = inject.config_hash({"redis.conf": [{"conf": managed.redis_conf(spec)}]}, version)
        live: dict[str, Obj] = {}  # kind -> the object as the API server has it after this pass
        for obj in managed.applied_objects(spec, redis_version):
            obj["metadata"]["ownerReferences"] = [owner_reference(self.body)]
            live[obj["kind"]] = await self.apply_if_changed(obj)
        host = f"{name}.{ns}.svc"
        endpoint = presets.Endpoint(
            host=host,
            port=api.REDIS_PORT,
            db=0,
            password=presets.SecretKeyRef(name, api.PASSWORD_KEY) if spec.managed.auth else None,
            prefix=spec.prefix,
        )
        state = RedisState(
            Condition(conditions.REDIS_READY, False, Reason.PROVISIONING, ""),
            endpoint,
            f"{host}:{api.REDIS_PORT}",
            version,
        )
        if not (live["Deployment"].get("status") or {}).get("availableReplicas"):
            state.condition = Condition(
                conditions.REDIS_READY,
                False,
                Reason.PROVISIONING,
                f"waiting for the Redis pod of Deployment {name} to be ready",
            )
            return state
        service = live["Service"]
        slices = self.memory.known_endpoints(live["Deployment"])
        if slices is None:
            slices = await io(
                self.kube.list, "discovery.k8s.io/v1", "EndpointSlice", ns, f"kubernetes.io/service-name={name}"
            )
        state.creds = connect.Credentials(None, password, 0, False)
        addresses = connect.service_addresses(service, slices)
        result = await connect.ping(addresses, state.creds, self.config)
        self.memory.remember_endpoints(live["Deployment"], slices, result.ok)
        state.condition = self.redis_condition(result)
        state.address = result.address or next(iter(addresses), None)
        return state

    async def external_redis(self, spec: api.SyncClusterSpec) -> RedisState:
        ext = spec.external
        assert ext is not None
        password = ca = None
        version = ""
        display = f"{ext.host}:{ext.port}/{ext.db}"
        for ref in (ext.password, ext.ca):
            if ref is None:
                continue
            secret = await self.secret(spec.namespace, ref.name)
            value = secret_value(secret, ref.key)
            if value is None:
                what = "Secret" if secret is None else f"key {ref.key!r} in Secret"
                message = f"{what} {ref.name!r} not found in namespace {spec.namespace}"
                return RedisState(
                    Condition(conditions.REDIS_READY, False, Reason.SECRET_NOT_FOUND, message), display=display
                )
            if ref is ext.password:
                password = value
                version = (
                    inject.secret_version(secret["metadata"]["uid"], secret.get("data"), ref.key) if secret else ""
                )
            else:
                ca = value
        endpoint = presets.Endpoint(
            host=ext.host,
            port=ext.port,
            db=ext.db,
            tls=ext.tls,
            username=ext.username,
            password=ext.password,
            prefix=spec.prefix,
        )
        creds = connect.Credentials(ext.username, password, ext.db, ext.tls, ca)
        result = await connect.ping([(ext.host, ext.port)], creds, self.config)
        return RedisState(self.redis_condition(result), endpoint, display, version, (ext.host, ext.port), creds)

    @staticmethod
    def redis_condition(result: connect.PingResult) -> Condition:
        reason = Reason.REDIS_REACHABLE if result.ok else result.reason
        return Condition(conditions.REDIS_READY, result.ok, reason, result.message)

    # ------------------------------------------------------------ targets

    async def sync_target(
        self, spec: api.SyncClusterSpec, target: api.Target, redis: RedisState, workload: Obj | None
    ) -> TargetState:
        state = TargetState(target.kind, target.name)
        state.rolled_out_hash = self.rolled_out.get((target.kind, target.name), "")
        owner = owner_of(self.claims, (spec.namespace, target.kind, target.name))
        if owner not in (None, spec.name):
            state.problem = (
                Reason.TARGET_CONFLICT,
                f"{target.kind} {target.name} is already claimed by SyncCluster {owner}",
            )
            return state
        if workload is None:
            state.problem = (Reason.TARGET_NOT_FOUND, f"{target.kind} {target.name} not found in {spec.namespace}")
            return state
        if redis.endpoint is None:
            state.problem = (redis.condition.reason, "waiting for the Redis endpoint: " + redis.condition.message)
            return state
        env = presets.env_for(presets.get(target.preset), redis.endpoint, target.env)
        probe = (
            sidecar.container(redis.endpoint, self.config.probe_image, spec.probe.interval_s)
            if spec.probe.sidecar
            else None
        )
        plan = inject.plan_env(workload, target.containers, env, probe)
        if plan.missing_containers:
            state.problem = (
                Reason.CONTAINER_NOT_FOUND,
                f"{target.kind} {target.name} has no container {', '.join(plan.missing_containers)}",
            )
            return state
        state.kept_user_vars = plan.kept_user_vars
        state.config_hash = inject.config_hash(plan.env, redis.secret_version, plan.sidecar)
        # Judge the rollout on the workload as observed, before this pass changes anything. It counts as
        # the first safe rollout only while Redis answers: pods that came up against a dead Redis prove nothing.
        rolled_out = inject.template_hash(workload) == state.config_hash and inject.rollout_complete(workload)
        if rolled_out and redis.ready:
            state.rolled_out_hash = state.config_hash
        decision = inject.decide_replicas(spec.replicas, redis.ready, bool(state.rolled_out_hash))
        state.held_because = decision.held_because
        desired = inject.desired_apply(
            target.kind, spec.namespace, target.name, spec.name, plan, state.config_hash, decision.replicas
        )
        applied = inject.is_applied(workload, desired)
        if not applied:
            try:
                workload = await self.apply(desired, workload)
            except KubeError as e:
                state.problem = (Reason.TARGET_NOT_FOUND if e.status == 404 else "ApplyFailed", e.message)
                return state
            self.logger.info(
                "applied %s %s (config %s, replicas %s)", target.kind, target.name, state.config_hash, decision.replicas
            )
        status = workload.get("status") or {}
        state.replicas = status.get("replicas", 0)
        state.ready_replicas = status.get("readyReplicas", 0)
        state.complete = (
            applied
            and rolled_out
            and decision.held_because is None
            and workload["spec"].get("replicas") == spec.replicas
        )
        return state

    # ------------------------------------------------------------ status

    @staticmethod
    def conditions(spec: api.SyncClusterSpec, redis: RedisState, targets: list[TargetState]) -> list[Condition]:
        problems = [t for t in targets if t.problem]
        if problems:
            injected = Condition(
                conditions.CONFIG_INJECTED,
                False,
                problems[0].problem[0],  # type: ignore[index]
                "; ".join(t.problem[1] for t in problems if t.problem),
            )
        else:
            kept = [f"{t.name}: {', '.join(t.kept_user_vars)}" for t in targets if t.kept_user_vars]
            note = f"; the user's own values were kept for {'; '.join(kept)}" if kept else ""
            injected = Condition(
                conditions.CONFIG_INJECTED,
                True,
                Reason.INJECTED,
                f"{len(targets)} target(s) carry the {spec.mode} Redis config{note}",
            )
        held = [t for t in targets if t.held_because]
        pending = [t for t in targets if not t.complete]
        if held:
            why = "Redis is ready" if held[0].held_because == "RedisNotReady" else "the injected config has rolled out"
            rollout = Condition(
                conditions.ROLLOUT_COMPLETE,
                False,
                Reason.SCALE_HELD,
                f"{', '.join(t.name for t in held)} held at 1 replica until {why}",
            )
        elif pending:
            rollout = Condition(
                conditions.ROLLOUT_COMPLETE,
                False,
                Reason.ROLLING_OUT,
                f"waiting for {', '.join(t.name for t in pending)} to run {spec.replicas} "
                "ready replica(s) of the injected config",
            )
        else:
            rollout = Condition(
                conditions.ROLLOUT_COMPLETE,
                True,
                Reason.ROLLED_OUT,
                f"every target runs {spec.replicas} ready replica(s) of the injected config",
            )
        return [redis.condition, injected, rollout]

    @staticmethod
    def status_fields(spec: api.SyncClusterSpec, redis: RedisState, targets: list[TargetState]) -> dict[str, Any]:
        found = [t for t in targets if t.problem is None]
        return {
            "replicas": min((t.replicas for t in found), default=0),
            "readyReplicas": min((t.ready_replicas for t in found), default=0),
            "selector": f"{api.CLUSTER_LABEL}={spec.name}",
            "redis": {"mode": spec.mode, "endpoint": redis.display},
            "targets": [t.as_status() for t in targets],
        }


async def release(
    kube: Kube,
    body: Mapping[str, Any],
    claims: Mapping[ClaimKey, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """On deletion: give back every target (env, annotations, label removed; one replica), or with Retain
    leave targets and the managed Redis exactly as they are."""
    meta = body["metadata"]
    spec = api.parse(meta["namespace"], meta["name"], body.get("spec") or {})
    if spec.retain_on_delete:
        if spec.managed:
            # Orphan the managed Redis so garbage collection keeps it; targets keep their config.
            for obj in [managed.secret(spec, ""), *managed.applied_objects(spec, "")]:
                await io(
                    kube.merge_patch,
                    obj["apiVersion"],
                    obj["kind"],
                    spec.namespace,
                    obj["metadata"]["name"],
                    {"metadata": {"ownerReferences": None}},
                )
        return
    for target in spec.targets:
        if owner_of(claims, (spec.namespace, target.kind, target.name)) not in (None, spec.name):
            continue
        workload = await io(kube.get, "apps/v1", target.kind, spec.namespace, target.name)
        if workload is None or (workload["metadata"].get("annotations") or {}).get(api.CLAIM_ANNOTATION) != spec.name:
            continue
        try:
            await io(kube.apply, inject.release_apply(target.kind, spec.namespace, target.name, 1))
            await io(kube.apply, inject.release_apply(target.kind, spec.namespace, target.name, None))
        except KubeError as e:
            if not e.gone:
                raise
            logger.info("%s %s went away with its namespace: nothing to give back", target.kind, target.name)
            continue
        logger.info("released %s %s: injected env removed, scaled to 1", target.kind, target.name)
