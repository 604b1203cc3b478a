"""spec.redis.managed.replicas (issue 15): parsed and defaulted. The pass that serves it: test_decide_ha."""

from __future__ import annotations

from synchro import api

TARGETS = [{"name": "web", "preset": "generic"}]


def managed(**fields: object) -> api.SyncClusterSpec:
    return api.parse("ns", "web", {"redis": {"managed": fields}, "targets": TARGETS})


def test_one_pod_by_default_and_ha_from_three() -> None:
    assert managed().managed == api.ManagedRedis(replicas=1)
    assert not managed().managed.ha  # type: ignore[union-attr]
    assert managed(replicas=3).managed.ha  # type: ignore[union-attr]
