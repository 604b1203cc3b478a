"""reconcile.Memory: which copy of an object a pass trusts, so that a settled pass makes no API call."""

from __future__ import annotations

from typing import Any

from synchro import api
from synchro.reconcile import SETTLED_RESYNC_S, Memory, decide
from synchro.reconcile.model import ManagedSeen


def obj(rv: str, replicas: int = 1, kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "web", "resourceVersion": rv},
        "spec": {"replicas": replicas},
    }


def test_the_cache_is_trusted_once_it_moves_past_our_own_write() -> None:
    m = Memory()
    before, answer = obj("10"), obj("11", replicas=2)
    m.applied[("Deployment", "web")] = ("10", answer)
    assert m.freshest("Deployment", "web", before) is answer  # the watch has not delivered our write yet
    later = obj("12", replicas=3)  # someone (or the controller-manager) wrote after us
    assert m.freshest("Deployment", "web", later) is later
    assert ("Deployment", "web") not in m.applied
    assert m.freshest("Deployment", "web", before) is before  # forgotten: nothing stale comes back


def test_a_managed_object_is_read_back_when_the_resync_is_due_and_a_new_want_is_applied_at_once() -> None:
    m = Memory()
    live = {"kind": "Service", "metadata": {"name": "r"}, "spec": {"ports": [1], "clusterIP": "x"}}
    m.remember(live, now=100.0)
    assert m.recently_seen("Service", "r", now=101.0) is live
    assert m.recently_seen("Service", "r", now=100.0 + SETTLED_RESYNC_S + 1) is None
    # What Synchro wants changed while the copy is fresh: decide compares with that copy and writes at once.
    spec = api.parse("ns", "web", {"targets": [{"name": "web", "preset": "generic"}]})
    body = {"metadata": {"name": "web", "uid": "u1"}}
    seen = ManagedSeen({"metadata": {"uid": "s1"}, "data": {}}, {("Service", "web-redis"): live})
    assert "Service" in [w.obj["kind"] for w in decide.managed_writes(spec, body, seen)]
