"""Pure: how a managed Redis with replicas moves to a new pod template with one planned switchover at most.

The StatefulSet updates on delete (`OnDelete`), and the operator chooses the order, one step per pass, each only
while the master serves and every replica is in sync:
1. a pod of the old template that is not the master is deleted (the StatefulSet makes it again from the new one,
   and it syncs from the master);
2. once the master is the only pod left on the old template, its Sentinels are asked to fail over
   (`SENTINEL FAILOVER`), which picks an updated replica;
3. the old master, now a replica, is deleted as in 1.

So the replicas are updated first, the master moves once and to an updated pod, and no pod is deleted while a
replica is out of sync (it would be the one to promote). No I/O and no clock: the caller says how long ago it
last asked for a failover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from synchro.redis.failover import Pod, Verdict

REVISION_LABEL = "controller-revision-hash"  # the StatefulSet's revision a pod was made from
ASK_AGAIN_AFTER_S = 20.0  # a failover asked for and not done (Sentinel's failover-timeout is 15 s) is asked again


@dataclass(frozen=True)
class Step:
    delete: str | None = None  # the pod to delete
    failover: bool = False  # ask the Sentinels to fail over
    ask: tuple[str, ...] = ()  # the pods whose Sentinel may be asked to (not in TILT mode), in order
    message: str = ""  # what the update waits for or does, for the log and the Event


def step(
    target_revision: str,
    pods: Sequence[Pod],
    verdict: Verdict,
    in_sync: bool,
    since_failover_asked_s: float | None,
    tilted: frozenset[str] = frozenset(),
) -> Step | None:
    """The next step of an update to `target_revision`; None when every pod runs it (or it is not known).
    `tilted`: the pods whose Sentinel is in TILT mode, which would carry out a failover only once it leaves it."""
    old = [p for p in pods if p.revision and target_revision and p.revision != target_revision]
    if not old:
        return None
    names = ", ".join(p.name for p in old)
    if verdict.master is None or not verdict.serving or not in_sync or not all(p.ready for p in pods):
        return Step(message=f"the Redis pods {names} wait for a new template until every replica is in sync")
    replica = next((p for p in reversed(old) if p.name != verdict.master), None)
    if replica is not None:
        return Step(delete=replica.name, message=f"the Redis pod {replica.name} is made again from the new template")
    if since_failover_asked_s is not None and since_failover_asked_s < ASK_AGAIN_AFTER_S:
        return Step(message=f"waiting for the Sentinels to move the master off {verdict.master}")
    ask = tuple(p.name for p in pods if p.has_sentinel and p.name not in tilted)
    if not ask:
        return Step(message=f"waiting for a Sentinel out of TILT mode to move the master off {verdict.master}")
    return Step(
        failover=True,
        message=f"{verdict.master} is the last Redis pod on the old template: the Sentinels are asked to fail over",
        ask=ask,
    )
