"""Pure: how the operator names a Redis it talks to, what a PING told it, and where a Service's Redis answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synchro import api
from synchro.conditions import Reason

Address = tuple[str, int]  # (host, port)


@dataclass(frozen=True)
class Credentials:
    username: str | None
    password: str | None
    db: int
    tls: bool
    ca_pem: str | None = None


@dataclass(frozen=True)
class PingResult:
    ok: bool
    reason: str  # a RedisReady reason: Reason.REDIS_REACHABLE, UNREACHABLE or AUTH_FAILED
    message: str
    address: Address | None = None

    @classmethod
    def answered(cls, address: Address) -> PingResult:
        return cls(True, Reason.REDIS_REACHABLE, f"PING answered at {address[0]}:{address[1]}", address)

    @classmethod
    def unreachable(cls, message: str) -> PingResult:
        return cls(False, Reason.UNREACHABLE, message)


def service_addresses(service: Mapping[str, Any] | None, slices: Sequence[Mapping[str, Any]]) -> list[Address]:
    """ClusterIP first, then every ready endpoint, all on the Redis port."""
    found: list[Address] = []
    cluster_ip = (service or {}).get("spec", {}).get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        found.append((cluster_ip, api.REDIS_PORT))
    for s in slices:
        port = next((p.get("port") for p in s.get("ports") or [] if p.get("name") == "redis"), api.REDIS_PORT)
        for endpoint in s.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                found += [(a, int(port or api.REDIS_PORT)) for a in endpoint.get("addresses", [])]
    return found


def ready_ips(slices: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """Every address a Service's EndpointSlices list as ready: where its traffic goes now."""
    return frozenset(
        a
        for s in slices
        for endpoint in s.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready", True)
        for a in endpoint.get("addresses", [])
    )
