"""Split brain toward a Redis Service: the operator looks for the pod's view key at the Service's ClusterIP, and
where that is outside SYNCHRO_REDIS_NETWORKS (outside the cluster), at the Service's endpoints."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from synchro.config import Config
from synchro.probe import checker
from synchro.probe.checker import PodRecord
from synchro.redis import connect
from synchro.redis.model import Credentials

ROGUE = PodRecord(
    "rogue",
    True,
    "h1",
    "10.244.4.9",
    "redis://:$(SYNCHRO_REDIS_PASSWORD)@old.ns.svc:6379/0",
    "ns.web",
    ("old", "password"),
)
LOCAL = Config(redis_networks=(ipaddress.ip_network("127.0.0.0/8"),))


class FakeRedis:
    def __init__(self, host: str, keys: set[str]) -> None:
        self.host, self.keys = host, keys

    async def exists(self, key: str) -> int:
        return int(key in self.keys)

    async def aclose(self) -> None:
        pass


def elsewhere(monkeypatch: pytest.MonkeyPatch, config: Config) -> tuple[dict[str, str], list[str]]:
    tried: list[str] = []

    def client_for(host: str, port: int, creds: Credentials, timeout: float) -> Any:
        tried.append(f"{host}:{port}")
        return FakeRedis(host, {"ns.web:synchro:view:rogue"})

    async def secret(name: str, key: str) -> str:
        return "pw"

    async def service(namespace: str, name: str) -> tuple[str | None, list[tuple[str, int]]]:
        assert (namespace, name) == ("ns", "old")
        return "10.96.0.42", [("127.0.0.5", 6379)]

    monkeypatch.setattr(connect, "client_for", client_for)
    found = asyncio.run(
        checker.alive_elsewhere([ROGUE], "redis://web-redis.ns.svc:6379/0", "ns", secret, service, config)
    )
    return found, tried


def test_a_service_outside_the_allowed_networks_is_reached_at_its_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    found, tried = elsewhere(monkeypatch, LOCAL)
    assert tried == ["127.0.0.5:6379"]
    assert found == {"rogue": "old.ns.svc:6379/0"}


def test_a_reachable_cluster_ip_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    found, tried = elsewhere(monkeypatch, Config())
    assert tried == ["10.96.0.42:6379"]
    assert found == {"rogue": "old.ns.svc:6379/0"}
