"""Pure: a SyncCluster's status as a terminal page, with the who-hears-whom matrix (`synchro status NAME`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render(body: Mapping[str, Any]) -> str:
    status = body.get("status") or {}
    meta = body.get("metadata") or {}
    lines = [f"SyncCluster {meta.get('namespace')}/{meta.get('name')}", ""]
    for c in status.get("conditions") or []:
        lines.append(f"  {c['type']:<16} {c['status']:<6} {c.get('reason', ''):<18} {c.get('message', '')}")
    probe = status.get("probe") or {}
    if not probe:
        lines += ["", "no probe result yet"]
        return "\n".join(lines)
    rtt = probe.get("rttMillis") or {}
    lines += [
        "",
        f"probe at {probe.get('lastProbeTime')}: {probe.get('healthy')}/{probe.get('expected')} healthy, "
        f"rtt p50 {rtt.get('p50')} ms, p99 {rtt.get('p99')} ms",
    ]
    bad = {u["pod"]: u["reason"] for u in probe.get("unhealthy") or []}
    hears: Mapping[str, list[str]] = probe.get("hears") or {}
    pods = sorted(set(hears) | set(bad))
    if not pods:
        return "\n".join(lines)
    width = max(len(p) for p in pods)
    lines += ["", "who hears whom (row hears column):", " " * (width + 2) + " ".join(str(i) for i in range(len(pods)))]
    for i, p in enumerate(pods):
        row = " ".join("." if p == q else ("x" if q in hears.get(p, []) else " ") for q in pods)
        lines.append(f"{p:<{width}}  {row}   {i} {bad.get(p, 'ok')}")
    groups = probe.get("groups") or []
    if len(groups) > 1:
        lines += ["", "groups: " + " | ".join(" ".join(g) for g in groups)]
    return "\n".join(lines)
