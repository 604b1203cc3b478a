"""Act: write what decide found different, and nothing else. Every write is server-side apply as `synchro`,
but for the managed Redis's Secret, which is created once, and the merge patches that orphan on deletion."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from synchro import api, inject
from synchro.api import Obj
from synchro.conditions import Reason
from synchro.kube import KubeError
from synchro.reconcile import decide
from synchro.reconcile.memory import Memory
from synchro.reconcile.model import Decision, ManagedSeen, Problem, RedisState, Release, SecretStep, WorkloadKey
from synchro.reconcile.sources import Sources, io
from synchro.redis import failover, ha, managed, nodes, shrink


class Actor:
    def __init__(self, sources: Sources, memory: Memory) -> None:
        self.sources, self.memory = sources, memory

    async def create_secret(self, spec: api.SyncClusterSpec, body: Mapping[str, Any]) -> None:
        """The managed Redis's passwords, generated once: they must survive operator restarts, so the Secret is
        never re-applied (a rerun finds it, and a 409 from a racing create is harmless)."""
        if decide.is_ha(spec):
            fresh = ha.secret(spec, ha.new_passwords())
        else:
            fresh = managed.secret(spec, managed.new_passwords())
        fresh["metadata"]["ownerReferences"] = [decide.owner_reference(body)]
        await io(self.sources.kube.create, fresh)

    async def secret_step(self, body: Mapping[str, Any], decision: Decision) -> None:
        """Make decision.secret_step. Each write of a rotation goes to Redis before the Secret names it, so
        whatever the Secret says Redis takes; a step redone after a crash sets again what it had set."""
        spec, step, redis = decision.spec, decision.secret_step, decision.redis
        assert step is not None
        if step.kind == SecretStep.CREATE:
            return await self.create_secret(spec, body)
        if step.kind == SecretStep.UPGRADE:
            patch = managed.upgrade_patch(step.passwords[managed.APP_USER], managed.new_password())
        elif step.kind == SecretStep.HA_USERS:
            patch = {"stringData": ha.secret_data({**ha.new_passwords(), **step.passwords})}
        elif step.kind == SecretStep.STAGE:
            patch = managed.stage_patch(step.request, managed.new_passwords())
        else:
            patch = await rotation_patch(self.sources, step, redis)
        await io(self.sources.kube.merge_patch, "v1", "Secret", spec.namespace, managed.name(spec.name), patch)
        if step.kind == SecretStep.SWITCH and redis.creds is not None:
            await self.sources.redis.forget_login(redis.creds)  # the operator's old password, done with
        self.memory.remember_secret(managed.name(spec.name), None)  # the next read is a GET, not the old copy
        await self.rotation_event(body, step)

    async def rotation_event(self, body: Mapping[str, Any], step: SecretStep) -> None:
        told = {
            SecretStep.UPGRADE: (Reason.ACL_USERS, "the managed Redis moves to ACL users; the apps roll once"),
            SecretStep.SWITCH: (Reason.ROTATING_PASSWORD, f"new passwords for {step.request!r}; the apps roll"),
            SecretStep.FINISH: (
                Reason.PASSWORD_ROTATED,
                f"rotation {step.request!r} done: the old password is refused",
            ),
        }
        if step.kind in told:
            await io(self.sources.kube.post_event, body, "Normal", *told[step.kind])

    async def follow(self, body: Mapping[str, Any], decision: Decision, seen: ManagedSeen) -> None:
        """Carry out the failover verdict of a Redis with replicas: the master label moved in the verdict's order,
        the app connections on every other pod cut, a silent old master's pod deleted; then an Event per failover
        (once its fence ran) and per connection found on a non-master outside one."""
        verdict = decision.failover
        assert verdict is not None and seen.world is not None
        spec, kube, memory = decision.spec, self.sources.kube, self.memory
        if decision.seed_commands and seen.seed is not None and decision.redis.creds is not None:
            await nodes.send(seen.seed.redis, decision.redis.creds, decision.seed_commands)
        for move in verdict.labels:
            await io(kube.merge_patch, "v1", "Pod", spec.namespace, move.pod, ha.label_patch(move.master))
            self.sources.logger.info("master label %s pod %s", "put on" if move.master else "taken off", move.pod)
        cut = 0
        if verdict.cuts and decision.redis.creds is not None:
            cut = await nodes.fence(verdict, seen.pods, decision.redis.creds)
        for pod in verdict.delete:
            uid = next((n.uid for n in seen.world.nodes if n.pod == pod), "")
            await io(kube.delete, "v1", "Pod", spec.namespace, pod, uid)
        await self.update_pods(body, decision, seen)
        await retire(self.sources, body, decision, seen)
        told = failover.tell(seen.world, verdict, memory.failover_untold, cut)
        for type_, reason, message in told.events:
            await io(kube.post_event, body, type_, reason, message)
        memory.failover_untold = told.untold
        if verdict.master is not None:
            memory.master = verdict.master
            memory.last_failover = verdict.status.get("lastFailover")

    async def update_pods(self, body: Mapping[str, Any], decision: Decision, seen: ManagedSeen) -> None:
        """The next step of moving the Redis pods to a new template (redis/switchover.py)."""
        step, creds = decision.switchover, decision.redis.creds
        if step is None or not (step.delete or step.failover) or creds is None:
            return
        if step.delete:
            self.sources.logger.info("%s", step.message)
            uid = next((p.uid for p in seen.pods if p.name == step.delete), "")
            await io(self.sources.kube.delete, "v1", "Pod", decision.spec.namespace, step.delete, uid)
            return
        by = await nodes.ask_failover([p for p in seen.pods if p.name in step.ask], creds)
        if by is not None:  # else asked again next pass: the Sentinels do not see every replica up yet
            self.sources.logger.info("%s", step.message)
            self.memory.failover_asked = time.monotonic()
            await io(self.sources.kube.post_event, body, "Normal", Reason.SWITCHOVER, step.message)

    async def write(self, decision: Decision) -> dict[WorkloadKey, Problem]:
        """Apply each Write in order. A target that cannot be written is returned with why; anything else raises
        (the pass is retried with backoff)."""
        failures: dict[WorkloadKey, Problem] = {}
        for write in decision.writes:
            try:
                answer = await io(self.sources.kube.apply, write.obj)
            except KubeError as e:
                if write.target is None:
                    raise
                failures[write.target] = (
                    Reason.TARGET_NOT_FOUND if e.status == 404 else Reason.APPLY_FAILED,
                    e.message,
                )
                continue
            self.memory.note_applied(write.live, answer, time.monotonic())
            if write.rollout and write.target is not None:
                self.memory.rolled[write.target] = time.monotonic()
            if write.target is not None:
                self.sources.logger.info("applied %s %s (%s)", *write.target, write.note)
                self.halt_if_asked(decision, write.target)
        return failures

    def halt_if_asked(self, decision: Decision, target: WorkloadKey) -> None:
        """The test hook SYNCHRO_TEST_HALT_AFTER_INJECT: stop here, the inject written and the scale not yet."""
        held = any((t.kind, t.name) == target and t.held_because for t in decision.targets)
        halt = self.sources.config.halt_after_inject
        if held and halt and halt == decision.spec.namespace:
            self.sources.logger.warning("test hook: halting after the inject of %s %s", *target)
            os.kill(os.getpid(), signal.SIGSTOP)

    async def release(self, spec: api.SyncClusterSpec, plan: Release) -> None:
        kube, logger = self.sources.kube, self.sources.logger
        for obj in plan.orphans:
            await io(
                kube.merge_patch,
                obj["apiVersion"],
                obj["kind"],
                spec.namespace,
                obj["metadata"]["name"],
                {"metadata": {"ownerReferences": None}},
            )
        for kind, name in plan.targets:
            try:
                await io(kube.apply, inject.release_apply(kind, spec.namespace, name, 1))
                await io(kube.apply, inject.release_apply(kind, spec.namespace, name, None))
            except KubeError as e:
                if not e.gone:
                    raise
                logger.info("%s %s went away with its namespace: nothing to give back", kind, name)
                continue
            logger.info("released %s %s: injected env removed, scaled to 1", kind, name)


async def retire(sources: Sources, body: Mapping[str, Any], decision: Decision, seen: ManagedSeen) -> None:
    """A managed Redis grown from one pod: its Deployment deleted (that one only: by uid) once a new pod is the
    master and the old one follows it in sync."""
    if not decision.retire or seen.other is None or decision.failover is None:
        return
    uid = (seen.other.get("metadata") or {}).get("uid", "")
    spec = decision.spec
    await io(sources.kube.delete, "apps/v1", "Deployment", spec.namespace, decision.retire, uid)
    message = (
        f"{decision.failover.master} is the Redis master: the one-pod Redis's Deployment {decision.retire} is"
        f" deleted, its keys live on in StatefulSet {decision.retire}'s {len(ha.pod_names(spec))} pods"
    )
    sources.logger.info("%s", message)
    await io(sources.kube.post_event, body, "Normal", Reason.RESIZED, message)


async def to_one_pod(sources: Sources, body: Mapping[str, Any], decision: Decision, seen: ManagedSeen) -> None:
    """Carry out decision.shrink (redis/shrink.py): make the one-pod Redis a replica of the master; or switch to
    it, then demote any other master, move the label and delete the StatefulSet (that one only: by uid). A switch
    that did not happen (the one-pod Redis behind) is tried again by the next pass."""
    moving, creds, heir, world = decision.shrink, decision.redis.creds, seen.seed, seen.world
    if moving is None or creds is None or heir is None or world is None or seen.other is None:
        return
    spec, kube, by_name = decision.spec, sources.kube, {p.name: p for p in seen.pods}
    if moving.kind == shrink.FOLLOW and decision.heir_commands:
        await nodes.send(heir.redis, creds, decision.heir_commands)
        sources.logger.info("%s", moving.message)
    if moving.kind not in (shrink.SWITCH, shrink.FINISH):
        return
    if moving.kind == shrink.SWITCH:
        sentinels = [p.sentinel for p in seen.pods if p.has_sentinel and p.reachable]
        why = await nodes.take_over(by_name[moving.master].redis, heir.redis, sentinels, creds, decision.remonitor)
        if why is not None:
            sources.logger.info("the one-pod Redis %s does not take over yet: %s", heir.name, why)
            return
    masters = [n.pod for n in world.nodes if n.pod != heir.name and n.role is not None and n.role.role == "master"]
    await nodes.demote([by_name[pod].redis for pod in masters], heir.redis, creds)
    if not heir.labelled:
        await io(kube.merge_patch, "v1", "Pod", spec.namespace, heir.name, ha.label_patch(True))
    for node in world.nodes:
        if node.labelled and node.pod != heir.name:
            await io(kube.merge_patch, "v1", "Pod", spec.namespace, node.pod, ha.label_patch(False))
    name = managed.name(spec.name)
    uid = (seen.other.get("metadata") or {}).get("uid", "")
    await io(kube.delete, "apps/v1", "StatefulSet", spec.namespace, name, uid)
    message = f"{heir.name} is the Redis master: StatefulSet {name} is deleted, its keys live on in Deployment {name}"
    sources.logger.info("%s", message)
    await io(kube.post_event, body, "Normal", Reason.RESIZED, message)


async def rescue(sources: Sources, body: Mapping[str, Any], decision: Decision, seen: ManagedSeen) -> None:
    """Carry out decision.rescue (failover.rescue): the replica with the most data promoted, the other replicas
    and every Sentinel pointed at it. The next pass confirms it as any failover, and moves the label."""
    found, creds = decision.rescue, decision.redis.creds
    if found is None or creds is None:
        return
    by_name = {p.name: p for p in seen.pods}
    replicas = [by_name[pod].redis for pod in found.replicas]
    sentinels = [p.sentinel for p in seen.pods if p.has_sentinel and p.reachable]
    best = await nodes.rescue(replicas, decision.monitor_commands, sentinels, creds)
    if best is None:
        return
    message = f"{found.message}: {found.replicas[best]}"
    sources.logger.warning("%s", message)
    await io(sources.kube.post_event, body, "Warning", Reason.PROMOTED, message)


async def rotation_patch(sources: Sources, step: SecretStep, redis: RedisState) -> Obj:
    """A rotation's SWITCH or FINISH: the passwords sent to Redis first (ACL SETUSER: beside the old ones, or for
    FINISH as the only ones), then the Secret patch that names them. With replicas they go to every Redis pod and
    every Sentinel at once (ACL users are not replicated); one that fails raises, the Secret is not patched, and
    the next pass sends them all again (each is safe to redo)."""
    assert redis.creds is not None
    only = step.kind == SecretStep.FINISH
    if step.reach.nodes:
        to_redis, to_sentinels = ha.rotation_commands(step.passwords, only=only)
        await asyncio.gather(
            *(nodes.send(address, redis.creds, to_redis) for address in step.reach.nodes),
            *(nodes.send(address, redis.creds, to_sentinels) for address in step.reach.sentinels),
        )
    else:
        assert redis.address is not None
        rules = [managed.setuser(user, password, only=only) for user, password in step.passwords.items()]
        await sources.redis.acl_setuser(redis.address, redis.creds, rules)
    if only:
        return managed.finish_patch(step.request, step.resource_version)
    kept = step.reach.kept
    data = ha.secret_data({**step.passwords, **kept}) if kept else managed.secret_data(step.passwords)
    return managed.switch_patch(step.request, data, step.resource_version)
