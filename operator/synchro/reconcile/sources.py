"""Where a controller loop reads and writes: built once by synchro.handlers, shared by observe, act and the probe."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from synchro.api import Obj
from synchro.config import Config
from synchro.kube import Kube
from synchro.probe.checker import PodRecord
from synchro.reconcile.model import ClaimKey
from synchro.redis.connect import Connections

T = TypeVar("T")
Logger = logging.Logger | logging.LoggerAdapter[Any]
LOG = logging.getLogger("synchro")


async def io(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking Kubernetes client call off the event loop."""
    return await asyncio.to_thread(fn, *args)


def now_iso() -> str:
    """The wall clock, as status and Events write it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nothing_cached(namespace: str, kind: str, name: str) -> Obj | None:
    return None


def no_version(namespace: str, name: str) -> str | None:
    return None


def no_pods(namespace: str, name: str) -> list[PodRecord]:
    return []


@dataclass(frozen=True)
class Sources:
    kube: Kube
    config: Config
    redis: Connections
    claims: Mapping[ClaimKey, Any]  # the kopf index: (namespace, kind, name) -> claims on that workload
    cached: Callable[[str, str, str], Obj | None] = nothing_cached  # the watched workload, if cached
    secret_version: Callable[[str, str], str | None] = no_version  # a Secret's latest resourceVersion, if watched
    pods: Callable[[str, str], list[PodRecord]] = no_pods  # (namespace, SyncCluster) -> its target pods, watched
    logger: Logger = LOG
