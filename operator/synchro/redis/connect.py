"""Reaching a SyncCluster's Redis from the operator, wherever the operator runs.

Cluster DNS is not assumed (the operator may run on a workstation or a node host with `make run`):
candidates are the Service's ClusterIP, then the ready EndpointSlice addresses, and for an external
Redis the host in its URL. The first that answers PING wins.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from synchro import api
from synchro.config import Config


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
    reason: str  # a condition reason: Reachable, Unreachable or AuthFailed
    message: str
    address: tuple[str, int] | None = None


def service_addresses(service: Mapping[str, Any] | None, slices: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Pure: ClusterIP first, then every ready endpoint, all on the Redis port."""
    found: list[tuple[str, int]] = []
    cluster_ip = (service or {}).get("spec", {}).get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        found.append((cluster_ip, api.REDIS_PORT))
    for s in slices:
        port = next((p.get("port") for p in s.get("ports") or [] if p.get("name") == "redis"), api.REDIS_PORT)
        for endpoint in s.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                found += [(a, int(port or api.REDIS_PORT)) for a in endpoint.get("addresses", [])]
    return found


def client_for(host: str, port: int, creds: Credentials, timeout: float) -> aioredis.Redis:
    kwargs: dict[str, Any] = {
        "host": host, "port": port, "db": creds.db, "username": creds.username, "password": creds.password,
        "socket_timeout": timeout, "socket_connect_timeout": timeout, "retry_on_timeout": False,
    }
    if creds.tls:
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED if creds.ca_pem else ssl.CERT_NONE
        if creds.ca_pem:
            kwargs["ssl_ca_data"] = creds.ca_pem
    return aioredis.Redis(**kwargs)


async def ping(addresses: Sequence[tuple[str, int]], creds: Credentials, config: Config,
               timeout: float = 1.5) -> PingResult:
    if not addresses:
        return PingResult(False, "Unreachable", "no address to reach Redis at yet")
    errors = []
    for host, port in addresses:
        if not config.may_connect(host):
            errors.append(f"{host}:{port}: outside SYNCHRO_REDIS_NETWORKS, not tried")
            continue
        r = client_for(host, port, creds, timeout)
        try:
            if await r.ping():
                return PingResult(True, "Reachable", f"PING answered at {host}:{port}", (host, port))
        except (AuthenticationError, ResponseError) as e:
            if "NOAUTH" in str(e) or "WRONGPASS" in str(e) or isinstance(e, AuthenticationError):
                return PingResult(False, "AuthFailed", f"{host}:{port} refused the credentials: {e}")
            errors.append(f"{host}:{port}: {e}")
        except (RedisError, OSError) as e:
            errors.append(f"{host}:{port}: {e or type(e).__name__}")
        finally:
            await r.aclose()
    return PingResult(False, "Unreachable", "; ".join(errors))
