"""Reaching a SyncCluster's Redis from the operator, wherever the operator runs.

Cluster DNS is not assumed (the operator may run on a workstation or a node host with `make run`):
candidates are the Service's ClusterIP, then the ready EndpointSlice addresses, and for an external
Redis the host in its URL. The first that answers PING wins.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

from synchro.conditions import Reason
from synchro.config import Config
from synchro.redis.model import Address, Credentials, PingResult

PING_REUSE_S = 1.0  # a PING answered this recently stands for every pass that asks the same Redis again
PingKey = tuple[tuple[Address, ...], Credentials, Config, float]
ClientKey = tuple[str, int, Credentials, float]


def client_for(host: str, port: int, creds: Credentials, timeout: float, retry: Retry | None = None) -> aioredis.Redis:
    """`retry`: redis-py's own retries of a failed command (None: its default)."""
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
    if retry is not None:  # it says what happens on a timeout too (redis-py 6 deprecates retry_on_timeout)
        kwargs["retry"] = retry
        del kwargs["retry_on_timeout"]
    if creds.tls:
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED if creds.ca_pem else ssl.CERT_NONE
        if creds.ca_pem:
            kwargs["ssl_ca_data"] = creds.ca_pem
    return aioredis.Redis(**kwargs)


class Connections:
    """The operator's connections to every Redis it checks, and its recent PING answers. The operator makes one
    (synchro.handlers, at startup) and every controller loop shares it; a test makes its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # the age of answers
        self._clients: dict[ClientKey, aioredis.Redis] = {}
        self._answered: dict[PingKey, tuple[float, PingResult]] = {}
        self._in_flight: dict[PingKey, asyncio.Future[PingResult]] = {}

    def shared_client(self, host: str, port: int, creds: Credentials, timeout: float) -> aioredis.Redis:
        """One pooled client per endpoint and credentials, kept across passes and SyncClusters: a pass then costs
        a PING on an open connection, not a TCP and AUTH handshake."""
        key = (host, port, creds, timeout)
        if key not in self._clients:
            self._clients[key] = client_for(host, port, creds, timeout)
        return self._clients[key]

    async def forget(self, host: str, port: int, creds: Credentials, timeout: float) -> None:
        client = self._clients.pop((host, port, creds, timeout), None)
        if client is not None:
            await client.aclose()

    async def forget_login(self, creds: Credentials) -> None:
        """Close every client that logged in with `creds`: Redis keeps a connection open after its password is
        rotated away, and the operator's own must not outlive the rotation."""
        for key in [key for key in self._clients if key[2] == creds]:
            await self._clients.pop(key).aclose()

    async def acl_setuser(
        self, address: Address, creds: Credentials, rules: Sequence[Sequence[str]], timeout: float = 1.5
    ) -> None:
        """`ACL SETUSER` each rule, as `creds`; an error raises (the pass is retried)."""
        client = self.shared_client(*address, creds, timeout)
        try:
            for rule in rules:
                await client.execute_command("ACL", "SETUSER", *rule)  # type: ignore[no-untyped-call]
        except (RedisError, OSError):
            await self.forget(*address, creds, timeout)
            raise

    async def ping(
        self, addresses: Sequence[Address], creds: Credentials, config: Config, timeout: float = 1.5
    ) -> PingResult:
        """PING the first address that answers. Passes that ask the same Redis at once share one PING, and an
        answer younger than PING_REUSE_S is reused: a burst of passes on one Redis then costs a PING a second, not
        one per pass. A failure is never reused, and it voids the last answer."""
        key: PingKey = (tuple(addresses), creds, config, timeout)
        answered = self._answered.get(key)
        if answered is not None and self.clock() - answered[0] < PING_REUSE_S:
            return answered[1]
        flight = self._in_flight.get(key)
        if flight is None:
            flight = self._in_flight[key] = asyncio.ensure_future(self._ping(addresses, creds, config, timeout))
            flight.add_done_callback(lambda _: self._in_flight.pop(key, None))
        result = await asyncio.shield(flight)
        if result.ok:
            self._answered[key] = (self.clock(), result)
        else:
            self._answered.pop(key, None)
        return result

    async def _ping(
        self, addresses: Sequence[Address], creds: Credentials, config: Config, timeout: float
    ) -> PingResult:
        if not addresses:
            return PingResult.unreachable("no address to reach Redis at yet")
        errors = []
        for host, port in addresses:
            if not config.may_connect(host):
                errors.append(f"{host}:{port}: outside SYNCHRO_REDIS_NETWORKS, not tried")
                continue
            r = self.shared_client(host, port, creds, timeout)
            try:
                if await r.ping():
                    return PingResult.answered((host, port))
            except (AuthenticationError, ResponseError) as e:
                await self.forget(host, port, creds, timeout)
                if "NOAUTH" in str(e) or "WRONGPASS" in str(e) or isinstance(e, AuthenticationError):
                    return PingResult(False, Reason.AUTH_FAILED, f"{host}:{port} refused the credentials: {e}")
                errors.append(f"{host}:{port}: {e}")
            except (RedisError, OSError) as e:
                await self.forget(host, port, creds, timeout)
                errors.append(f"{host}:{port}: {e or type(e).__name__}")
        return PingResult.unreachable("; ".join(errors))
