"""The operator's shortcuts on its hot paths: what they keep, and that they keep their promises."""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from typing import Any

import kopf
import pytest

from synchro import api, controller, handlers, reconcile
from synchro.conditions import Condition, Reason
from synchro.config import Config
from synchro.reconcile import Pass, Sources
from synchro.redis import connect
from synchro.redis.model import Credentials, PingResult
from synchro.relists import Relists

SYNC_CLUSTER: dict[str, Any] = {
    "apiVersion": api.API_VERSION,
    "kind": api.KIND,
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "generation": 3,
        "resourceVersion": "9",
        "labels": {"team": "a"},
        "finalizers": [api.FINALIZER],
        "annotations": {"note": "x", f"{api.GROUP}/last-handled-configuration": "{}"},
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
    },
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

    async def __call__(self, addresses: Any, creds: Any, config: Any, timeout: float) -> PingResult:
        await asyncio.sleep(0.01)
        self.calls += 1
        ok = self.answers.pop(0)
        return PingResult(ok, Reason.REDIS_REACHABLE if ok else Reason.UNREACHABLE, "scripted")


class ScriptedConnections(connect.Connections):
    """The operator's Connections with the network PING replaced, on a clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0
        super().__init__(clock=lambda: self.now)
        self.scripted = ScriptedPing()
        self._ping = self.scripted  # type: ignore[method-assign]


@pytest.fixture()
def scripted() -> ScriptedConnections:
    return ScriptedConnections()


CREDS = Credentials(None, None, 0, False)
REDIS = [("127.0.0.1", 6379)]


def test_concurrent_pings_share_one_and_a_fresh_answer_is_reused(scripted: ScriptedConnections) -> None:
    scripted.scripted.answers = [True]

    async def run() -> list[PingResult]:
        together = await asyncio.gather(*(scripted.ping(REDIS, CREDS, Config()) for _ in range(50)))
        return [*together, await scripted.ping(REDIS, CREDS, Config())]

    results = asyncio.run(run())
    assert all(r.ok for r in results) and scripted.scripted.calls == 1  # 51 passes, one PING


def test_an_old_answer_is_asked_again_and_a_failure_is_never_reused(scripted: ScriptedConnections) -> None:
    scripted.scripted.answers = [True, False, False, True]

    async def run() -> list[bool]:
        seen = [(await scripted.ping(REDIS, CREDS, Config())).ok]
        scripted.now += connect.PING_REUSE_S + 0.1  # the answer is too old now: Redis is asked again
        seen.append((await scripted.ping(REDIS, CREDS, Config())).ok)
        seen.append((await scripted.ping(REDIS, CREDS, Config())).ok)  # a failure is asked again at once
        seen.append((await scripted.ping(REDIS, CREDS, Config())).ok)
        seen.append((await scripted.ping([("127.0.0.2", 6379)], CREDS, Config())).ok is not None)
        return seen

    scripted.scripted.answers.append(True)
    assert asyncio.run(run()) == [True, False, False, True, True] and scripted.scripted.calls == 5


def status(ready: int, reason: str = "RollingOut", hash_: str = "h1") -> dict[str, Any]:
    return {
        "replicas": 2,
        "readyReplicas": ready,
        "observedGeneration": 1,
        "redis": {"mode": "External"},
        "targets": [{"kind": "Deployment", "name": "web", "configHash": hash_, "replicas": 2, "readyReplicas": ready}],
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": reason,
                "message": "m",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 1,
            }
        ],
    }


def test_only_a_change_of_replica_counts_may_wait() -> None:
    assert controller.only_counts_differ(status(0), status(1))
    later = status(1)
    later["conditions"][0]["lastTransitionTime"] = "2026-01-01T00:00:09Z"
    assert controller.only_counts_differ(status(0), later)  # a timestamp alone is no change
    assert not controller.only_counts_differ(status(0), status(1, reason="Ready"))
    assert not controller.only_counts_differ(status(0), status(1, hash_="h2"))
    assert not controller.only_counts_differ(status(0), {**status(1), "probe": {"healthy": ["a"]}})


def test_a_status_field_no_longer_found_is_removed_by_the_patch() -> None:
    """After a Redis with replicas moved back to one pod, status.redis has no master or nodes: the merge patch
    must say null for them, or the API server keeps the old ones beside the new fields."""
    old = {"redis": {"mode": "Managed", "endpoint": "e", "master": "web-redis-1", "nodes": []}, "replicas": 2}
    new = {"redis": {"mode": "Managed", "endpoint": "e"}, "replicas": 2}
    patch = controller.with_removals(old, new)
    assert patch == {"redis": {"mode": "Managed", "endpoint": "e", "master": None, "nodes": None}, "replicas": 2}
    assert controller.with_removals(new, new) == new


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append(copy.deepcopy(status))

    def post_event(self, *args: Any) -> None:
        pass


def test_a_change_of_counts_alone_waits_its_turn_but_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = RecordingKube()
    body = {"metadata": {"namespace": "ns", "name": "web", "generation": 1}}
    loop = controller.StatusWriter(kube, body)  # type: ignore[arg-type]
    rolling = [Condition("RolloutComplete", False, "RollingOut", "m")]

    def counts(ready: int) -> Pass:
        return Pass(rolling, {"replicas": 2, "readyReplicas": ready, "targets": []}, False, None)

    clock = [1000.0]
    monkeypatch.setattr(controller.time, "monotonic", lambda: clock[0])

    async def run() -> None:
        await loop.publish(counts(0))  # the first status: written at once
        clock[0] += 1
        await loop.publish(counts(1))  # counts alone, within COUNTS_EVERY_S of the last write: waits
        assert len(kube.patches) == 1 and loop.counts_waiting
        clock[0] += controller.COUNTS_EVERY_S
        await loop.publish(counts(1))  # its turn: written
        done = Pass(
            [Condition("RolloutComplete", True, "RolledOut", "m")],
            {"replicas": 2, "readyReplicas": 2, "targets": []},
            False,
            None,
        )
        await loop.publish(done)  # a condition changed: written at once, however recent the last write

    asyncio.run(run())
    assert [p["readyReplicas"] for p in kube.patches] == [0, 1, 2] and not loop.counts_waiting


def test_per_event_handlers_run_on_the_event_loop() -> None:
    """kopf runs a plain `def` handler in its thread pool: a hop per handler per watch event, and the
    asyncio.Event that wakes a loop must not be set from another thread."""
    registry = kopf.get_default_registry()
    per_event = [h for reg in (registry._indexing, registry._watching) for h in reg._handlers]
    assert {h.id for h in per_event} >= {
        "claims",
        "deployments",
        "cluster_pods",
        "cluster_changed",
        "workload_changed",
        "secret_changed",
    }
    assert [h.id for h in per_event if not asyncio.iscoroutinefunction(h.fn)] == []


def test_a_spec_change_wakes_the_waiting_loop_and_a_status_write_does_not() -> None:
    async def scenario() -> tuple[bool, bool]:
        memo = kopf.Memo(wakers={("ns", "web"): asyncio.Event()}, generations={}, relists=Relists(lambda *_: None))
        woken = memo.wakers[("ns", "web")]

        async def event(generation: int) -> bool:
            woken.clear()
            await handlers.cluster_changed(
                namespace="ns",
                name="web",
                uid="u1",
                meta={"generation": generation},
                memo=memo,
                type="MODIFIED",
                claims={},
                secret_refs={},
            )
            try:
                await asyncio.wait_for(woken.wait(), timeout=0.5)
                return True
            except TimeoutError:
                return False

        await event(1)
        return await event(2), await event(2)  # a new generation; then the same one (a status write)

    assert asyncio.run(scenario()) == (True, False)


class FakeApi:
    """The API server as a pass of a managed SyncCluster sees it, counting every read."""

    def __init__(self, watched: dict[str, dict[str, Any]]) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads: list[tuple[str, str]] = []
        self.version = 100
        self.watched = watched  # Deployments, as the watch cache has them

    def stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(("get", kind))
        return copy.deepcopy(self.objects.get((kind, name)))

    def list(self, api_version: str, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        self.reads.append(("list", kind))
        return [{"endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}]

    def endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        return self.list("discovery.k8s.io/v1", "EndpointSlice", namespace, f"kubernetes.io/service-name={service}")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        answer = self.stamp(obj)
        if obj["kind"] == "Deployment":  # the controller-manager's status stays; the watch delivers the write
            answer["status"] = self.watched[obj["metadata"]["name"]].get("status", {})
            self.watched[obj["metadata"]["name"]] = answer
        return answer

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in obj.get("stringData", {}).items()}
        return self.stamp({**{k: v for k, v in obj.items() if k != "stringData"}, "data": data})


def test_a_managed_pass_reads_its_secret_and_endpoints_again_only_when_they_may_have_changed() -> None:
    async def answered(addresses: Any, *_: Any, **__: Any) -> PingResult:
        reason = Reason.REDIS_REACHABLE if pong else Reason.UNREACHABLE
        return PingResult(pong, reason, "", addresses[-1] if pong else None)

    redis = connect.Connections()
    redis.ping = answered  # type: ignore[method-assign]
    target = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "resourceVersion": "1"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app"}]}}},
        "status": {},
    }
    watched = {
        "web": target,
        "web-redis": {"metadata": {"name": "web-redis", "resourceVersion": "7"}, "status": {"availableReplicas": 1}},
    }
    fake = FakeApi(watched)
    body = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {"replicas": 2, "targets": [{"name": "web", "preset": "generic"}]},
    }
    sources = Sources(
        fake,  # type: ignore[arg-type]
        Config(),
        redis,
        {},
        cached=lambda ns, kind, name: watched.get(name) if kind == "Deployment" else None,
        secret_version=lambda ns, name: fake.objects.get(("Secret", name), {})
        .get("metadata", {})
        .get("resourceVersion"),
    )
    reconciler = reconcile.Reconciler(sources)

    def one_pass() -> list[tuple[str, str]]:
        fake.reads.clear()
        state = asyncio.run(reconciler.run(body, {}))
        assert state.conditions[0].status is pong
        return [r for r in fake.reads if r[1] in ("Secret", "EndpointSlice")]

    pong = True
    assert one_pass() == [("get", "Secret"), ("get", "Secret"), ("list", "EndpointSlice")]  # created, read back
    assert one_pass() == []  # nothing moved
    fake.stamp(fake.objects[("Secret", "web-redis")])  # the Secret changed: the watch shows a new version
    assert one_pass() == [("get", "Secret")]
    fake.stamp(watched["web-redis"])  # the Deployment's status moved: its version too
    watched["web-redis"] = fake.objects[("Deployment", "web-redis")]
    assert one_pass() == [("list", "EndpointSlice")]  # a new Redis pod, perhaps elsewhere
    pong = False
    assert one_pass() == []  # the PING fails on the addresses it knows...
    pong = True
    assert one_pass() == [("list", "EndpointSlice")]  # ...which are therefore listed anew


def test_a_refused_status_write_never_ends_the_loop() -> None:
    """While an apiserver restarts, a status write fails (refused, or 403 until its RBAC caches sync): the loop
    goes on and writes it on its next pass, after the backoff (kopf would start a dead loop only 60 s later)."""
    body = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": {}}
    loop = controller.Controller(Sources(RecordingKube(), Config(), connect.Connections(), {}), body)  # type: ignore[arg-type]

    async def refused(*_: Any) -> None:
        raise RuntimeError("403: forbidden")

    loop.writer.publish = refused  # type: ignore[method-assign]
    loop.next_pass = time.monotonic() + 60
    asyncio.run(loop.publish(None))  # type: ignore[arg-type]
    assert loop.next_pass <= time.monotonic() + 1 and loop.backoff == 2
