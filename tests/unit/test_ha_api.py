"""spec.redis.managed.replicas (issue 15): parsed, defaulted, and until the pass runs the HA builders, refused
as not served rather than served as one pod."""

from __future__ import annotations

from synchro import api, conditions
from synchro.conditions import Reason
from synchro.reconcile import decide

TARGETS = [{"name": "web", "preset": "generic"}]


def managed(**fields: object) -> api.SyncClusterSpec:
    return api.parse("ns", "web", {"redis": {"managed": fields}, "targets": TARGETS})


def test_one_pod_by_default_and_ha_from_three() -> None:
    assert managed().managed == api.ManagedRedis(replicas=1)
    assert not managed().managed.ha  # type: ignore[union-attr]
    assert managed(replicas=3).managed.ha  # type: ignore[union-attr]


def test_one_pod_is_served_as_before_and_three_are_refused_as_not_served_yet() -> None:
    assert decide.not_served(managed()) is None
    assert decide.not_served(api.parse("ns", "web", {"targets": TARGETS})) is None
    refused = decide.not_served(managed(replicas=3))
    assert refused is not None and refused.fields == {} and refused.probe is None
    [ready] = refused.conditions
    assert (ready.type, ready.status, ready.reason) == (conditions.READY, False, Reason.INVALID_SPEC)
    assert ready.message.startswith("spec.redis.managed.replicas: 3 ")
