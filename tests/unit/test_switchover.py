"""redis/switchover.py, table-driven: the order in which a Redis with replicas moves to a new pod template, so that
the master moves once, to an updated pod, and nothing is deleted while a replica is out of sync."""

from __future__ import annotations

import pytest

from synchro.redis.failover import Pod, Verdict
from synchro.redis.switchover import ASK_AGAIN_AFTER_S, Step, step

NEW, OLD = "rev-new", "rev-old"


def pods(*revisions: str, unready: tuple[int, ...] = ()) -> tuple[Pod, ...]:
    return tuple(
        Pod(f"r-{i}", (f"10.0.0.{i}", 6379), (f"10.0.0.{i}", 26379), frozenset(), revision=rev, ready=i not in unready)
        for i, rev in enumerate(revisions)
    )


def serving(master: str | None = "r-0", wait: bool = False) -> Verdict:
    return Verdict(master, (), wait, (), (), None, "")


CASES: dict[str, tuple[tuple[Pod, ...], Verdict, bool, float | None, Step | None]] = {
    # name: (pods, verdict, every replica in sync, since a failover was asked, the step)
    "every pod on the new template": (pods(NEW, NEW, NEW), serving(), True, None, None),
    "the highest replica first": (pods(OLD, OLD, OLD), serving(), True, None, Step(delete="r-2")),
    "then the next replica": (pods(OLD, OLD, NEW), serving(), True, None, Step(delete="r-1")),
    "the master last: one failover": (pods(OLD, NEW, NEW), serving(), True, None, Step(failover=True)),
    "asked, not done yet: not asked again": (pods(OLD, NEW, NEW), serving(), True, 5.0, Step()),
    "asked long ago: asked again": (pods(OLD, NEW, NEW), serving(), True, ASK_AGAIN_AFTER_S, Step(failover=True)),
    "the old master is a replica now": (pods(OLD, NEW, NEW), serving("r-1"), True, 5.0, Step(delete="r-0")),
    "a replica out of sync: nothing": (pods(OLD, OLD, NEW), serving(), False, None, Step()),
    "a pod not ready: nothing": (pods(OLD, OLD, NEW, unready=(2,)), serving(), True, None, Step()),
    "failing over: nothing": (pods(OLD, OLD, OLD), serving(wait=True), True, None, Step()),
    "no master: nothing": (pods(OLD, OLD, OLD), serving(None), True, None, Step()),
}


@pytest.mark.parametrize("name", CASES)
def test_one_step_per_pass(name: str) -> None:
    found_pods, verdict, in_sync, since, expected = CASES[name]
    found = step(NEW, found_pods, verdict, in_sync, since)
    if expected is None:
        assert found is None
        return
    assert found is not None and found.message
    assert (found.delete, found.failover) == (expected.delete, expected.failover)


def test_an_update_of_three_pods_moves_the_master_exactly_once() -> None:
    """Played to the end: each delete makes the pod again on the new template, the failover moves the master to
    an updated replica; the master changes once."""
    revisions = {"r-0": OLD, "r-1": OLD, "r-2": OLD}
    master, moves = "r-1", 0
    for _ in range(10):
        found = step(NEW, pods(*revisions.values()), serving(master), True, None)
        if found is None:
            break
        if found.delete:
            assert found.delete != master
            revisions[found.delete] = NEW
        if found.failover:
            master = next(p for p, rev in revisions.items() if rev == NEW and p != master)
            moves += 1
    assert set(revisions.values()) == {NEW} and moves == 1 and revisions[master] == NEW


def test_the_failover_is_asked_only_of_sentinels_out_of_tilt_mode() -> None:
    """A Sentinel in TILT mode takes SENTINEL FAILOVER and carries it out only when it leaves TILT, up to 30 s later
    (seen on the real node: the first ask of a grow waited 28 s). The others are asked; with none, nobody is."""
    last = pods(OLD, NEW, NEW)
    found = step(NEW, last, serving(), True, None)
    assert found is not None and found.failover and found.ask == ("r-0", "r-1", "r-2")
    some = step(NEW, last, serving(), True, None, frozenset({"r-0", "r-2"}))
    assert some is not None and some.failover and some.ask == ("r-1",)
    every = step(NEW, last, serving(), True, None, frozenset({"r-0", "r-1", "r-2"}))
    assert every is not None and not every.failover and every.ask == () and "TILT" in every.message
