"""The kopf face of Synchro: thin decorated functions that delegate to synchro.reconcile.

Each SyncCluster gets one daemon, its controller loop. It runs a level-based pass, then sleeps until
its wake-up event fires or the resync interval passes. Watch events on the SyncCluster, its targets
and the Secrets it references only set that event: users' workloads are watched with on.event and
indexes, so kopf never writes its annotations or finalizers onto them.

The per-event handlers and index functions are `async def` although they never await: kopf runs a plain
`def` handler in its thread pool, one thread hop per handler per watch event, and asyncio.Event is not
thread-safe (set from that thread, a waiter resumed only because the loop woke for the handler's result).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from synchro import api, inject, kube, reconcile
from synchro.api import Obj
from synchro.config import Config
from synchro.controller import Controller
from synchro.probe import checker
from synchro.reconcile import Sources
from synchro.reconcile.model import ClaimKey
from synchro.reconcile.sources import io
from synchro.redis import managed as managed_redis
from synchro.redis.connect import Connections
from synchro.relists import Relists

Key = tuple[str, str]  # (namespace, name) of a SyncCluster
Logger = logging.Logger | logging.LoggerAdapter[Any]
# Watch events only wake controller loops or fill indexes; kopf's per-event success line would drown the log.
QUIET_HANDLERS = (
    "cluster_changed",
    "workload_changed",
    "secret_changed",
    "claims",
    "secret_refs",
    "cluster_pods",
    "deployments",
    "statefulsets",
    "secret_versions",
)


class _QuietRoutineHandlers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.endswith("succeeded.") and any(f"'{h}'" in message for h in QUIET_HANDLERS))


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: Synchro has no on.create, on.update or on.resume handler to feed it.

    Passes are level-based: they compare the live world with the spec, never an old spec with a new one. kopf's
    default keeps the last handled spec in an annotation and rewrites it on every spec change, one more write
    racing the pass's own apply on every `kubectl scale`; and it rebuilds that essence, by deep-copying the
    whole body, on every event of every watched kind. With an empty essence on both sides kopf sees nothing
    to diff and writes nothing. Deletion does not depend on it: on.delete fires on the deletion timestamp."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = api.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False  # Synchro posts its own events, on transitions only
    settings.peering.standalone = True
    # Only the pods of SyncClusters' targets, filtered by the API server on the LIST and the WATCH: every other
    # pod of the cluster would be decoded and pass through kopf's per-event machinery only to be dropped by
    # cluster_pods' filter. A pod that loses the label arrives as DELETED and leaves the index.
    settings.watching.label_selectors["v1", "pods"] = api.CLUSTER_LABEL
    # Secrets of the types that never hold a Redis password or CA are left on the server: Helm's release records
    # (large, and one more per upgrade), ServiceAccount tokens and registry credentials. A passwordSecretRef to
    # one of them still works, read on each pass, but a change to it waits for the next resync.
    settings.watching.field_selectors["v1", "secrets"] = ",".join(f"type!={t}" for t in api.UNWATCHED_SECRET_TYPES)
    # A watch that goes silent must be noticed and replaced (docs/reliability.md: measured behind a black hole).
    settings.watching.server_timeout = 300  # the apiserver ends each watch after 5 min; kopf goes on from its version
    settings.watching.client_timeout = 330  # one watch request at most, should that end never arrive
    settings.watching.inactivity_timeout = 70  # no event, not even the minutely bookmark, for 70 s: the stream is dead
    # No watching.connect_timeout: a connection attempt that times out counts as a failed request, which kopf
    # retries with growing backoffs (1, 1, 2, 3, 5, 8, 13, 21 s), so a lifted block was used up to 20 s late.
    logging.getLogger("kopf.objects").addFilter(_QuietRoutineHandlers())
    memo.config = Config.from_env()
    # Blocking API calls run in the loop's default executor: size it for many SyncClusters at once.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=memo.config.api_threads))
    memo.kube = kube.Kube(kube.load_client(pool_size=memo.config.api_threads))
    memo.redis = Connections()  # every loop's Redis connections and recent PING answers
    memo.wakers = {}
    memo.generations = {}  # (namespace, name) -> (generation, rotate-password) its loop was last woken for
    memo.gone = set()  # uids of SyncClusters deleted while a watch was away (relists.py): their loops end
    memo.relists = Relists(lambda kind, ghosts: forget(memo, kind, ghosts))


async def forget(memo: kopf.Memo, kind: str, ghosts: dict[Key, str]) -> None:
    """Objects a relist did not bring back are gone: every loop looks again without them. The loop of a SyncCluster
    ends only once a list of its namespace confirms it gone: a listing judged complete too early (its events
    still queued) must never end a live one, which kopf would not start again."""
    if kind == api.KIND:
        for namespace in {ns for ns, _ in ghosts}:
            try:
                listed = await io(memo.kube.list, api.API_VERSION, api.KIND, namespace)
            except kube.KubeError:
                continue  # not confirmed: the loop goes on, as kopf would have it
            live = {o["metadata"]["uid"] for o in listed}
            memo.gone.update(uid for (ns, _), uid in ghosts.items() if ns == namespace and uid not in live)
        for key in ghosts:
            memo.generations.pop(key, None)
    for event in memo.wakers.values():
        event.set()


@kopf.index(api.GROUP, api.VERSION, api.PLURAL)
async def claims(
    namespace: str | None, name: str, spec: Mapping[str, Any], meta: Mapping[str, Any], **_: Any
) -> dict[ClaimKey, Any]:
    """(namespace, kind, workload) -> (creationTimestamp, SyncCluster): who claims which target."""
    created = meta.get("creationTimestamp", "")
    targets = spec.get("targets") or []
    return {(namespace or "", t.get("kind", api.DEFAULT_KIND), t["name"]): (created, name) for t in targets}


@kopf.index(api.GROUP, api.VERSION, api.PLURAL)
async def secret_refs(namespace: str | None, name: str, spec: Mapping[str, Any], **_: Any) -> dict[ClaimKey, str]:
    """(namespace, "Secret", secret) -> SyncCluster: whose config depends on which Secret."""
    redis = spec.get("redis") or {}
    external = redis.get("external") or {}
    refs = [external.get("passwordSecretRef"), (external.get("tls") or {}).get("caSecretRef")]
    managed = redis.get("mode", "Managed") == "Managed"
    names = {r["name"] for r in refs if r} | ({managed_redis.name(name)} if managed else set())
    return {(namespace or "", "Secret", n): name for n in names}


def wake(memo: kopf.Memo, namespace: str | None, names: Any) -> None:
    for name in names:
        event = memo.wakers.get((namespace, name))
        if event is not None:
            event.set()


def ours(annotations: Mapping[str, str], labels: Mapping[str, str], **_: Any) -> bool:
    """A workload Synchro injects (it carries the claim) or a managed Redis."""
    return api.CLAIM_ANNOTATION in annotations or managed_redis.owner_of(dict(labels)) is not None


def kept(body: kopf.Body, annotations: Mapping[str, str], labels: Mapping[str, str]) -> Obj:
    """Synchro's own workloads whole (but for other managers' managedFields); any other one compact."""
    return inject.slim(body) if ours(annotations, labels) else inject.compact(body)


# The watch cache of workloads: a pass reads them here instead of from the API server. Unclaimed ones are
# cached too, compact, so that a new SyncCluster's first pass can inject without a GET.
@kopf.index("apps", "v1", "deployments")
async def deployments(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    **_: Any,
) -> dict[ClaimKey, Obj]:
    return {(namespace or "", "Deployment", name): kept(body, annotations, labels)}


@kopf.index("apps", "v1", "statefulsets")
async def statefulsets(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    **_: Any,
) -> dict[ClaimKey, Obj]:
    return {(namespace or "", "StatefulSet", name): kept(body, annotations, labels)}


# A pass re-reads a Secret it depends on only when the watch saw it change. Versions only: no Secret's data.
@kopf.index("", "v1", "secrets")
async def secret_versions(namespace: str | None, name: str, meta: Mapping[str, Any], **_: Any) -> dict[ClaimKey, str]:
    return {(namespace or "", "Secret", name): str(meta.get("resourceVersion", ""))}


def version_reader(index: kopf.Index[ClaimKey, str]) -> Callable[[str, str], str | None]:
    def latest(namespace: str, name: str) -> str | None:
        return next(iter(index.get((namespace, "Secret", name), ())), None)

    return latest


def cache_reader(*indexes: kopf.Index[ClaimKey, Obj]) -> Callable[[str, str, str], Obj | None]:
    def cached(namespace: str, kind: str, name: str) -> Obj | None:
        for index in indexes:
            for body in index.get((namespace, kind, name), ()):
                return body
        return None

    return cached


@kopf.index("", "v1", "pods", labels={api.CLUSTER_LABEL: kopf.PRESENT})
async def cluster_pods(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[Key, checker.PodRecord]:
    """(namespace, SyncCluster) -> what the probe needs of each target pod."""
    return {(namespace or "", labels[api.CLUSTER_LABEL]): checker.pod_record(body)}


# Asked to stop, a loop cancels its own round in progress and returns at once (until_stopped). kopf waits
# cancellation_backoff for that before it cancels the daemon itself and logs "is cancelled. Will escalate".
@kopf.daemon(api.GROUP, api.VERSION, api.PLURAL, cancellation_backoff=5, cancellation_timeout=10)
async def controller(
    body: kopf.Body,
    memo: kopf.Memo,
    claims: kopf.Index[ClaimKey, Any],
    cluster_pods: kopf.Index[Key, checker.PodRecord],
    deployments: kopf.Index[ClaimKey, Obj],
    statefulsets: kopf.Index[ClaimKey, Obj],
    secret_versions: kopf.Index[ClaimKey, str],
    logger: Logger,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
    event = memo.wakers.setdefault(key, asyncio.Event())
    uid = body["metadata"]["uid"]
    ends = Ends(stopped, memo.gone, uid)
    try:
        sources = Sources(
            memo.kube,
            memo.config,
            memo.redis,
            claims,
            cached=cache_reader(deployments, statefulsets),
            secret_version=version_reader(secret_versions),
            pods=lambda namespace, name: list(cluster_pods.get((namespace, name), ())),  # read live on every probe
            logger=logger,
        )
        await until_stopped(Controller(sources, body).run(ends, event), stopped)
    finally:
        memo.wakers.pop(key, None)
        memo.gone.discard(uid)


async def until_stopped(loop: Coroutine[Any, Any, None], stopped: kopf.DaemonStopped) -> None:
    """Run a controller loop until it returns, or until kopf asks it to stop: then cancel it, whatever it awaits.
    The pass or probe round in progress is abandoned as an operator restart would abandon it (passes are
    level-based). A cancel of the daemon itself from outside still propagates."""

    async def asked() -> None:
        await stopped.wait()

    running = asyncio.create_task(loop)
    stopping = asyncio.create_task(asked())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        running.cancel()  # nothing to do if it returned on its own
        try:
            await running  # its finally blocks run; an error of its own is raised here
        except asyncio.CancelledError:
            daemon = asyncio.current_task()
            if not stopped or (daemon is not None and daemon.cancelling()):  # not our cancel: kopf's, or its own
                raise


class Ends:
    """A loop ends when kopf stops it, or when a relist showed its SyncCluster deleted (kopf never will)."""

    def __init__(self, stopped: kopf.DaemonStopped, gone: set[str], uid: str) -> None:
        self.stopped, self.gone, self.uid = stopped, gone, uid

    def __bool__(self) -> bool:
        return bool(self.stopped) or self.uid in self.gone


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def cluster_changed(
    namespace: str | None,
    name: str,
    uid: str,
    meta: Mapping[str, Any],
    memo: kopf.Memo,
    type: str | None,
    claims: kopf.Index[ClaimKey, Any],
    secret_refs: kopf.Index[ClaimKey, str],
    **_: Any,
) -> None:
    """Wake the loop when the spec or the rotate-password annotation changed. A pass reads nothing else of its
    SyncCluster, so the events of the loop's own status writes and of kopf's bookkeeping patches would only run
    passes that find nothing to do."""
    memo.relists.saw(api.KIND, type, (namespace or "", name), uid, (claims, secret_refs))
    key = (namespace, name)
    wanted = (meta.get("generation"), (meta.get("annotations") or {}).get(api.ROTATE_PASSWORD_ANNOTATION))
    if type == "DELETED":
        memo.generations.pop(key, None)
    elif memo.generations.get(key) != wanted:
        memo.generations[key] = wanted
        wake(memo, namespace, [name])


@kopf.on.event("apps", "v1", "deployments")
@kopf.on.event("apps", "v1", "statefulsets")
async def workload_changed(
    namespace: str | None,
    name: str,
    uid: str,
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    claims: kopf.Index[ClaimKey, Any],
    deployments: kopf.Index[ClaimKey, Obj],
    statefulsets: kopf.Index[ClaimKey, Obj],
    **_: Any,
) -> None:
    kind = body.get("kind", api.DEFAULT_KIND)
    memo.relists.saw(kind, type, (namespace or "", name), uid, (deployments if kind == "Deployment" else statefulsets,))
    key = (namespace or "", kind, name)
    wake(memo, namespace, [c[1] for c in claims.get(key, ())])
    owner = managed_redis.owner_of(body.get("metadata", {}).get("labels"))
    if owner:
        wake(memo, namespace, [owner])  # a managed Redis changed


@kopf.on.event("", "v1", "secrets")
async def secret_changed(
    namespace: str | None,
    name: str,
    uid: str,
    type: str | None,
    memo: kopf.Memo,
    secret_refs: kopf.Index[ClaimKey, str],
    secret_versions: kopf.Index[ClaimKey, str],
    **_: Any,
) -> None:
    memo.relists.saw("Secret", type, (namespace or "", name), uid, (secret_versions,))
    wake(memo, namespace, secret_refs.get((namespace or "", "Secret", name), ()))


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL)
async def release(
    body: kopf.Body, memo: kopf.Memo, claims: kopf.Index[ClaimKey, Any], logger: Logger, **_: Any
) -> None:
    await reconcile.release(Sources(memo.kube, memo.config, memo.redis, claims, logger=logger), body)
