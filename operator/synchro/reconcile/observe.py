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
from synchro.reconcile.sources import Sources, io
from synchro.redis import managed
from synchro.redis.model import service_addresses


class Observer:
    def __init__(self, sources: Sources, memory: Memory) -> None:
        self.sources, self.memory = sources, memory

    async def snapshot(
        self, body: Mapping[str, Any], spec: api.SyncClusterSpec, rolled_out: Mapping[WorkloadKey, str]
    ) -> Snapshot:
        # Redis and the targets are observed at once: the first injection waits for neither PING nor Secret.
        redis: ManagedSeen | ExternalSeen
        redis, targets = await asyncio.gather(
            self.managed(spec) if spec.managed else self.external(spec), self.targets(spec)
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

    async def managed(self, spec: api.SyncClusterSpec) -> ManagedSeen:
        ns, name = spec.namespace, managed.name(spec.name)
        secret = await self.secret(ns, name)
        if secret is None:
            return ManagedSeen(None)
        kinds = managed.applied_kinds(spec)
        found = await asyncio.gather(*(self.read(api_version, kind, ns, name) for api_version, kind in kinds))
        live = {kind: obj for (_, kind), obj in zip(kinds, found, strict=True)}
        deployment = live.get("Deployment")
        if deployment is None or not managed.available(deployment):
            return ManagedSeen(secret, live)
        slices = self.memory.known_endpoints(deployment)
        if slices is None:
            slices = await io(self.sources.kube.endpoint_slices, ns, name)
        addresses = service_addresses(live.get("Service"), slices)
        result = await self.sources.redis.ping(addresses, decide.managed_creds(spec, secret), self.sources.config)
        self.memory.remember_endpoints(deployment, slices, result.ok)
        return ManagedSeen(secret, live, tuple(slices), result)

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
