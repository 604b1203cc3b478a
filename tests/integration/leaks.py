"""No secret is ever visible (issue 17, item 13): for a whole test session, every Secret's values are collected,
and every object a person can read without Secret access (Events, ConfigMaps, Pods, Deployments, StatefulSets,
SyncClusters with their status and annotations) is kept as it was written, with the operator's log. At the end
no password may appear in any of them."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kubernetes import client, watch

MIN_LENGTH = 8  # shorter values ("true", "6379", "redis") would match by chance
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")


def passwords_of(secret: dict[str, Any]) -> set[str]:
    """The values of an Opaque Secret that could be a password: not a certificate, not a short word."""
    if secret.get("type", "Opaque") != "Opaque" or secret["metadata"].get("namespace") in SYSTEM_NAMESPACES:
        return set()
    found = set()
    for raw in (secret.get("data") or {}).values():
        value = base64.b64decode(raw).decode(errors="replace")
        if len(value) >= MIN_LENGTH and "-----BEGIN" not in value and "\n" not in value.strip():
            found.add(value.strip())
    return found


class LeakWatch:
    """Watches the cluster in background threads for as long as it runs: the test namespaces come and go."""

    def __init__(self, api: client.ApiClient) -> None:
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        self.api = api
        self.readable: dict[str, str] = {}  # "Kind ns/name@resourceVersion" -> the object as JSON
        self.passwords: set[str] = set()
        self.lock = threading.Lock()
        self.watches: list[watch.Watch] = []
        self.stopped = threading.Event()
        self.lists: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
            ("Secret", core.list_secret_for_all_namespaces, ()),
            ("Event", core.list_event_for_all_namespaces, ()),
            ("ConfigMap", core.list_config_map_for_all_namespaces, ()),
            ("Pod", core.list_pod_for_all_namespaces, ()),
            ("Deployment", apps.list_deployment_for_all_namespaces, ()),
            ("StatefulSet", apps.list_stateful_set_for_all_namespaces, ()),
            ("SyncCluster", custom.list_cluster_custom_object, ("synchro.dev", "v1alpha1", "syncclusters")),
        ]
        self.threads = [threading.Thread(target=self.follow, args=entry, daemon=True) for entry in self.lists]

    def start(self) -> LeakWatch:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for w in list(self.watches):
            w.stop()
        for t in self.threads:
            t.join(timeout=5)

    def follow(self, kind: str, list_fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        w = watch.Watch()
        self.watches.append(w)
        version = ""
        while not self.stopped.is_set():  # a watch the server closes (timeout, compaction) is opened again
            try:
                for event in w.stream(list_fn, *args, resource_version=version, timeout_seconds=60):
                    obj = event["object"]
                    body = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                    version = body["metadata"].get("resourceVersion", "")
                    self.keep(kind, body)
            except Exception:  # 410 Gone and friends: list again from now
                version = ""

    def keep(self, kind: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        with self.lock:
            if kind == "Secret":
                self.passwords |= passwords_of(body)
            else:
                key = f"{kind} {meta.get('namespace')}/{meta.get('name')}@{meta.get('resourceVersion')}"
                self.readable[key] = json.dumps(body)

    def leaks(self, logs: Iterable[Path]) -> list[str]:
        """Where a collected password shows in plain text."""
        with self.lock:
            texts = dict(self.readable)
            passwords = set(self.passwords)
        for path in logs:
            if path.exists():
                texts[f"log {path.name}"] = path.read_text(errors="replace")
        return [
            f"{where}: a password of {len(p)} characters"
            for where, text in texts.items()
            for p in passwords
            if p in text
        ]
