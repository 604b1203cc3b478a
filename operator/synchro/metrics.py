"""Prometheus metrics on the operator's /metrics."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, start_http_server

PROBE_RTT = Histogram(
    "synchro_probe_rtt_seconds",
    "Round trip of a probe ping through Redis to an agent and back",
    ["namespace", "synccluster"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PODS_EXPECTED = Gauge("synchro_pods_expected", "Ready target pods the probe expects", ["namespace", "synccluster"])
PODS_HEALTHY = Gauge("synchro_pods_healthy", "Target pods that answer through Redis", ["namespace", "synccluster"])
RECONCILES = Counter("synchro_reconcile_total", "Reconcile passes", ["result"])
RECONCILE_SECONDS = Histogram("synchro_reconcile_duration_seconds", "Duration of one reconcile pass")
LEADER = Gauge("synchro_leader", "1 while this replica holds the Lease and reconciles, 0 while it stands by")


def serve(port: int) -> None:
    if port:
        start_http_server(port)


def forget(namespace: str, name: str) -> None:
    for gauge in (PODS_EXPECTED, PODS_HEALTHY):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)
