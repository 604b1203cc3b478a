"""The SyncCluster API: names, defaults and the parsed model. The CRD (synchro.crd) is built from this module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

GROUP = "synchro.dev"
VERSION = "v1alpha1"
KIND = "SyncCluster"
PLURAL = "syncclusters"
API_VERSION = f"{GROUP}/{VERSION}"

FIELD_MANAGER = "synchro"
CLUSTER_LABEL = f"{GROUP}/cluster"  # on target pods (the /scale selector) and managed objects
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # on target pod templates: a change rolls the pods
CLAIM_ANNOTATION = f"{GROUP}/claimed-by"  # on target workloads: which SyncCluster injects them
FINALIZER = f"{GROUP}/finalizer"

TARGET_KINDS = ("Deployment", "StatefulSet")
DEFAULT_KIND = TARGET_KINDS[0]
REDIS_MODES = ("Managed", "External")
DELETION_POLICIES = ("Delete", "Retain")

DEFAULT_REPLICAS = 1
DEFAULT_REDIS_IMAGE = "synchro.local/redis:7"
DEFAULT_PROBE_INTERVAL_S = 10
DEFAULT_PROBE_TIMEOUT_S = 2
REDIS_PORT = 6379
PASSWORD_KEY = "password"

Obj = dict[str, Any]  # a Kubernetes object as the API server sends it: plain JSON


class SpecError(ValueError):
    """The spec passed the schema but cannot be served (e.g. a URL that does not parse)."""


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class Target:
    name: str
    preset: str
    kind: str = DEFAULT_KIND
    containers: tuple[str, ...] = ()  # empty: every container of the pod
    env: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ExternalRedis:
    url: str
    host: str
    port: int
    db: int
    tls: bool
    username: str | None
    password: SecretRef | None
    ca: SecretRef | None


@dataclass(frozen=True)
class ManagedRedis:
    image: str = DEFAULT_REDIS_IMAGE
    auth: bool = True
    resources: Mapping[str, Any] = field(default_factory=dict)
    persistence_size: str | None = None  # None: emptyDir
    storage_class: str | None = None


@dataclass(frozen=True)
class Probe:
    sidecar: bool = True
    interval_s: int = DEFAULT_PROBE_INTERVAL_S
    timeout_s: int = DEFAULT_PROBE_TIMEOUT_S


@dataclass(frozen=True)
class SyncClusterSpec:
    namespace: str
    name: str
    replicas: int
    prefix: str
    targets: tuple[Target, ...]
    managed: ManagedRedis | None
    external: ExternalRedis | None
    probe: Probe
    retain_on_delete: bool

    @property
    def mode(self) -> str:
        return "External" if self.external else "Managed"


def default_prefix(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def parse_duration_s(value: str | int) -> int:
    if isinstance(value, int):
        return value
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units and value[:-1].isdigit():
        return int(value[:-1]) * units[value[-1]]
    if value.isdigit():
        return int(value)
    raise SpecError(f"cannot parse duration {value!r}: use e.g. 10s, 1m")


def parse_external(external: Mapping[str, Any]) -> ExternalRedis:
    url = external["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise SpecError(f"redis.external.url must start with redis:// or rediss://, got {parts.scheme}://")
    if parts.password:
        raise SpecError("redis.external.url must not carry a password: use redis.external.passwordSecretRef")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise SpecError(f"the database index in redis.external.url must be a number, got {path!r}")
    try:
        port = parts.port or REDIS_PORT
    except ValueError as e:
        raise SpecError(f"redis.external.url has a bad port: {e}") from None
    if not parts.hostname:
        raise SpecError("redis.external.url names no host")
    tls = external.get("tls") or {}
    password = external.get("passwordSecretRef")
    ca = tls.get("caSecretRef")
    return ExternalRedis(
        url=url,
        host=parts.hostname,
        port=port,
        db=int(path or 0),
        tls=parts.scheme == "rediss" or bool(tls.get("enabled")),
        username=unquote(parts.username) if parts.username else None,
        password=SecretRef(password["name"], password.get("key", PASSWORD_KEY)) if password else None,
        ca=SecretRef(ca["name"], ca.get("key", "ca.crt")) if ca else None,
    )


def parse_managed(managed: Mapping[str, Any]) -> ManagedRedis:
    persistence = managed.get("persistence") or {}
    return ManagedRedis(
        image=managed.get("image", DEFAULT_REDIS_IMAGE),
        auth=managed.get("auth", True),
        resources=managed.get("resources") or {},
        persistence_size=persistence.get("size") if persistence.get("enabled") else None,
        storage_class=persistence.get("storageClassName"),
    )


def parse(namespace: str, name: str, spec: Mapping[str, Any]) -> SyncClusterSpec:
    """The typed spec, with defaults. The schema has already rejected what it can; the rest raises SpecError."""
    redis = spec.get("redis") or {}
    mode = redis.get("mode", "Managed")
    probe = spec.get("probe") or {}
    external = parse_external(redis["external"]) if mode == "External" else None
    targets = tuple(
        Target(
            name=t["name"],
            preset=t["preset"],
            kind=t.get("kind", DEFAULT_KIND),
            containers=tuple(t.get("containers") or ()),
            env=tuple(t.get("env") or ()),
        )
        for t in spec.get("targets") or ()
    )
    return SyncClusterSpec(
        namespace=namespace,
        name=name,
        replicas=int(spec.get("replicas", DEFAULT_REPLICAS)),
        prefix=spec.get("prefix") or default_prefix(namespace, name),
        targets=targets,
        managed=parse_managed(redis.get("managed") or {}) if mode == "Managed" else None,
        external=external,
        probe=Probe(
            sidecar=probe.get("sidecar", True),
            interval_s=parse_duration_s(probe.get("interval", DEFAULT_PROBE_INTERVAL_S)),
            timeout_s=parse_duration_s(probe.get("timeout", DEFAULT_PROBE_TIMEOUT_S)),
        ),
        retain_on_delete=spec.get("deletionPolicy", "Delete") == "Retain",
    )
