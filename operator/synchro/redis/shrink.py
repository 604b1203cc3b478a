"""Moving a managed Redis with replicas back to one pod, keys and all (issue 15). Pure, like switchover.py.

The one-pod Redis's Deployment is applied beside the StatefulSet, and its pod (the heir, started empty) is made a
replica of the master, with replica-priority 0 so that the Sentinels never promote it. Once it is in sync, one act
call pauses the master's writes, waits for the heir to hold every one of them, takes the master out of the
Sentinels' hands (SENTINEL REMOVE), promotes the heir, demotes the old master to a replica of it, moves the
master label and deletes the StatefulSet. A pass that finds the heir promoted, labelled or followed by a pod of
the StatefulSet (an operator stopped half way), does what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from synchro.redis.failover import NO_MASTER, Node, Verdict, World

WAIT, FOLLOW, SWITCH, FINISH = "Wait", "Follow", "Switch", "Finish"


@dataclass(frozen=True)
class Step:
    kind: str  # WAIT, FOLLOW (make the heir a replica of `master`), SWITCH (from `master` to the heir), FINISH
    message: str
    master: str = ""  # FOLLOW and SWITCH: the pod the heir copies


def step(world: World, heir: str | None, verdict: Verdict, deployment: str) -> Step:
    """The next step of the move to the one-pod Redis whose pod is `heir` (None: not running yet)."""
    node = next((n for n in world.nodes if n.pod == heir), None)
    if node is None or node.role is None:
        return Step(WAIT, f"waiting for the Redis pod of Deployment {deployment} to answer: it copies the keys first")
    followers = [n.pod for n in world.nodes if n is not node and source(world, n) is node]
    if node.role.role == "master" and (node.labelled or followers):  # switched, maybe by an operator stopped since
        return Step(FINISH, f"{node.pod} is the master: the StatefulSet's pods go")
    followed = source(world, node)
    named = {a for a in world.sentinels if a is not None and a != NO_MASTER}  # NO_MASTER: a switch cut short
    others = named - (followed.addresses if followed else frozenset())
    if followed is not None and followed.role is not None and followed.role.role == "master" and not others:
        if not node.role.link_up:
            return Step(WAIT, f"{node.pod} copies the keys of {followed.pod}", followed.pod)
        silent = sum(1 for a in world.sentinels if a is None)
        if silent:  # it would miss SENTINEL REMOVE, and might turn the promoted heir back into a replica
            return Step(WAIT, f"{node.pod} takes over once every Sentinel answers ({silent} did not)", followed.pod)
        return Step(SWITCH, f"{node.pod}, a replica of {followed.pod}, takes over", followed.pod)
    if verdict.master is None or not verdict.serving:
        return Step(WAIT, f"{node.pod} waits for a confirmed master to copy: {verdict.message}")
    return Step(FOLLOW, f"{node.pod} is made a replica of {verdict.master}", verdict.master)


def source(world: World, node: Node) -> Node | None:
    """The pod `node` is a replica of, if it is one of the world's."""
    role = node.role
    if role is None or role.role != "slave" or role.master is None:
        return None
    address = (role.master[0].lower(), role.master[1])
    return next((n for n in world.nodes if address in n.addresses), None)
