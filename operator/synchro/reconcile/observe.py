"""Observe: every read of a pass (watch caches, Secrets, managed objects, EndpointSlices, PING), one Snapshot out.

Reads go through Memory first, so a settled pass makes no API call. Nothing here writes to the cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from synchro import api
from synchro.api import Obj
from synchro.reconcile import decide
from synchro.reconcile.memory import Memory
from synchro.reconcile.model import WORKLOAD_KINDS, ExternalSeen, ManagedSeen, Snapshot, TargetSeen, WorkloadKey
from synchro.reconcile.sources import Sources, io, now_iso
from synchro.redis import ha, managed, nodes
from synchro.redis.model import ready_ips, service_addresses


class Observer:
    def __init__(self, sources: Sources, memory: Memory) -> None:
        self.sources, self.memory = sources, memory

    async def snapshot(
        self, body: Mapping[str, Any], spec: api.SyncClusterSpec, rolled_out: Mapping[WorkloadKey, str]
    ) -> Snapshot:
        # Redis and the targets are observed at once: the first injection waits for neither PING nor Secret.
        redis: ManagedSeen | ExternalSeen
        redis, targets = await asyncio.gather(
            self.managed(spec, body) if spec.managed else self.external(spec), self.targets(spec)
        )
        return Snapshot(body, spec, redis, targets, rolled_out, self.sources.config.probe_image)

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """The live object: from the watch cache for workloads it holds, else from Memory or the API server."""
        if kind in WORKLOAD_KINDS and (cached := self.sources.cached(namespace, kind, name)) is not None:
            return self.memory.freshest(kind, name, cached)
        now = time.monotonic()
        if kind not in WORKLOAD_KINDS and (known := self.memory.recently_seen(kind, name, now)) is not None:
            return known
        live = await io(self.sources.kube.get, api_version, kind, namespace, name)
        if live is not None and kind not in WORKLOAD_KINDS:
            self.memory.remember(live, now)
        return live

    async def secret(self, namespace: str, name: str) -> Obj | None:
        """A Secret: the copy read last while the watch has seen no other version of it, else a GET."""
        known = self.memory.known_secret(name, self.sources.secret_version(namespace, name))
        if known is not None:
            return known
        secret = await io(self.sources.kube.get, "v1", "Secret", namespace, name)
        self.memory.remember_secret(name, secret)
        return secret

    async def managed(self, spec: api.SyncClusterSpec, body: Mapping[str, Any]) -> ManagedSeen:
        ns, name = spec.namespace, managed.name(spec.name)
        secret = await self.secret(ns, name)
        if secret is None:
            return ManagedSeen(None)
        kinds = decide.redis_kinds(spec)
        found = await asyncio.gather(*(self.read(api_version, kind, ns, n) for api_version, kind, n in kinds))
        live = {(kind, n): obj for (_, kind, n), obj in zip(kinds, found, strict=True)}
        # The workload of the other shape (a Deployment while the spec asks for replicas, or the StatefulSet while
        # it asks for one pod) is read from the watch cache only: it holds every one, and absent is the usual case.
        other = self.sources.cached(ns, "Deployment" if decide.is_ha(spec) else "StatefulSet", name)
        if decide.is_ha(spec) or decide.shrinks(spec, other):
            return await self.replicated(spec, body, secret, live, other)
        deployment = live.get(("Deployment", name))
        if deployment is None or not managed.available(deployment):
            return ManagedSeen(secret, live, other=other)
        slices = self.memory.known_endpoints(deployment)
        if slices is None:
            slices = await io(self.sources.kube.endpoint_slices, ns, name)
        addresses = service_addresses(live.get(("Service", name)), slices)
        result = await self.sources.redis.ping(addresses, decide.managed_creds(spec, secret), self.sources.config)
        self.memory.remember_endpoints(deployment, slices, result.ok)
        return ManagedSeen(secret, live, tuple(slices), result, other=other)

    async def replicated(
        self, spec: api.SyncClusterSpec, body: Mapping[str, Any], secret: Obj, live: dict[WorkloadKey, Obj | None],
        other: Obj | None,
    ) -> ManagedSeen:  # fmt: skip
        """A managed Redis with replicas: its pods and the client Service's EndpointSlices, read on every pass (no
        watch says when a Sentinel moved the master), then every Sentinel and every Redis asked at once. Moving
        between one pod and replicas, the one-pod Redis's pod too."""
        ns, name = spec.namespace, managed.name(spec.name)
        growing, shrinking = decide.grows(spec, other), decide.shrinks(spec, other)
        if live.get(("StatefulSet", name)) is None and not growing and not shrinking:
            return ManagedSeen(secret, live, other=other)
        listed, slices = await asyncio.gather(
            io(self.sources.kube.list, "v1", "Pod", ns, ha.pod_selector(spec)),
            io(self.sources.kube.endpoint_slices, ns, name),
        )
        pods = ha.pods(decide.as_replicated(spec, other) if shrinking and other else spec, listed,
                       self.sources.config.may_connect)  # fmt: skip
        # Growing from one pod: its pod is one more node, last (it runs no Sentinel), and the master until the
        # Sentinels name one. Moving back to one pod: the same, the heir.
        seed = ha.seed_pod(spec, listed, self.sources.config.may_connect) if growing or shrinking else None
        pods += [seed] if seed is not None else []
        if self.memory.master is None:  # the first pass since the operator started: status is the memory
            written = (body.get("status") or {}).get("redis") or {}
            self.memory.master, self.memory.last_failover = written.get("master", ""), written.get("lastFailover")
        world = await nodes.look(
            pods,
            decide.managed_creds(spec, secret),
            ha.OWN_USERS,
            ready_ips(slices),
            self.memory.silence,
            now=now_iso(),
            previous_master=self.memory.master,
            last_failover=self.memory.last_failover,
            fallback=seed.name if seed is not None and growing else "",
        )
        asked = self.memory.failover_asked
        since = None if asked is None else time.monotonic() - asked
        return ManagedSeen(secret, live, tuple(slices), pods=tuple(pods), world=world, other=other,
                           since_failover_asked_s=since, seed=seed)  # fmt: skip

    async def external(self, spec: api.SyncClusterSpec) -> ExternalSeen:
        ext = spec.external
        assert ext is not None
        refs = [ref for ref in (ext.password, ext.ca) if ref is not None]
        secrets = {ref.name: await self.secret(spec.namespace, ref.name) for ref in refs}
        access = decide.external_access(spec, secrets)
        if access.creds is None:
            return ExternalSeen(secrets)
        result = await self.sources.redis.ping([(ext.host, ext.port)], access.creds, self.sources.config)
        return ExternalSeen(secrets, result)

    async def targets(self, spec: api.SyncClusterSpec) -> tuple[TargetSeen, ...]:
        ns = spec.namespace
        workloads = await asyncio.gather(*(self.read("apps/v1", t.kind, ns, t.name) for t in spec.targets))
        now = time.monotonic()
        return tuple(
            TargetSeen(
                t,
                w,
                decide.owner_of(self.sources.claims, (ns, t.kind, t.name)),
                self.memory.since_rollout(t.kind, t.name, now),
            )
            for t, w in zip(spec.targets, workloads, strict=True)
        )

    async def release(
        self, spec: api.SyncClusterSpec
    ) -> tuple[dict[WorkloadKey, str | None], dict[WorkloadKey, Obj | None]]:
        """Who claims each target, and each target as the API server has it now (not the cache: this is the
        last word on it). With Retain nothing is read: targets keep what they have."""
        if spec.retain_on_delete:
            return {}, {}
        owners = {
            (t.kind, t.name): decide.owner_of(self.sources.claims, (spec.namespace, t.kind, t.name))
            for t in spec.targets
        }
        workloads = {
            (t.kind, t.name): await io(self.sources.kube.get, "apps/v1", t.kind, spec.namespace, t.name)
            for t in spec.targets
            if owners[(t.kind, t.name)] in (None, spec.name)
        }
        return owners, workloads
