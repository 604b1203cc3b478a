"""The operator's side of the probe: ping every agent through Redis, read their views, count the app's own
subscribers, and look for agents that are alive on some other Redis. Returns an Observation for `verdict`."""

from __future__ import annotations

import asyncio
import datetime
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.exceptions import RedisError

from synchro import api, presets
from synchro.config import Config
from synchro.probe import protocol
from synchro.probe.protocol import Message
from synchro.probe.verdict import Observation
from synchro.redis import connect
from synchro.redis.model import Credentials

SecretLookup = Callable[[str, str], Awaitable[str | None]]  # (secret name, key) -> value
# (namespace, service) -> its ClusterIP and its ready endpoints: from outside the cluster only the latter answer
ServiceLookup = Callable[[str, str], Awaitable[tuple[str | None, list[tuple[str, int]]]]]
# A sidecar that just (re)started shows Ready before its agent has subscribed: it is judged after this long.
STARTUP_GRACE_S = 10.0
_SERVICE_HOST = re.compile(r"^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?$")


@dataclass(frozen=True)
class PodRecord:
    """What the probe needs of one target pod, read from its object (kept in a kopf index)."""

    name: str
    ready: bool
    config_hash: str | None
    ip: str | None
    probe_url: str | None  # SYNCHRO_PROBE_URL as written in the pod spec ($(VAR) references unresolved)
    probe_prefix: str | None
    password_ref: tuple[str, str] | None  # the Secret (name, key) behind SYNCHRO_REDIS_PASSWORD
    probe_started: str | None = None  # when the synchro-probe container last started (RFC 3339)

    def settled(self, now: datetime.datetime, grace_s: float = STARTUP_GRACE_S) -> bool:
        """Ready, and its agent has had time to subscribe since the sidecar last started."""
        if not self.ready:
            return False
        if not self.probe_started:
            return True
        started = datetime.datetime.fromisoformat(self.probe_started.replace("Z", "+00:00"))
        return (now - started).total_seconds() >= grace_s


def pod_record(body: Mapping[str, Any]) -> PodRecord:
    meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status", {})
    probe: Mapping[str, Any] = next((c for c in spec.get("containers", []) if c.get("name") == protocol.CONTAINER), {})
    env = {e["name"]: e for e in probe.get("env") or []}
    ref = ((env.get(presets.PASSWORD_VAR) or {}).get("valueFrom") or {}).get("secretKeyRef")
    ready = not meta.get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    probe_status: Mapping[str, Any] = next(
        (c for c in status.get("containerStatuses") or [] if c.get("name") == protocol.CONTAINER), {}
    )
    return PodRecord(
        name=meta["name"],
        ready=bool(ready),
        config_hash=(meta.get("annotations") or {}).get(api.CONFIG_HASH_ANNOTATION),
        ip=status.get("podIP"),
        probe_url=(env.get(protocol.URL_VAR) or {}).get("value"),
        probe_prefix=(env.get(protocol.PREFIX_VAR) or {}).get("value"),
        password_ref=(ref["name"], ref["key"]) if ref else None,
        probe_started=((probe_status.get("state") or {}).get("running") or {}).get("startedAt"),
    )


async def ping_agents(client: Any, prefix: str, expected: Sequence[str], timeout_s: float) -> dict[str, float]:
    """Publish one ping; collect pongs until every expected pod answered or the timeout passed."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(protocol.pong_channel(prefix))
    try:
        ping = Message("ping", "operator", uuid.uuid4().hex, time.monotonic())
        await client.publish(protocol.probe_channel(prefix), ping.encode())
        pongs: dict[str, float] = {}
        deadline = ping.sent + timeout_s
        while len(pongs) < len(expected) and (left := deadline - time.monotonic()) > 0:
            raw = await pubsub.get_message(timeout=left)
            msg = Message.decode(raw["data"]) if raw else None
            if msg and msg.kind == "pong" and msg.id == ping.id:
                pongs[msg.sender] = time.monotonic() - ping.sent
        return pongs
    finally:
        await pubsub.aclose()


async def read_views(client: Any, prefix: str, pods: Sequence[str]) -> dict[str, dict[str, float]]:
    async with client.pipeline(transaction=False) as pipe:
        for pod in pods:
            pipe.hgetall(protocol.view_key(prefix, pod))
        raw = await pipe.execute()
    views = {}
    for pod, fields in zip(pods, raw, strict=True):
        if fields:
            views[pod] = {k.decode(): float(v) for k, v in fields.items() if k.decode() != protocol.ALIVE_FIELD}
    return views


async def count_subscribers(client: Any, channels: Sequence[str], legacy: Mapping[str, str]) -> dict[str, int]:
    """PUBSUB NUMSUB of each app channel; where older releases of the app use another channel, the larger count."""
    if not channels:
        return {}
    asked = [*channels, *(legacy[ch] for ch in channels if ch in legacy)]
    result = await client.pubsub_numsub(*asked)
    return fold_legacy({(ch.decode() if isinstance(ch, bytes) else ch): int(n) for ch, n in result}, channels, legacy)


def fold_legacy(counts: Mapping[str, int], channels: Sequence[str], legacy: Mapping[str, str]) -> dict[str, int]:
    """Pure: each app channel's count, or its legacy channel's if that is larger. The legacy channel carries no
    namespace, so on a Redis shared by several SyncClusters it may count their pods too: a weaker check, but
    not a false alarm for an app that cannot be told its namespace."""
    return {ch: max(counts.get(ch, 0), counts.get(legacy[ch], 0) if ch in legacy else 0) for ch in channels}


def app_subscriber_ips(clients: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """Pure: source IPs of pub/sub connections that are not a probe agent's, from CLIENT LIST entries."""
    found = set()
    for c in clients:
        if c.get("name") == protocol.CLIENT_NAME:
            continue
        if int(c.get("sub", 0) or 0) + int(c.get("psub", 0) or 0) + int(c.get("ssub", 0) or 0) > 0:
            found.add(str(c.get("addr", "")).rsplit(":", 1)[0])
    return frozenset(found)


async def alive_elsewhere(
    pods: Sequence[PodRecord],
    desired_url: str,
    namespace: str,
    secret: SecretLookup,
    service: ServiceLookup,
    config: Config,
) -> dict[str, str]:
    """Pods whose agent was given another Redis and is alive there (its view key exists). A Service is tried
    at its ClusterIP, then at its endpoints, as the operator reaches its own Redis."""
    found: dict[str, str] = {}
    for pod in pods:
        if not pod.probe_url or pod.probe_url == desired_url or not pod.probe_prefix:
            continue
        password = await secret(*pod.password_ref) if pod.password_ref else None
        parts = urlsplit(pod.probe_url)
        port = parts.port or api.REDIS_PORT
        addresses = [(parts.hostname or "", port)]
        if match := _SERVICE_HOST.match(addresses[0][0]):
            cluster_ip, endpoints = await service(match.group(2), match.group(1))
            addresses = [(cluster_ip, port)] if cluster_ip else addresses
            addresses += endpoints
        db = int(parts.path.strip("/") or 0)
        creds = Credentials(unquote(parts.username) if parts.username else None, password, db, parts.scheme == "rediss")
        for host, host_port in addresses:
            if not config.may_connect(host):
                continue
            client = connect.client_for(host, host_port, creds, 1.5)
            try:
                if await client.exists(protocol.view_key(pod.probe_prefix, pod.name)):
                    found[pod.name] = f"{parts.hostname}:{port}/{db}"
                break  # that Redis answered
            except (RedisError, OSError):
                continue
            finally:
                await client.aclose()
    return found


async def observe(
    address: tuple[str, int],
    creds: Credentials,
    prefix: str,
    expected: Sequence[str],
    timeout_s: float,
    expected_subscribers: Mapping[str, int],
    check_addresses: bool,
    legacy_channels: Mapping[str, str] | None = None,
) -> Observation:
    """`check_addresses`: Redis sees the pods' own IPs (it runs in the cluster), so CLIENT LIST can name a pod
    whose app holds no subscription."""
    client = connect.client_for(*address, creds, timeout=max(timeout_s, 1.0))
    try:
        pongs, views, subscribers = await asyncio.gather(
            ping_agents(client, prefix, expected, timeout_s),
            read_views(client, prefix, expected),
            count_subscribers(client, list(expected_subscribers), legacy_channels or {}),
        )
        ips = (
            app_subscriber_ips(await client.client_list(_type="pubsub"))
            if check_addresses and expected_subscribers
            else None
        )
    except (RedisError, OSError) as e:
        return Observation(redis_error=str(e) or type(e).__name__)
    finally:
        await client.aclose()
    return Observation(
        pongs=pongs,
        views=views,
        subscribers=subscribers,
        expected_subscribers=expected_subscribers,
        app_subscriber_ips=ips,
    )
