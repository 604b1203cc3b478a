"""A managed Redis being re-created has no address at all: the probe must say RedisUnavailable about the rolled-out
pods, not fall back to WaitingForRollout as if it had never started."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from synchro import api, conditions, presets
from synchro.config import Config
from synchro.controller import Prober
from synchro.probe import checker, verdict
from synchro.probe.checker import PodRecord
from synchro.reconcile import Sources, decide
from synchro.reconcile.model import RedisState, TargetState
from synchro.redis.connect import Connections
from synchro.redis.model import Credentials

SPEC = api.parse(
    "ns",
    "web",
    {"replicas": 2, "targets": [{"name": "web", "preset": "generic"}], "probe": {"interval": "2s", "timeout": "1s"}},
)
WAITING = "waiting for the Redis pod of Deployment web-redis to be ready"


def recreating_redis() -> RedisState:
    """What a pass sees while the managed Redis pod is being replaced: an endpoint, but no address or creds."""
    return RedisState(
        conditions.Condition(conditions.REDIS_READY, False, conditions.Reason.PROVISIONING, WAITING),
        presets.Endpoint(host="web-redis.ns.svc", prefix="ns.web"),
        "web-redis.ns.svc:6379",
    )


def rolled_out() -> tuple[TargetState, ...]:
    return (TargetState("Deployment", "web", config_hash="h1", rolled_out_hash="h1", replicas=2, ready_replicas=2),)


def test_a_rolled_out_cluster_keeps_a_probe_plan_while_its_redis_has_no_address() -> None:
    plan = decide.probe_plan(SPEC, recreating_redis(), rolled_out())
    assert plan is not None
    assert (plan.address, plan.creds, plan.unavailable, plan.ready_pods) == (None, None, WAITING, 2)


def probe_verdict(redis: RedisState, config: Config) -> verdict.Verdict | None:
    plan = decide.probe_plan(SPEC, redis, rolled_out())
    assert plan is not None
    pods = [PodRecord(p, True, "h1", None, None, None, None) for p in ("web-a", "web-b")]
    sources = Sources(None, config, Connections(), {}, pods=lambda *_: pods)  # type: ignore[arg-type]
    prober = Prober(sources, ("ns", "web"))
    asyncio.run(prober.probe(plan))
    return prober.verdict


def test_the_probe_reports_redis_unavailable_without_an_address() -> None:
    v = probe_verdict(recreating_redis(), Config())
    assert v is not None and (v.ok, v.reason) == (False, "RedisUnavailable")
    assert v.unhealthy == (("web-a", "RedisUnavailable"), ("web-b", "RedisUnavailable"))
    assert WAITING in v.message


def test_the_probe_never_connects_outside_the_allowed_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed PING leaves the Service's ClusterIP as the address; outside SYNCHRO_REDIS_NETWORKS the probe must
    not open a connection there either."""

    async def observe(*args: object) -> verdict.Observation:
        raise AssertionError(f"the probe connected to {args[0]}")

    monkeypatch.setattr(checker, "observe", observe)
    unreachable = "10.96.0.7:6379: outside SYNCHRO_REDIS_NETWORKS, not tried; 10.244.4.9:6379: Connection refused"
    redis = RedisState(
        conditions.Condition(conditions.REDIS_READY, False, "Unreachable", unreachable),
        presets.Endpoint(host="web-redis.ns.svc", prefix="ns.web"),
        "web-redis.ns.svc:6379",
        address=("10.96.0.7", 6379),
        creds=Credentials(None, "pw", 0, False),
    )
    v = probe_verdict(redis, Config(redis_networks=(ipaddress.ip_network("127.0.0.0/8"),)))
    assert v is not None and v.reason == "RedisUnavailable" and unreachable in v.message
