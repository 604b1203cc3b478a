"""Pure: what the probe saw in, the PubSubHealthy verdict out. Which pods are healthy, and why the rest are not."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro.conditions import Reason

# Per-pod reasons in status.probe.unhealthy
NO_REPLY = "NoReply"  # the agent did not answer the operator's ping in time
STALE_CONFIG = "StaleConfig"  # the pod runs an older injected config than the one desired
APP_NOT_SUBSCRIBED = "AppNotSubscribed"  # the pod's agent answers, but no app connection from its IP subscribes
ISOLATED = "Isolated"  # the pod answers, but it is not in the largest group that hears each other


@dataclass(frozen=True)
class Pod:
    name: str
    stale: bool = False  # its synchro.dev/config-hash is not what its target should run
    ip: str | None = None


@dataclass(frozen=True)
class Observation:
    redis_error: str | None = None
    pongs: Mapping[str, float] = field(default_factory=dict)  # pod -> round trip, seconds
    views: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # pod -> {peer: unix time heard}
    subscribers: Mapping[str, int] = field(default_factory=dict)  # app channel -> PUBSUB NUMSUB
    expected_subscribers: Mapping[str, int] = field(default_factory=dict)  # app channel -> processes expected
    elsewhere: Mapping[str, str] = field(default_factory=dict)  # pod -> another Redis its agent is alive on
    # IPs of the app's own pub/sub connections (CLIENT LIST, agents left out); None when not checked, e.g. an
    # external Redis that sees the nodes' addresses instead of the pods'.
    app_subscriber_ips: frozenset[str] | None = None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    message: str
    expected: int
    healthy: tuple[str, ...]
    unhealthy: tuple[tuple[str, str], ...]
    groups: tuple[tuple[str, ...], ...]
    hears: Mapping[str, tuple[str, ...]]
    rtt_ms: Mapping[str, float]

    def status(self, probe_time: str) -> dict[str, Any]:
        rtts = sorted(self.rtt_ms.values())
        return {
            "lastProbeTime": probe_time,
            "expected": self.expected,
            "healthy": len(self.healthy),
            "rttMillis": {
                "p50": round(statistics.median(rtts), 3) if rtts else None,
                "p99": round(rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 3) if rtts else None,
            },
            "unhealthy": [{"pod": p, "reason": r} for p, r in self.unhealthy],
            "groups": [list(g) for g in self.groups],
            "hears": {p: list(peers) for p, peers in self.hears.items()},
        }


def judge(pods: Sequence[Pod], seen: Observation) -> Verdict:
    """A pod that answers the operator's ping through the cluster's Redis takes part in its pub/sub: that is the
    main group. A pod whose agent is alive on another Redis (seen.elsewhere) is a group of its own kind."""
    names = sorted(p.name for p in pods)
    hears = {p: tuple(sorted(q for q in seen.views.get(p, {}) if q in names)) for p in names}
    rtt_ms = {p: round(s * 1000, 3) for p, s in seen.pongs.items() if p in names}
    if seen.redis_error is not None:
        message = f"the probe cannot reach Redis: {seen.redis_error}"
        every = tuple((p, Reason.REDIS_UNAVAILABLE) for p in names)
        return Verdict(False, Reason.REDIS_UNAVAILABLE, message, len(names), (), every, (), hears, {})
    unhealthy = unhealthy_pods(pods, seen)
    groups = hearing_groups(names, seen)
    if len(groups) > 1:
        for group in groups[1:]:
            for p in group:
                unhealthy[p] = ISOLATED
        named = " | ".join(" ".join(g) for g in groups)
        return _verdict(
            Reason.SPLIT_BRAIN,
            f"{len(groups)} groups do not hear each other: {named}",
            names,
            unhealthy,
            groups,
            hears,
            rtt_ms,
        )
    short = {ch: n for ch, n in seen.subscribers.items() if n < seen.expected_subscribers.get(ch, 0)}
    if unhealthy or short:
        parts = [f"{p} ({r})" for p, r in sorted(unhealthy.items())]
        parts += [
            f"app channel {ch} has {n} subscriber(s), expected {seen.expected_subscribers[ch]}"
            for ch, n in sorted(short.items())
        ]
        return _verdict(Reason.PODS_UNREACHABLE, "; ".join(parts), names, unhealthy, groups, hears, rtt_ms)
    return _verdict(
        Reason.ALL_PODS_HEALTHY,
        f"all {len(names)} pod(s) answer through Redis",
        names,
        unhealthy,
        groups,
        hears,
        rtt_ms,
    )


def unhealthy_pods(pods: Sequence[Pod], seen: Observation) -> dict[str, str]:
    """Each pod that fails on its own, with why: a stale config, no answer, or no app subscription from its IP."""
    unhealthy: dict[str, str] = {}
    for pod in pods:
        if pod.stale:
            unhealthy[pod.name] = STALE_CONFIG
        elif pod.name not in seen.pongs:
            unhealthy[pod.name] = NO_REPLY
        elif seen.app_subscriber_ips is not None and pod.ip and pod.ip not in seen.app_subscriber_ips:
            unhealthy[pod.name] = APP_NOT_SUBSCRIBED
    return unhealthy


def hearing_groups(names: Sequence[str], seen: Observation) -> tuple[tuple[str, ...], ...]:
    """The pods that answered through this Redis, then one group per other Redis that silent pods are alive on."""
    by_endpoint: dict[str, list[str]] = {}
    for p in names:
        if p not in seen.pongs and p in seen.elsewhere:
            by_endpoint.setdefault(seen.elsewhere[p], []).append(p)
    main = tuple(p for p in names if p in seen.pongs)
    return tuple(g for g in (main, *(tuple(v) for _, v in sorted(by_endpoint.items()))) if g)


def _verdict(
    reason: str,
    message: str,
    names: Sequence[str],
    unhealthy: Mapping[str, str],
    groups: Sequence[tuple[str, ...]],
    hears: Mapping[str, tuple[str, ...]],
    rtt_ms: Mapping[str, float],
) -> Verdict:
    return Verdict(
        reason == Reason.ALL_PODS_HEALTHY,
        reason,
        message,
        len(names),
        tuple(p for p in names if p not in unhealthy),
        tuple(sorted(unhealthy.items())),
        tuple(groups),
        hears,
        rtt_ms,
    )
