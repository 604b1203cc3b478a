"""The SyncCluster API: names, defaults, the rules a spec follows, and the parsed model.

The CRD (synchro.crd) is built from this module. Each rule below is enforced twice with the same words: by the API
server, as a schema constraint or a CEL rule whose message is the `Msg` here, and again by `parse`, which raises
SpecError. A spec that reaches the operator without the first check (a CRD from an older release, an object stored
before a rule existed) still ends as `Ready=False, InvalidSpec`, never as an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

GROUP = "synchro.dev"
VERSION = "v1alpha1"
KIND = "SyncCluster"
PLURAL = "syncclusters"
API_VERSION = f"{GROUP}/{VERSION}"

FIELD_MANAGER = "synchro"
CLUSTER_LABEL = f"{GROUP}/cluster"  # on target pods (the /scale selector) and managed objects
# Secret types the operator does not watch (a server-side field selector): none holds a Redis password or CA.
UNWATCHED_SECRET_TYPES = (
    "helm.sh/release.v1",
    "kubernetes.io/service-account-token",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/dockercfg",
)
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"  # on target pod templates: a change rolls the pods
CLAIM_ANNOTATION = f"{GROUP}/claimed-by"  # on target workloads: which SyncCluster injects them
FINALIZER = f"{GROUP}/finalizer"
# On a SyncCluster with a managed Redis: a new value asks for new passwords (docs/synccluster.md)
ROTATE_PASSWORD_ANNOTATION = f"{GROUP}/rotate-password"

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
    """The spec cannot be served (e.g. a URL that carries a password). Its message says what to change."""


# ------------------------------------------------------------------ the rules

# Bounds. The schema states each one, and the API server needs them to bound the cost of its CEL rules.
MAX_REPLICAS = 1000
MAX_TARGETS = 32
MAX_CONTAINERS = 16
MAX_ENV = 64
MAX_OBJECT_NAME = 253  # a Kubernetes object name (DNS subdomain)
MAX_LABEL_VALUE = 63  # the SyncCluster's name is a label value on target pods and managed objects
MANAGED_SUFFIX = "-redis"  # managed Redis objects are <name>-redis; the Service's name is a DNS label
MAX_MANAGED_NAME = MAX_LABEL_VALUE - len(MANAGED_SUFFIX)
# With replicas, <name>-redis is a StatefulSet: its pods carry the label controller-revision-hash=<name>-redis-<hash
# of up to 10>, a label value of at most 63.
MAX_HA_NAME = MAX_LABEL_VALUE - 11 - len(MANAGED_SUFFIX)
MAX_CONTAINER_NAME = 63
MAX_ENV_NAME = 128
MAX_ENV_VALUE = 32768
MAX_FIELD = 253  # a Secret key, a fieldPath, a resource name, ...
MAX_PREFIX = 64
MAX_URL = 2048
MAX_IMAGE = 512
MAX_QUANTITY = 64
MAX_DURATION = 7  # characters: 999999h still fits a Go duration, which the CEL rules parse
MIN_PROBE_INTERVAL_S, MAX_PROBE_INTERVAL_S = 1, 3600
MIN_PROBE_TIMEOUT_S = 1
# A managed Redis's pods: one, or 3 or more, whose Sentinels keep a majority when one pod is lost.
DEFAULT_MANAGED_REPLICAS = 1
MIN_HA_REPLICAS = 3
MAX_MANAGED_REPLICAS = 9

# Regular expressions that read the same in RE2 (CEL) and Python: anchored at both ends, and without quotes (they
# sit inside CEL string literals, synchro.crd escapes their backslashes).
OBJECT_NAME_RE = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_RE = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SERVICE_NAME_RE = "^[a-z]([-a-z0-9]*[a-z0-9])?$"  # DNS-1035: what a Service's name must be
PREFIX_RE = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"
ENV_NAME_RE = "^[-._a-zA-Z][-._a-zA-Z0-9]*$"
KEY_RE = "^[-._a-zA-Z0-9]+$"
IMAGE_RE = "^[A-Za-z0-9][A-Za-z0-9._/:@-]*$"
DURATION_RE = "^[0-9]+[smh]?$"
URL_SCHEME_RE = "^rediss?://"
URL_PASSWORD_RE = "^[^/?#]*//[^/?#]*:[^/?#]*@"  # a colon in the userinfo, before the authority's last @
URL_PATH_RE = "^[^/?#]*//[^/?#]*(/[0-9]*)?$"  # nothing after the authority but /<db>
# The host, after any userinfo: a DNS name, an IPv4 address, or an IPv6 one in brackets.
URL_HOST_RE = (
    r"^[^:/?#]*://([^/?#]*@)?([A-Za-z0-9_]([-A-Za-z0-9_.]*[A-Za-z0-9_])?|\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\])"
    r"(:[^/?#@]*)?([/?#].*)?$"
)
PORT_RE = "^[0-9]{1,5}$"
QUANTITY_RE = "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
# Python only: the parts of a URL that passed URL_PATH_RE (the CEL rules read them with Kubernetes' url() library).
_URL_PARTS = re.compile(
    r"^(?P<scheme>rediss?)://(?:(?P<user>[^/?#]*)@)?(?P<host>\[[^]/?#]*\]|[^:/?#@[\]]*)"
    r"(?::(?P<port>[^/?#]*))?(?:/(?P<db>[0-9]*))?$"
)

VALUE_SOURCES = ("configMapKeyRef", "fieldRef", "resourceFieldRef", "secretKeyRef")
# What Kubernetes can put in an env var from the pod (EnvVarSource.fieldRef) and from a container's resources.
FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
FIELD_PATH_KEYED = ("metadata.labels[", "metadata.annotations[")  # then 'KEY']
RESOURCES = ("cpu", "memory", "ephemeral-storage")
RESOURCE_FIELD_RE = "^(limits|requests)[.](cpu|memory|ephemeral-storage|hugepages-[-a-zA-Z0-9]+)$"


class Msg:
    """What the API server and InvalidSpec say about a spec that breaks a rule. The API server puts the field's
    path in front (`spec.prefix: Invalid value: "string": ...`); parse does too (`spec.prefix: ...`)."""

    NAME = f"metadata.name must be at most {MAX_LABEL_VALUE} characters: it is a label value on target pods"
    MANAGED_NAME = (
        f"with a managed Redis, metadata.name must be a DNS label of at most {MAX_MANAGED_NAME} characters"
        " (a lowercase letter first, then lowercase letters, digits and '-'): its Service is <name>-redis"
    )
    OBJECT_NAME = (
        "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', a letter or digit at each end"
    )
    HA_NAME = (
        f"with redis.managed.replicas of {MIN_HA_REPLICAS} or more, metadata.name must be at most {MAX_HA_NAME}"
        " characters: its StatefulSet <name>-redis names a label value of its pods"
    )
    CONTAINER = "must be a container name: lowercase letters, digits and '-', a letter or digit at each end"
    ENV_NAME = "must be an environment variable name: letters, digits, '_', '-' and '.', not a digit first"
    ENV_VALUE_OR_FROM = "set value or valueFrom, not both"
    VALUE_FROM = "valueFrom must name exactly one of " + ", ".join(VALUE_SOURCES)
    KEY = "must be a key: letters, digits, '-', '_' and '.'"
    FIELD_PATH = (
        "must be a pod field Kubernetes can put in an env var: metadata.name, metadata.namespace, metadata.uid, "
        "metadata.labels['KEY'], metadata.annotations['KEY'], spec.nodeName, spec.serviceAccountName, "
        "status.hostIP(s) or status.podIP(s)"
    )
    RESOURCE_FIELD = (
        "must be limits.<resource> or requests.<resource>, of cpu, memory, ephemeral-storage or hugepages-<size>"
    )
    PREFIX = "prefix must start with a letter or digit and hold only letters, digits, '.', '_', ':' and '-'"
    URL_PASSWORD = "must not carry a password: put it in a Secret and name it in redis.external.passwordSecretRef"
    URL_DB = "the URL's path must be a database number, as in redis://redis:6379/0, with no query or fragment"
    URL_PORT = "the URL's port must be between 1 and 65535"
    URL_HOST = "the URL must name a host: a DNS name or an IP address"
    URL = "must be a URL of the form redis[s]://[user@]host[:port][/db]"
    DURATION = "must be a whole number of seconds, minutes or hours, such as 10s, 2m or 1h"
    INTERVAL = f"probe.interval must be between {MIN_PROBE_INTERVAL_S}s and {MAX_PROBE_INTERVAL_S // 3600}h"
    TIMEOUT = f"probe.timeout must be at least {MIN_PROBE_TIMEOUT_S}s and shorter than probe.interval"
    QUANTITY = "must be a quantity such as 500m, 2 or 1Gi"
    SIZE = "must be a positive quantity such as 1Gi"
    IMAGE = "must be an image reference such as redis:7, with no spaces"
    MANAGED_REPLICAS = (
        f"redis.managed.replicas must be 1 (one Redis pod, no failover) or {MIN_HA_REPLICAS} or more (replicas and"
        " Sentinels that keep a majority when one pod is lost); 2 cannot fail over"
    )
    EXTERNAL_NEEDS_URL = "redis.mode External needs redis.external.url"
    EXTERNAL_NO_MANAGED = "redis.mode External takes no redis.managed fields"
    MANAGED_NO_EXTERNAL = "redis.mode Managed takes no redis.external fields; set mode: External to adopt a Redis"


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
    replicas: int = DEFAULT_MANAGED_REPLICAS  # MIN_HA_REPLICAS or more: a StatefulSet with Sentinels (redis.ha)

    @property
    def ha(self) -> bool:
        return self.replicas >= MIN_HA_REPLICAS


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


# ------------------------------------------------------------------ parse: typed fields, each rule once more

T = TypeVar("T")
_REQUIRED: Any = object()
_KINDS: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}


def _get(obj: Mapping[str, Any], key: str, where: str, kind: type[T], default: T = _REQUIRED) -> T:
    """obj[key] if it has the type the schema gives it; absent or null: the default (SpecError if required)."""
    value = obj.get(key)
    if value is None:
        if default is _REQUIRED:
            raise SpecError(f"{where}.{key}: Required value")
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(f"{where}.{key}: must be {_KINDS.get(kind, kind.__name__)}, got {type(value).__name__}")
    return value


def _objects(obj: Mapping[str, Any], key: str, where: str, limit: int) -> list[Mapping[str, Any]]:
    items = _get(obj, key, where, list, [])
    if len(items) > limit:
        raise SpecError(f"{where}.{key}: Too many: {len(items)}: must have at most {limit} items")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise SpecError(f"{where}.{key}[{i}]: must be an object, got {type(item).__name__}")
    return items


def _matching(value: str, where: str, pattern: str, message: str, limit: int) -> str:
    if len(value) > limit:
        raise SpecError(f"{where}: Too long: may not be more than {limit} characters")
    if not re.fullmatch(pattern, value):
        raise SpecError(f"{where}: {message}, got {value!r}")
    return value


def _string(obj: Mapping[str, Any], key: str, where: str, pattern: str, message: str, limit: int) -> str:
    return _matching(_get(obj, key, where, str), f"{where}.{key}", pattern, message, limit)


def _text(obj: Mapping[str, Any], key: str, where: str, limit: int, default: str = _REQUIRED) -> str:
    value = _get(obj, key, where, str, default)
    if len(value) > limit:
        raise SpecError(f"{where}.{key}: Too long: may not be more than {limit} characters")
    return value


def _choice(obj: Mapping[str, Any], key: str, where: str, allowed: Sequence[str], default: str = _REQUIRED) -> str:
    value = _get(obj, key, where, str, default)
    if value not in allowed:
        raise SpecError(f'{where}.{key}: Unsupported value: "{value}": supported values: {", ".join(allowed)}')
    return value


def _unique(names: Sequence[str], where: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SpecError(f'{where}[{i}]: Duplicate value: "{name}"')


def default_prefix(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def parse_duration_s(value: str | int, where: str = "duration") -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or len(value) > MAX_DURATION or not re.fullmatch(DURATION_RE, value):
        raise SpecError(f"{where}: {Msg.DURATION}, got {value!r}")
    units = {"s": 1, "m": 60, "h": 3600}
    if value[-1] in units:
        return int(value[:-1]) * units[value[-1]]
    return int(value)


def parse_probe(probe: Mapping[str, Any]) -> Probe:
    where = "spec.probe"
    interval = parse_duration_s(probe.get("interval", DEFAULT_PROBE_INTERVAL_S), f"{where}.interval")
    timeout = parse_duration_s(probe.get("timeout", DEFAULT_PROBE_TIMEOUT_S), f"{where}.timeout")
    if not MIN_PROBE_INTERVAL_S <= interval <= MAX_PROBE_INTERVAL_S:
        raise SpecError(f"{where}: {Msg.INTERVAL}, got {interval}s")
    if not MIN_PROBE_TIMEOUT_S <= timeout < interval:
        raise SpecError(f"{where}: {Msg.TIMEOUT}, got timeout {timeout}s and interval {interval}s")
    return Probe(sidecar=_get(probe, "sidecar", where, bool, True), interval_s=interval, timeout_s=timeout)


# ------------------------------------------------------------------ parse: Redis


def _secret_ref(obj: Mapping[str, Any], key: str, where: str, default_key: str) -> SecretRef | None:
    ref = _get(obj, key, where, dict, {})
    if not ref:
        return None
    where = f"{where}.{key}"
    name = _string(ref, "name", where, OBJECT_NAME_RE, Msg.OBJECT_NAME, MAX_OBJECT_NAME)
    ref_key = _matching(_get(ref, "key", where, str, default_key), f"{where}.key", KEY_RE, Msg.KEY, MAX_FIELD)
    return SecretRef(name, ref_key)


def _url_parts(url: str, where: str) -> re.Match[str]:
    """The rules on redis.external.url, in the order the CRD states them. No message quotes the URL: it may hold a
    password where none belongs (a query), and the message goes into status."""
    if len(url) > MAX_URL:
        raise SpecError(f"{where}: Too long: may not be more than {MAX_URL} characters")
    if not re.match(URL_SCHEME_RE, url):
        raise SpecError(f"{where}: must start with redis:// or rediss://")
    if re.match(URL_PASSWORD_RE, url):
        raise SpecError(f"{where}: {Msg.URL_PASSWORD}")
    if not re.fullmatch(URL_PATH_RE, url):
        raise SpecError(f"{where}: {Msg.URL_DB}")
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:
        raise SpecError(f"{where}: {Msg.URL}")
    if not re.fullmatch(URL_HOST_RE, url):
        raise SpecError(f"{where}: {Msg.URL_HOST}")
    port = parts["port"] or ""
    if not re.fullmatch("[0-9]*", port):  # Kubernetes' url() does not parse it either
        raise SpecError(f"{where}: {Msg.URL}")
    if port and not (re.fullmatch(PORT_RE, port) and 1 <= int(port) <= 65535):
        raise SpecError(f"{where}: {Msg.URL_PORT}, got {port!r}")
    return parts


def parse_external(external: Mapping[str, Any]) -> ExternalRedis:
    where = "spec.redis.external"
    url = _get(external, "url", where, str)
    parts = _url_parts(url, f"{where}.url")
    tls = _get(external, "tls", where, dict, {})
    return ExternalRedis(
        url=url,
        host=parts["host"].strip("[]").lower(),
        port=int(parts["port"] or REDIS_PORT),
        db=int(parts["db"] or 0),
        tls=parts["scheme"] == "rediss" or _get(tls, "enabled", f"{where}.tls", bool, False),
        username=unquote(parts["user"]) if parts["user"] else None,
        password=_secret_ref(external, "passwordSecretRef", where, PASSWORD_KEY),
        ca=_secret_ref(tls, "caSecretRef", f"{where}.tls", "ca.crt"),
    )


def _quantity(value: Any, where: str, message: str, positive: bool) -> str:
    """A Kubernetes quantity (an integer is one too), not negative; with `positive`, not zero either."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    found = re.fullmatch(QUANTITY_RE, text) if isinstance(text, str) and len(text) <= MAX_QUANTITY else None
    if found is None:
        raise SpecError(f"{where}: {message}, got {value!r}")
    zero = not found[1].strip("0.")
    if (text.startswith("-") and not zero) or (positive and (zero or text.startswith("-"))):
        raise SpecError(f"{where}: {message}, got {value!r}")
    return text


def _resources(managed: Mapping[str, Any], where: str) -> dict[str, Any]:
    resources = _get(managed, "resources", where, dict, {})
    checked: dict[str, Any] = {}
    for part in ("limits", "requests"):
        amounts = _get(resources, part, f"{where}.resources", dict, {})
        unknown = sorted(set(amounts) - set(RESOURCES))
        if unknown:
            raise SpecError(f"{where}.resources.{part}: unknown resource {unknown[0]!r}: use {', '.join(RESOURCES)}")
        if amounts:
            checked[part] = {
                k: _quantity(v, f"{where}.resources.{part}.{k}", Msg.QUANTITY, False) for k, v in amounts.items()
            }
    return checked


def _managed_replicas(managed: Mapping[str, Any], where: str) -> int:
    replicas = _get(managed, "replicas", where, int, DEFAULT_MANAGED_REPLICAS)
    if replicas > MAX_MANAGED_REPLICAS:
        raise SpecError(f"{where}.replicas: must be less than or equal to {MAX_MANAGED_REPLICAS}, got {replicas}")
    if replicas != 1 and replicas < MIN_HA_REPLICAS:
        raise SpecError(f"{where}.replicas: {Msg.MANAGED_REPLICAS}, got {replicas}")
    return replicas


def parse_managed(managed: Mapping[str, Any]) -> ManagedRedis:
    where = "spec.redis.managed"
    persistence = _get(managed, "persistence", where, dict, {})
    image = _matching(
        _get(managed, "image", where, str, DEFAULT_REDIS_IMAGE), f"{where}.image", IMAGE_RE, Msg.IMAGE, MAX_IMAGE
    )
    size = _quantity(persistence.get("size", "1Gi"), f"{where}.persistence.size", Msg.SIZE, True)
    storage_class = persistence.get("storageClassName")
    if storage_class is not None:
        _string(
            persistence, "storageClassName", f"{where}.persistence", OBJECT_NAME_RE, Msg.OBJECT_NAME, MAX_OBJECT_NAME
        )
    return ManagedRedis(
        replicas=_managed_replicas(managed, where),
        image=image,
        auth=_get(managed, "auth", where, bool, True),
        resources=_resources(managed, where),
        persistence_size=size if _get(persistence, "enabled", f"{where}.persistence", bool, False) else None,
        storage_class=storage_class,
    )


def parse_redis(spec: Mapping[str, Any]) -> tuple[ManagedRedis | None, ExternalRedis | None]:
    redis = _get(spec, "redis", "spec", dict, {})
    mode = _choice(redis, "mode", "spec.redis", REDIS_MODES, "Managed")
    if mode == "External":
        if redis.get("external") is None:
            raise SpecError(f"spec.redis: {Msg.EXTERNAL_NEEDS_URL}")
        if redis.get("managed") is not None:
            raise SpecError(f"spec.redis: {Msg.EXTERNAL_NO_MANAGED}")
        return None, parse_external(_get(redis, "external", "spec.redis", dict))
    if redis.get("external") is not None:
        raise SpecError(f"spec.redis: {Msg.MANAGED_NO_EXTERNAL}")
    return parse_managed(_get(redis, "managed", "spec.redis", dict, {})), None


# ------------------------------------------------------------------ parse: targets


def _value_from(source: Mapping[str, Any], where: str) -> None:
    named = [k for k in VALUE_SOURCES if source.get(k) is not None]
    if len(named) != 1:
        raise SpecError(f"{where}: {Msg.VALUE_FROM}, got {', '.join(sorted(source)) or 'none'}")
    at = f"{where}.{named[0]}"
    ref = _get(source, named[0], where, dict)
    if named[0] in ("configMapKeyRef", "secretKeyRef"):
        _string(ref, "name", at, OBJECT_NAME_RE, Msg.OBJECT_NAME, MAX_OBJECT_NAME)
        _string(ref, "key", at, KEY_RE, Msg.KEY, MAX_FIELD)
        _get(ref, "optional", at, bool, False)
    elif named[0] == "fieldRef":
        path = _text(ref, "fieldPath", at, MAX_FIELD)
        if path not in FIELD_PATHS and not (path.startswith(FIELD_PATH_KEYED) and path.endswith("]")):
            raise SpecError(f"{at}.fieldPath: {Msg.FIELD_PATH}, got {path!r}")
        _choice(ref, "apiVersion", at, ("v1",), "v1")
    else:
        _string(ref, "resource", at, RESOURCE_FIELD_RE, Msg.RESOURCE_FIELD, MAX_FIELD)
        if ref.get("containerName") is not None:
            _string(ref, "containerName", at, DNS_LABEL_RE, Msg.CONTAINER, MAX_CONTAINER_NAME)
        if ref.get("divisor") is not None:
            _quantity(ref["divisor"], f"{at}.divisor", Msg.QUANTITY, False)


def parse_env(target: Mapping[str, Any], where: str) -> tuple[Mapping[str, Any], ...]:
    env = _objects(target, "env", where, MAX_ENV)
    names = []
    for i, var in enumerate(env):
        at = f"{where}.env[{i}]"
        names.append(_string(var, "name", at, ENV_NAME_RE, Msg.ENV_NAME, MAX_ENV_NAME))
        _text(var, "value", at, MAX_ENV_VALUE, "")
        if var.get("value") is not None and var.get("valueFrom") is not None:
            raise SpecError(f"{at}: {Msg.ENV_VALUE_OR_FROM}")
        if var.get("valueFrom") is not None:
            _value_from(_get(var, "valueFrom", at, dict), f"{at}.valueFrom")
    _unique(names, f"{where}.env")
    return tuple(env)


def parse_target(target: Mapping[str, Any], where: str) -> Target:
    from synchro import presets  # presets imports this module

    containers = _get(target, "containers", where, list, [])
    if len(containers) > MAX_CONTAINERS:
        raise SpecError(f"{where}.containers: Too many: {len(containers)}: must have at most {MAX_CONTAINERS} items")
    for i, c in enumerate(containers):
        if not isinstance(c, str):
            raise SpecError(f"{where}.containers[{i}]: must be a string, got {type(c).__name__}")
        _matching(c, f"{where}.containers[{i}]", DNS_LABEL_RE, Msg.CONTAINER, MAX_CONTAINER_NAME)
    _unique(containers, f"{where}.containers")
    return Target(
        name=_string(target, "name", where, OBJECT_NAME_RE, Msg.OBJECT_NAME, MAX_OBJECT_NAME),
        preset=_choice(target, "preset", where, sorted(presets.PRESETS)),
        kind=_choice(target, "kind", where, TARGET_KINDS, DEFAULT_KIND),
        containers=tuple(containers),
        env=parse_env(target, where),
    )


def parse_targets(spec: Mapping[str, Any]) -> tuple[Target, ...]:
    targets = _objects(spec, "targets", "spec", MAX_TARGETS)
    if not targets:
        raise SpecError("spec.targets: should have at least 1 items")
    parsed = tuple(parse_target(t, f"spec.targets[{i}]") for i, t in enumerate(targets))
    _unique([t.name for t in parsed], "spec.targets")
    return parsed


def check_name(name: str, managed: ManagedRedis | None) -> None:
    if len(name) > MAX_LABEL_VALUE:
        raise SpecError(f"metadata.name: {Msg.NAME}")
    if managed and (len(name) > MAX_MANAGED_NAME or not re.fullmatch(SERVICE_NAME_RE, name)):
        raise SpecError(f"metadata.name: {Msg.MANAGED_NAME}")
    if managed and managed.ha and len(name) > MAX_HA_NAME:
        raise SpecError(f"metadata.name: {Msg.HA_NAME}")


def parse(namespace: str, name: str, spec: Mapping[str, Any]) -> SyncClusterSpec:
    """The typed spec, with defaults; SpecError for anything that cannot be served, whatever the JSON."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"spec: must be an object, got {type(spec).__name__}")
    managed, external = parse_redis(spec)
    check_name(name, managed)
    replicas = _get(spec, "replicas", "spec", int, DEFAULT_REPLICAS)
    if not 0 <= replicas <= MAX_REPLICAS:
        raise SpecError(f"spec.replicas: must be between 0 and {MAX_REPLICAS}, got {replicas}")
    prefix = spec.get("prefix")
    return SyncClusterSpec(
        namespace=namespace,
        name=name,
        replicas=replicas,
        prefix=default_prefix(namespace, name)
        if prefix is None
        else _string(spec, "prefix", "spec", PREFIX_RE, Msg.PREFIX, MAX_PREFIX),
        targets=parse_targets(spec),
        managed=managed,
        external=external,
        probe=parse_probe(_get(spec, "probe", "spec", dict, {})),
        retain_on_delete=_choice(spec, "deletionPolicy", "spec", DELETION_POLICIES, "Delete") == "Retain",
    )
