"""The operator's shortcuts on its hot paths: what they keep, and that they keep their promises."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kopf
import pytest

from synchro import api, handlers
from synchro.config import Config
from synchro.redis import connect

SYNC_CLUSTER: dict[str, Any] = {
    "apiVersion": api.API_VERSION, "kind": api.KIND,
    "metadata": {"name": "web", "namespace": "ns", "generation": 3, "resourceVersion": "9",
                 "labels": {"team": "a"}, "finalizers": [api.FINALIZER],
                 "annotations": {"note": "x", f"{api.GROUP}/last-handled-configuration": "{}"},
                 "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"replicas": 2, "targets": [{"name": "web", "preset": "generic"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


def test_no_diff_base_keeps_no_essence_and_writes_nothing() -> None:
    body = kopf.Body(copy.deepcopy(SYNC_CLUSTER))  # type: ignore[arg-type]
    storage = handlers.NoDiffBase()
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert storage.build(body=body) == storage.fetch(body=body) == {} and not patch


class ScriptedPing:
    """Stands in for the network PING: each call takes the next scripted answer (True: answered)."""

    def __init__(self) -> None:
        self.answers: list[bool] = []
        self.calls = 0

    async def __call__(self, addresses: Any, creds: Any, config: Any, timeout: float) -> connect.PingResult:
        await asyncio.sleep(0.01)
        self.calls += 1
        ok = self.answers.pop(0)
        return connect.PingResult(ok, "Reachable" if ok else "Unreachable", "scripted")


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedPing:
    fake = ScriptedPing()
    monkeypatch.setattr(connect, "_ping", fake)
    monkeypatch.setattr(connect, "_answered", {})
    return fake


CREDS = connect.Credentials(None, None, 0, False)
REDIS = [("127.0.0.1", 6379)]


def test_concurrent_pings_share_one_and_a_fresh_answer_is_reused(scripted: ScriptedPing) -> None:
    scripted.answers = [True]

    async def run() -> list[connect.PingResult]:
        together = await asyncio.gather(*(connect.ping(REDIS, CREDS, Config()) for _ in range(50)))
        return [*together, await connect.ping(REDIS, CREDS, Config())]

    results = asyncio.run(run())
    assert all(r.ok for r in results) and scripted.calls == 1  # 51 passes, one PING


def test_an_old_answer_is_asked_again_and_a_failure_is_never_reused(scripted: ScriptedPing,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    scripted.answers = [True, False, False, True]
    clock = [100.0]
    monkeypatch.setattr(connect, "_clock", lambda: clock[0])

    async def run() -> list[bool]:
        seen = [(await connect.ping(REDIS, CREDS, Config())).ok]
        clock[0] += connect.PING_REUSE_S + 0.1  # the answer is too old now: Redis is asked again
        seen.append((await connect.ping(REDIS, CREDS, Config())).ok)
        seen.append((await connect.ping(REDIS, CREDS, Config())).ok)  # a failure is asked again at once
        seen.append((await connect.ping(REDIS, CREDS, Config())).ok)
        seen.append((await connect.ping([("127.0.0.2", 6379)], CREDS, Config())).ok is not None)
        return seen

    scripted.answers.append(True)
    assert asyncio.run(run()) == [True, False, False, True, True] and scripted.calls == 5
