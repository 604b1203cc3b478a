"""The control loop of one SyncCluster: reconcile passes, probes, and the one place status is written.

A pass runs when something relevant changed (the wake-up event) or its resync interval is due; the probe
runs every spec.probe.interval once the targets run the injected config. Status is composed from the last
pass and the last verdict and written only when it differs, so a settled cluster costs no API writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import time
from collections.abc import Mapping
from typing import Any

from synchro import conditions, metrics
from synchro.conditions import Condition, Reason
from synchro.kube import Kube, KubeError
from synchro.probe import checker, verdict
from synchro.reconcile import BUSY_RESYNC_S, SETTLED_RESYNC_S, Pass, ProbePlan, Reconciler, Sources, decide
from synchro.reconcile.sources import io, now_iso
from synchro.redis.listen import SwitchListener
from synchro.redis.model import service_addresses

MAX_BACKOFF_S = 60.0
PROBE_STATUS_KEYS = ("expected", "healthy", "unhealthy", "groups", "hears")  # what makes status.probe change
# Replica counts move with every pod of a rollout. A status that differs only in them is written at most this
# often; any other change (a condition, a hash, the probe) is written at once, with the latest counts.
COUNTS_EVERY_S = 5.0
COUNT_KEYS = ("replicas", "readyReplicas")


class Controller:
    """One SyncCluster's loop: a pass when woken or due, a probe round when due, then status if it changed."""

    def __init__(self, sources: Sources, body: Mapping[str, Any]) -> None:
        self.sources, self.body = sources, body
        self.reconciler = Reconciler(sources)
        self.prober = Prober(sources, self.key)
        self.writer = StatusWriter(sources.kube, body)
        self.last: Pass | None = None
        self.next_pass = self.next_probe = 0.0
        self.backoff = 1.0

    @property
    def key(self) -> tuple[str, str]:
        return self.body["metadata"]["namespace"], self.body["metadata"]["name"]

    async def run(self, stopped: Any, wake: asyncio.Event) -> None:
        listener = SwitchListener(wake.set, self.sources.logger)  # a Sentinel that moved the master wakes a pass
        try:
            while not stopped:
                if wake.is_set() or time.monotonic() >= self.next_pass:
                    wake.clear()
                    await self.reconcile()
                    if self.last is not None:
                        listener.follow(self.last.sentinels, self.last.sentinel_creds)
                plan = self.last.probe if self.last else None
                await self.probe(plan, wake)
                if self.last is not None:
                    await self.publish(self.last)
                due = min(self.next_pass, self.next_probe) if plan else self.next_pass
                if self.writer.counts_waiting:
                    due = min(due, self.writer.counts_due)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(due - time.monotonic(), 0.05))
        finally:
            listener.stop()
            metrics.forget(*self.key)

    async def publish(self, last: Pass) -> None:
        """A status write the API server refuses is written again on the next pass, after the same backoff: it
        never ends the loop (a restarted apiserver refuses with 403 until its RBAC caches are synced)."""
        try:
            await self.writer.publish(last, self.prober.verdict, self.prober.probe_time)
        except Exception as e:
            self.sources.logger.warning("status not written: %s; again in %.0fs", e, self.backoff)
            self.next_pass = min(self.next_pass, time.monotonic() + self.backoff)
            self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)

    async def reconcile(self) -> None:
        started = time.monotonic()
        try:
            # The status in the watched body can lag our own last write: what this loop
            # learnt itself is the fresher memory of which rollouts completed.
            rolled_out = decide.rolled_out_hashes(self.body.get("status"), self.last.fields if self.last else None)
            self.last = await self.reconciler.run(self.body, rolled_out)
            metrics.RECONCILES.labels("ok").inc()
            self.backoff = 1.0
            delay = BUSY_RESYNC_S if self.last.busy else SETTLED_RESYNC_S
        except Exception as e:  # logged and retried with backoff; one bad pass never ends the loop
            metrics.RECONCILES.labels("error").inc()
            if isinstance(e, KubeError) and e.gone:  # its namespace is being deleted: no traceback
                self.sources.logger.warning("reconcile: %s; retrying in %.0fs", e, self.backoff)
            else:
                self.sources.logger.exception("reconcile failed; retrying in %.0fs", self.backoff)
            delay, self.backoff = self.backoff, min(self.backoff * 2, MAX_BACKOFF_S)
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        self.next_pass = time.monotonic() + delay

    async def probe(self, plan: ProbePlan | None, wake: asyncio.Event) -> None:
        if plan is None or (self.prober.verdict is not None and self.prober.verdict.expected != plan.ready_pods):
            self.prober.verdict, self.next_probe = None, 0.0  # the pods changed: no verdict about the old set
        if plan is None or time.monotonic() < self.next_probe:
            return
        self.next_probe = time.monotonic() + plan.interval_s
        await self.prober.probe(plan)
        lost = self.prober.verdict is not None and self.prober.verdict.reason == Reason.REDIS_UNAVAILABLE
        if lost and self.last is not None and not self.last.busy:
            # The probe lost Redis that the last pass found ready, and no watch event will say so:
            # look again now, so that RedisReady tells it too (then every BUSY_RESYNC_S until back).
            wake.set()


class Prober:
    """The operator's side of the probe for one SyncCluster: the last verdict and when it was reached."""

    def __init__(self, sources: Sources, key: tuple[str, str]) -> None:
        self.sources, self.key = sources, key
        self.verdict: verdict.Verdict | None = None
        self.probe_time = ""

    async def probe(self, plan: ProbePlan) -> None:
        namespace, name = self.key
        config = self.sources.config
        now = datetime.datetime.now(datetime.UTC)
        expected = [p for p in self.sources.pods(namespace, name) if p.settled(now)]
        if len(expected) < plan.ready_pods:
            return  # the pod index lags the workloads' status: judge once it has seen every ready pod
        if plan.address is None or plan.creds is None or not config.may_connect(plan.address[0]):
            seen = verdict.Observation(redis_error=plan.unavailable or "no Redis address answered")
        else:
            seen = await checker.observe(plan.address, plan.creds, plan.prefix, [p.name for p in expected],
                                         plan.timeout_s, plan.expected_subscribers, plan.in_cluster_redis,
                                         plan.legacy_channels)  # fmt: skip
        if seen.redis_error is None:
            elsewhere = await checker.alive_elsewhere(expected, plan.desired_url, namespace, self.secret_value,
                                                      self.service_addresses, config)  # fmt: skip
            seen = dataclasses.replace(seen, elsewhere=elsewhere)
        pods = [verdict.Pod(p.name, stale=p.config_hash not in plan.desired_hashes, ip=p.ip) for p in expected]
        self.verdict = verdict.judge(pods, seen)
        self.probe_time = now_iso()
        for rtt in seen.pongs.values():
            metrics.PROBE_RTT.labels(namespace, name).observe(rtt)
        metrics.PODS_EXPECTED.labels(namespace, name).set(self.verdict.expected)
        metrics.PODS_HEALTHY.labels(namespace, name).set(len(self.verdict.healthy))

    async def secret_value(self, name: str, key: str) -> str | None:
        secret = await io(self.sources.kube.get, "v1", "Secret", self.key[0], name)
        return decide.secret_value(secret, key)

    async def service_addresses(self, namespace: str, name: str) -> tuple[str | None, list[tuple[str, int]]]:
        kube = self.sources.kube
        service = await io(kube.get, "v1", "Service", namespace, name)
        slices = await io(kube.endpoint_slices, namespace, name)
        ip = (service or {}).get("spec", {}).get("clusterIP")
        return (str(ip) if ip and ip != "None" else None), service_addresses(None, slices)


class StatusWriter:
    """The one place a SyncCluster's status is written, and the events of its transitions posted."""

    def __init__(self, kube: Kube, body: Mapping[str, Any]) -> None:
        self.kube, self.body = kube, body
        # The status this loop last wrote. Only Synchro writes status, so this is the truth; the watched body
        # can lag it by a few events, and comparing against that would repeat a write and its events.
        self.written: dict[str, Any] | None = None
        self.counts_due = 0.0  # before this moment a change of counts alone waits (COUNTS_EVERY_S)
        self.counts_waiting = False  # such a change is waiting for counts_due

    async def publish(self, last: Pass, judged: verdict.Verdict | None = None, probe_time: str = "") -> None:
        found = list(last.conditions)
        pubsub = pubsub_condition(last, judged)
        if pubsub is not None:
            found.append(pubsub)
        if not any(c.type == conditions.READY for c in found):
            found.append(conditions.ready(found))
        old = self.status()
        new = compose_status(self.body, old, found, {**last.fields, **probe_fields(old, judged, probe_time)})
        self.counts_waiting = False
        if new is None:
            return
        if only_counts_differ(old, new) and time.monotonic() < self.counts_due:
            self.counts_waiting = True
            return
        meta = self.body["metadata"]
        await io(self.kube.patch_status, meta["namespace"], meta["name"], with_removals(old, new))
        await post_transitions(self.kube, self.body, old.get("conditions") or [], found)
        self.written = {**old, **new}
        self.counts_due = time.monotonic() + COUNTS_EVERY_S

    def status(self) -> Mapping[str, Any]:
        """The current status: what this loop last wrote, else (after a restart) what the body carries."""
        return self.written if self.written is not None else (self.body.get("status") or {})


def pubsub_condition(last: Pass, judged: verdict.Verdict | None) -> Condition | None:
    if not last.probing:
        return None
    if judged is None:
        return Condition(conditions.PUBSUB_HEALTHY, False, Reason.WAITING_FOR_ROLLOUT,
                         "the probe starts once Redis is ready and the targets run the injected config")  # fmt: skip
    return Condition(conditions.PUBSUB_HEALTHY, judged.ok, judged.reason, judged.message)


def probe_fields(old: Mapping[str, Any], judged: verdict.Verdict | None, probe_time: str) -> dict[str, Any]:
    """status.probe: kept as it is while nothing but its time and round trips changed, removed without a verdict."""
    old_probe = old.get("probe")
    if judged is None:
        return {"probe": None} if old_probe is not None else {}
    probe = judged.status(probe_time)
    unchanged = old_probe and all(old_probe.get(k) == probe.get(k) for k in PROBE_STATUS_KEYS)
    return {"probe": old_probe if unchanged else probe}


def compose_status(
    body: Mapping[str, Any], old: Mapping[str, Any], current: list[Condition], fields: dict[str, Any]
) -> dict[str, Any] | None:
    """The status patch that brings `old` to what was found, or None when only timestamps would change."""
    meta = body["metadata"]
    merged = conditions.merge(old.get("conditions") or [], current, meta.get("generation", 0), now_iso())
    new = {**fields, "observedGeneration": meta.get("generation", 0), "conditions": merged}
    if all(old.get(k) == v for k, v in new.items() if k != "conditions") and conditions.same_ignoring_time(
        old.get("conditions") or [], merged
    ):
        return None
    return new


def with_removals(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that writes `new`: a key of one of old's objects that `new` no longer has (status.redis's
    master and nodes, after a Redis with replicas moved back to one pod) is set to null, so the API server drops it
    instead of keeping it beside the new fields."""
    patch = dict(new)
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = {**{k: None for k in before if k not in value}, **value}
    return patch


def only_counts_differ(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when `new` changes nothing of `old` but replica counts, top-level or per target."""

    def without_counts(status: Mapping[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in status.items() if k not in COUNT_KEYS and k != "conditions"}
        kept["targets"] = [{k: v for k, v in t.items() if k not in COUNT_KEYS} for t in status.get("targets") or []]
        return kept

    return conditions.same_ignoring_time(old.get("conditions") or [], new.get("conditions") or []) and all(
        without_counts(old).get(k) == v for k, v in without_counts(new).items()
    )


async def post_transitions(
    kube: Kube, body: Mapping[str, Any], before: list[Mapping[str, Any]], after: list[Condition]
) -> None:
    """Events for the transitions worth telling (conditions.worth_an_event), never on a pass that changed nothing."""
    await asyncio.gather(
        *(
            io(kube.post_event, body, "Normal" if c.status else "Warning", c.reason, f"{c.type}: {c.message}")
            for c in conditions.worth_an_event(before, after)
        )
    )
