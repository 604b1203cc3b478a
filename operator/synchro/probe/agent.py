"""`synchro probe-agent`: runs beside an app container, with the same Redis endpoint and credentials.

It answers the operator's pings, publishes a heartbeat every interval, and keeps, under its own view key,
which peers it heard and when. If Redis goes away it reconnects, and says nothing until it can.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from synchro.probe import protocol
from synchro.probe.protocol import Message

log = logging.getLogger("synchro.probe.agent")


@dataclass(frozen=True)
class AgentConfig:
    url: str
    prefix: str
    pod: str
    interval_s: float

    @classmethod
    def from_env(cls) -> AgentConfig:
        return cls(
            url=os.environ[protocol.URL_VAR],
            prefix=os.environ[protocol.PREFIX_VAR],
            pod=os.environ[protocol.POD_VAR],
            interval_s=float(os.environ.get(protocol.INTERVAL_VAR, protocol.DEFAULT_INTERVAL_S)),
        )


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.heard: dict[str, float] = {}
        self.backoff = 0.5

    @property
    def heartbeat_s(self) -> float:
        return max(self.config.interval_s / 2, 0.2)

    async def run_once(self) -> None:
        """One connected session; returns or raises when the connection is lost."""
        c = self.config
        client = aioredis.Redis.from_url(
            c.url,
            socket_connect_timeout=5,
            health_check_interval=0,
            client_name=protocol.CLIENT_NAME,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(protocol.probe_channel(c.prefix))
            log.info("subscribed to %s as %s", protocol.probe_channel(c.prefix), c.pod)
            self.backoff = 0.5
            await asyncio.gather(self.listen(client, pubsub), self.beat(client))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    async def listen(self, client: aioredis.Redis, pubsub: aioredis.client.PubSub) -> None:
        c = self.config
        while True:
            raw = await pubsub.get_message(timeout=self.heartbeat_s)
            if raw is None:
                continue
            msg = Message.decode(raw["data"])
            if msg is None:
                continue
            if msg.kind == "ping":
                reply = Message("pong", c.pod, msg.id, msg.sent)
                await client.publish(protocol.pong_channel(c.prefix), reply.encode())
            elif msg.kind == "heartbeat" and msg.sender != c.pod:
                self.heard[msg.sender] = time.time()

    async def beat(self, client: aioredis.Redis) -> None:
        c = self.config
        key = protocol.view_key(c.prefix, c.pod)
        ttl = int(c.interval_s * protocol.VIEW_TTL_INTERVALS) + 1
        while True:
            await client.publish(protocol.probe_channel(c.prefix), Message("heartbeat", c.pod).encode())
            horizon = time.time() - c.interval_s * protocol.VIEW_TTL_INTERVALS
            self.heard = {p: t for p, t in self.heard.items() if t >= horizon}
            view: dict[Any, Any] = {p: f"{t:.3f}" for p, t in self.heard.items()}
            view[protocol.ALIVE_FIELD] = f"{time.time():.3f}"
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=view)
                pipe.expire(key, ttl)
                await pipe.execute()
            await asyncio.sleep(self.heartbeat_s)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except (RedisError, OSError) as e:
                log.warning("redis connection lost (%s); reconnecting in %.1fs", e, self.backoff)
                self.heard.clear()
                await asyncio.sleep(self.backoff)
                self.backoff = min(self.backoff * 2, 5.0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(Agent(AgentConfig.from_env()).run())
    return 0
