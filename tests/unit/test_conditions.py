"""Which condition transitions post an event: the ones a person wants to read in `kubectl describe`."""

from __future__ import annotations

from typing import Any

from synchro.conditions import READY, Condition, Reason, worth_an_event

REDIS, ROLLOUT, PUBSUB = "RedisReady", "RolloutComplete", "PubSubHealthy"


def was(*conds: tuple[str, bool, str]) -> list[dict[str, Any]]:
    return [{"type": t, "status": "True" if s else "False", "reason": r} for t, s, r in conds]


def types(before: list[dict[str, Any]], after: list[Condition]) -> list[tuple[str, str]]:
    return [(c.type, c.reason) for c in worth_an_event(before, after)]


def test_a_bring_up_posts_one_event_ready() -> None:
    first = [
        Condition(REDIS, True, Reason.REDIS_REACHABLE, ""),
        Condition(ROLLOUT, False, Reason.SCALE_HELD, ""),
        Condition(READY, False, Reason.SCALE_HELD, ""),
    ]
    assert types([], first) == []
    before = was(
        (REDIS, True, Reason.REDIS_REACHABLE), (ROLLOUT, False, Reason.SCALE_HELD), (READY, False, Reason.SCALE_HELD)
    )
    after = [
        Condition(REDIS, True, Reason.REDIS_REACHABLE, ""),
        Condition(ROLLOUT, False, Reason.ROLLING_OUT, ""),
        Condition(READY, False, Reason.ROLLING_OUT, ""),
    ]
    assert types(before, after) == []
    done = [
        Condition(REDIS, True, Reason.REDIS_REACHABLE, ""),
        Condition(ROLLOUT, True, Reason.ROLLED_OUT, ""),
        Condition(READY, True, Reason.READY, ""),
    ]
    assert types(was((READY, False, Reason.ROLLING_OUT)), done) == [(READY, Reason.READY)]
    assert types([], done) == [(READY, Reason.READY)]  # Ready at the first look is still told


def test_ready_turning_false_for_a_new_rollout_is_told() -> None:
    before = was((ROLLOUT, True, Reason.ROLLED_OUT), (READY, True, Reason.READY))
    after = [Condition(ROLLOUT, False, Reason.ROLLING_OUT, ""), Condition(READY, False, Reason.ROLLING_OUT, "")]
    assert types(before, after) == [(READY, Reason.ROLLING_OUT)]


def test_a_problem_and_its_end_each_post_an_event() -> None:
    healthy = was((PUBSUB, True, "AllPodsHealthy"), (READY, True, Reason.READY))
    split = [Condition(PUBSUB, False, "SplitBrain", ""), Condition(READY, False, "SplitBrain", "")]
    assert types(healthy, split) == [(PUBSUB, "SplitBrain"), (READY, "SplitBrain")]
    # Recovery while Ready stays False for another reason is still told.
    before = was((PUBSUB, False, "SplitBrain"), (ROLLOUT, False, Reason.ROLLING_OUT), (READY, False, "RollingOut"))
    after = [
        Condition(PUBSUB, True, "AllPodsHealthy", ""),
        Condition(ROLLOUT, False, Reason.ROLLING_OUT, ""),
        Condition(READY, False, Reason.ROLLING_OUT, ""),
    ]
    assert types(before, after) == [(PUBSUB, "AllPodsHealthy")]


def test_nothing_changed_posts_nothing_and_a_new_problem_reason_posts_again() -> None:
    before = was((REDIS, False, Reason.UNREACHABLE), (READY, False, Reason.UNREACHABLE))
    same = [
        Condition(REDIS, False, Reason.UNREACHABLE, "other message"),
        Condition(READY, False, Reason.UNREACHABLE, ""),
    ]
    assert types(before, same) == []
    auth = [Condition(REDIS, False, Reason.AUTH_FAILED, ""), Condition(READY, False, Reason.AUTH_FAILED, "")]
    assert types(before, auth) == [(REDIS, Reason.AUTH_FAILED), (READY, Reason.AUTH_FAILED)]


def test_first_status_posts_problems_and_ready_but_not_progress() -> None:
    after = [
        Condition(REDIS, False, Reason.PROVISIONING, ""),
        Condition("ConfigInjected", False, "TargetNotFound", ""),
        Condition(READY, False, Reason.PROVISIONING, ""),
    ]
    assert types([], after) == [("ConfigInjected", "TargetNotFound")]
    invalid = [Condition(READY, False, Reason.INVALID_SPEC, "")]  # Ready's own problem, and its end
    assert types([], invalid) == [(READY, Reason.INVALID_SPEC)]
    assert types(was((READY, False, Reason.INVALID_SPEC)), [Condition(READY, False, Reason.ROLLING_OUT, "")]) == [
        (READY, Reason.ROLLING_OUT)
    ]


def test_the_documented_condition_table_names_every_reason() -> None:
    """conditions.Reason is the one list of reasons; docs/synccluster.md must not fall behind it."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "synccluster.md").read_text()
    reasons = {v for k, v in vars(Reason).items() if k.isupper()} - {Reason.REDIS_NOT_READY}  # shown in a message
    assert sorted(r for r in reasons if f"`{r}`" not in doc) == []
