"""One level-based pass over a SyncCluster, in three rooms:

- observe (observe.py): every read, through the loop's Memory, into one frozen Snapshot (model.py);
- decide (decide.py): pure; the Snapshot in, the objects to apply, the conditions and the status out;
- act (act.py): writes only what decide found different, with server-side apply.

Running a pass twice in a row, or after an operator restart, writes nothing the second time. Status is the
controller loop's (synchro.controller), which folds in the probe's verdict and writes it when it differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synchro import api
from synchro.reconcile import decide
from synchro.reconcile.act import Actor, rescue, to_one_pod
from synchro.reconcile.memory import SETTLED_RESYNC_S, Memory
from synchro.reconcile.model import ManagedSeen, Pass, ProbePlan, WorkloadKey
from synchro.reconcile.observe import Observer
from synchro.reconcile.sources import Sources

BUSY_RESYNC_S = 2.0  # Redis does not answer yet, and nothing watched will say when it does: look again soon

__all__ = ["BUSY_RESYNC_S", "SETTLED_RESYNC_S", "Memory", "Pass", "ProbePlan", "Reconciler", "Sources", "release"]


class Reconciler:
    """Runs the passes of one SyncCluster. The loop keeps one, so its Memory lives as long as the loop."""

    def __init__(self, sources: Sources, memory: Memory | None = None) -> None:
        self.memory = memory if memory is not None else Memory()
        self.observer = Observer(sources, self.memory)
        self.actor = Actor(sources, self.memory)

    async def run(self, body: Mapping[str, Any], rolled_out: Mapping[WorkloadKey, str]) -> Pass:
        """One pass: observe, decide, act. Status is left to the caller."""
        meta = body["metadata"]
        try:
            spec = api.parse(meta["namespace"], meta["name"], body.get("spec") or {})
        except (api.SpecError, KeyError) as e:
            return decide.invalid(e)
        seen = await self.observer.snapshot(body, spec, rolled_out)
        decision = decide.decide(seen)
        if decision.secret_step is not None:  # the managed Redis's passwords first, then the pass sees them
            await self.actor.secret_step(body, decision)
            seen = await self.observer.snapshot(body, spec, rolled_out)
            decision = decide.decide(seen)
        if decision.failover is not None and isinstance(seen.redis, ManagedSeen):  # the master's label before all
            await self.actor.follow(body, decision, seen.redis)
        if decision.shrink is not None and isinstance(seen.redis, ManagedSeen):
            await to_one_pod(self.actor.sources, body, decision, seen.redis)
        if decision.rescue is not None and isinstance(seen.redis, ManagedSeen):
            await rescue(self.actor.sources, body, decision, seen.redis)
        failures = await self.actor.write(decision)
        return decide.conclude(decision, failures)


async def release(sources: Sources, body: Mapping[str, Any]) -> None:
    """On deletion: give back every target (env, annotations, label removed; one replica), or with Retain
    leave targets and the managed Redis exactly as they are."""
    meta = body["metadata"]
    try:
        spec = api.parse(meta["namespace"], meta["name"], body.get("spec") or {})
    except (api.SpecError, KeyError) as e:  # never a finalizer stuck on a spec that cannot be served
        sources.logger.warning("deleting a SyncCluster whose spec is invalid (%s): giving back what it claims", e)
        spec = decide.release_view(meta["namespace"], meta["name"], body.get("spec") or {})
    memory = Memory()
    owners, workloads = await Observer(sources, memory).release(spec)
    await Actor(sources, memory).release(spec, decide.release(spec, owners, workloads))
