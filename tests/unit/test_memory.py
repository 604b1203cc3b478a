"""reconcile.Memory: which copy of an object a pass trusts, so that a settled pass makes no API call."""

from __future__ import annotations

from typing import Any

from synchro.reconcile import SETTLED_RESYNC_S, Memory


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


def test_a_managed_object_is_read_back_when_what_we_want_changes_or_the_resync_is_due() -> None:
    m = Memory()
    want, live = {"kind": "Service", "metadata": {"name": "r"}, "spec": {"ports": [1]}}, {"spec": {"clusterIP": "x"}}
    m.verify(want, live, now=100.0)
    assert m.recently_verified(want, now=101.0) is live
    assert m.recently_verified({**want, "spec": {"ports": [2]}}, now=101.0) is None
    assert m.recently_verified(want, now=100.0 + SETTLED_RESYNC_S + 1) is None
