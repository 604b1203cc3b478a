"""Reaching a SyncCluster's Redis from the operator, wherever the operator runs.

Cluster DNS is not assumed (the operator may run on a workstation or a node host with `make run`):
candidates are the Service's ClusterIP, then the ready EndpointSlice addresses, and for an external
Redis the host in its URL. The first that answers PING wins.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

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
        "host": host,
        "port": port,
        "db": creds.db,
        "username": creds.username,
        "password": creds.password,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),  # one round trip less per connect
    }
    if creds.tls:
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED if creds.ca_pem else ssl.CERT_NONE
        if creds.ca_pem:
            kwargs["ssl_ca_data"] = creds.ca_pem
    return aioredis.Redis(**kwargs)


_shared: dict[tuple[str, int, Credentials, float], aioredis.Redis] = {}


def shared_client(host: str, port: int, creds: Credentials, timeout: float) -> aioredis.Redis:
    """One pooled client per endpoint and credentials, kept across passes and SyncClusters: a pass then costs
    a PING on an open connection, not a TCP and AUTH handshake."""
    key = (host, port, creds, timeout)
    if key not in _shared:
        _shared[key] = client_for(host, port, creds, timeout)
    return _shared[key]


async def forget(host: str, port: int, creds: Credentials, timeout: float) -> None:
    client = _shared.pop((host, port, creds, timeout), None)
    if client is not None:
        await client.aclose()


PING_REUSE_S = 1.0  # a PING answered this recently stands for every pass that asks the same Redis again
PingKey = tuple[tuple[tuple[str, int], ...], Credentials, Config, float]
_answered: dict[PingKey, tuple[float, PingResult]] = {}
_in_flight: dict[PingKey, asyncio.Future[PingResult]] = {}
_clock = time.monotonic  # the age of answers (tests set their own)


async def ping(
    addresses: Sequence[tuple[str, int]], creds: Credentials, config: Config, timeout: float = 1.5
) -> PingResult:
    """PING the first address that answers. Passes that ask the same Redis at once share one PING, and an
    answer younger than PING_REUSE_S is reused: a burst of passes on one Redis then costs a PING a second, not
    one per pass. A failure is never reused, and it voids the last answer."""
    key: PingKey = (tuple(addresses), creds, config, timeout)
    answered = _answered.get(key)
    if answered is not None and _clock() - answered[0] < PING_REUSE_S:
        return answered[1]
    flight = _in_flight.get(key)
    if flight is None:
        flight = _in_flight[key] = asyncio.ensure_future(_ping(addresses, creds, config, timeout))
        flight.add_done_callback(lambda _: _in_flight.pop(key, None))
    result = await asyncio.shield(flight)
    if result.ok:
        _answered[key] = (_clock(), result)
    else:
        _answered.pop(key, None)
    return result


async def _ping(addresses: Sequence[tuple[str, int]], creds: Credentials, config: Config, timeout: float) -> PingResult:
    if not addresses:
        return PingResult(False, "Unreachable", "no address to reach Redis at yet")
    errors = []
    for host, port in addresses:
        if not config.may_connect(host):
            errors.append(f"{host}:{port}: outside SYNCHRO_REDIS_NETWORKS, not tried")
            continue
        r = shared_client(host, port, creds, timeout)
        try:
            if await r.ping():
                return PingResult(True, "Reachable", f"PING answered at {host}:{port}", (host, port))
        except (AuthenticationError, ResponseError) as e:
            await forget(host, port, creds, timeout)
            if "NOAUTH" in str(e) or "WRONGPASS" in str(e) or isinstance(e, AuthenticationError):
                return PingResult(False, "AuthFailed", f"{host}:{port} refused the credentials: {e}")
            errors.append(f"{host}:{port}: {e}")
        except (RedisError, OSError) as e:
            await forget(host, port, creds, timeout)
            errors.append(f"{host}:{port}: {e or type(e).__name__}")
    return PingResult(False, "Unreachable", "; ".join(errors))
