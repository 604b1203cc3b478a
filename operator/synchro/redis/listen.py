"""Sentinel's `+switch-master`, heard: a Redis with replicas gets a pass as soon as a Sentinel moved the master,
not on the next 2 s poll, which stays as the fallback (issue 15). I/O only: what the pass does is failover.py's.

One subscription per Sentinel, each its own task: every Sentinel publishes the switch once it has taken the new
config, so the pass a later message wakes finds the majority that confirms the new master. A Sentinel that does
not answer is tried again every RETRY_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from synchro.redis.connect import client_for
from synchro.redis.model import Address, Credentials

CHANNEL = "+switch-master"
CONNECT_TIMEOUT_S = 2.0
READ_S = 5.0  # a read that hears nothing in this long just reads again
RETRY_S = 2.0
Key = tuple[tuple[Address, ...], Credentials]


class SwitchListener:
    """Listens to a set of Sentinels for one SyncCluster and calls `heard` on each switch."""

    def __init__(self, heard: Callable[[], None], logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        self.heard, self.logger = heard, logger
        self.key: Key | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def follow(self, sentinels: Sequence[Address], creds: Credentials | None) -> None:
        """Listen to these Sentinels from now on (none, or no creds: stop). The same set keeps its tasks."""
        key = (tuple(sorted(sentinels)), creds) if sentinels and creds is not None else None
        if key == self.key:
            return
        self.stop()
        self.key = key
        if key is not None:
            self.tasks = [asyncio.create_task(self.listen(address, key[1])) for address in key[0]]

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks, self.key = [], None

    async def listen(self, address: Address, creds: Credentials) -> None:
        while True:
            client = client_for(*address, creds, CONNECT_TIMEOUT_S, Retry(NoBackoff(), 0))  # this loop retries
            pubsub: Any = client.pubsub()  # Any: redis-py types its PubSub loosely
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=READ_S)
                    if message is not None and message.get("type") == "message":
                        self.logger.info("Sentinel %s:%s: %s %s", *address, CHANNEL, _text(message.get("data")))
                        self.heard()
            except (RedisError, OSError) as e:  # a Sentinel restarting or gone: the 2 s poll covers meanwhile
                self.logger.debug("Sentinel %s:%s not listened to: %s", *address, e)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(RETRY_S)


def _text(data: Any) -> str:
    return data.decode() if isinstance(data, bytes) else str(data)
