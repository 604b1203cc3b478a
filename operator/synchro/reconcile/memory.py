"""What one SyncCluster's loop remembers between passes, so that a settled pass makes no API call.

Observe reads through it and act writes into it; decide never sees it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synchro import inject
from synchro.api import Obj
from synchro.reconcile.model import WORKLOAD_KINDS, WorkloadKey
from synchro.redis.failover import Silence

SETTLED_RESYNC_S = 60.0  # look again this often even when no watch event wakes the loop


@dataclass
class Memory:
    """Deployments and StatefulSets come from the watch cache. Right after Synchro's own apply the cache may
    still hold the object as it was before that write: `applied` keeps the apply's answer until the cache
    moves past the version it replaced. Managed objects nothing watches (ConfigMap, Service, ...) are read
    back at most once per SETTLED_RESYNC_S; decide compares what it wants with that copy, so a change of what
    Synchro wants is applied at once. A Secret read is reused while the watch reports no newer version of it;
    the managed Redis's EndpointSlices while its Deployment is unchanged and Redis answered at them."""

    applied: dict[WorkloadKey, tuple[str, Obj]] = field(default_factory=dict)  # -> (replaced version, answer)
    seen: dict[WorkloadKey, tuple[float, Obj]] = field(default_factory=dict)  # (kind, name) -> (when, live)
    secrets: dict[str, Obj] = field(default_factory=dict)  # name -> the Secret as last read
    endpoints: tuple[str, str, list[Obj]] | None = None  # (the Redis Deployment, its version when listed, slices)
    rolled: dict[WorkloadKey, float] = field(default_factory=dict)  # when Synchro last rolled a target again
    # A managed Redis with replicas: how long each pod has been silent, the master the last pass confirmed and the
    # last failover (None: not known yet, read from status once: after a restart status is the only memory), and
    # a failover whose Event waits for its fence (from, to): the Event says how many connections were cut; and when
    # a planned switchover (redis/switchover.py) was last asked for.
    silence: Silence = field(default_factory=Silence)
    master: str | None = None
    last_failover: dict[str, Any] | None = None
    failover_untold: tuple[str, str] | None = None
    failover_asked: float | None = None  # when the operator last asked the Sentinels for a planned switchover

    def since_rollout(self, kind: str, name: str, now: float) -> float | None:
        when = self.rolled.get((kind, name))
        return None if when is None else now - when

    def known_secret(self, name: str, latest: str | None) -> Obj | None:
        known = self.secrets.get(name)
        if known is None or latest is None or known["metadata"].get("resourceVersion") != latest:
            return None
        return known

    def remember_secret(self, name: str, secret: Obj | None) -> None:
        if secret is None:
            self.secrets.pop(name, None)
        else:
            self.secrets[name] = secret

    def known_endpoints(self, deployment: Obj) -> list[Obj] | None:
        meta = deployment["metadata"]
        if self.endpoints is None or self.endpoints[:2] != (meta.get("name"), meta.get("resourceVersion", "")):
            return None
        return self.endpoints[2]

    def remember_endpoints(self, deployment: Obj, slices: list[Obj], answered: bool) -> None:
        """A new Redis pod changes its Deployment's status, and an address that stopped answering is listed anew."""
        meta = deployment["metadata"]
        self.endpoints = (meta.get("name", ""), meta.get("resourceVersion", ""), slices) if answered else None

    def freshest(self, kind: str, name: str, cached: Obj) -> Obj:
        mine = self.applied.get((kind, name))
        if mine is not None and cached.get("metadata", {}).get("resourceVersion") == mine[0]:
            return mine[1]
        self.applied.pop((kind, name), None)
        return cached

    def recently_seen(self, kind: str, name: str, now: float) -> Obj | None:
        found = self.seen.get((kind, name))
        return found[1] if found is not None and now - found[0] <= SETTLED_RESYNC_S else None

    def remember(self, live: Obj, now: float) -> None:
        self.seen[(live["kind"], live["metadata"]["name"])] = (now, live)

    def note_applied(self, live: Obj | None, answer: Obj, now: float) -> None:
        """After Synchro's own apply: a workload's answer stands in for the cache until the watch delivers it (and
        the EndpointSlices listed at the version it replaced still stand: Synchro's write moved no pod yet); any
        other object's answer is the copy decide compares with."""
        kind, name = answer["kind"], answer["metadata"]["name"]
        if kind not in WORKLOAD_KINDS:
            self.remember(answer, now)
            return
        if live is None:
            return
        replaced = live["metadata"]["resourceVersion"]
        self.applied[(kind, name)] = (replaced, inject.slim(answer))
        if self.endpoints is not None and self.endpoints[:2] == (name, replaced):
            self.endpoints = (name, answer["metadata"]["resourceVersion"], self.endpoints[2])
