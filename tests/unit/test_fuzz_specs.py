"""Fuzzing: specs valid by the CRD's structural schema, through the real pass logic without a cluster.

A pass here is what reconcile.Reconciler.run does without I/O: api.parse, then decide.decide and decide.conclude
on a Snapshot of plain dicts (a drawn world: Redis up or not, Secrets and targets there or not), twice, the second
time with the first pass's writes landed. hypothesis draws a valid spec, then Gateway-API style one mutation:

- one of BREAKS, each breaking one rule of the CRD (a CEL rule, a pattern, a unique list key): parse must say
  SpecError, and the pass Ready=False, InvalidSpec with a message;
- one of MAYBE, free text where a rule applies: either outcome, but never an exception;
- none (the last test): the spec is served.

A served spec must be sound, judged on what comes out rather than by asking parse again: the parsed model keeps
its invariants, and every object the two passes write is one Kubernetes takes (names, labels, containers, env,
quantities). tests/structural.py checks that every drawn spec is valid by the structural schema, the claim above.
The examples are fixed (derandomize), so a failure reproduces, shrunk to the smallest spec.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_decide import BODY, PASSWORD, landed

from structural import SPEC_SCHEMA, errors
from synchro import api, conditions, presets
from synchro.conditions import Reason
from synchro.probe.protocol import CONTAINER as PROBE_CONTAINER
from synchro.reconcile import decide
from synchro.reconcile.model import ExternalSeen, ManagedSeen, Pass, Snapshot, TargetSeen, Write
from synchro.redis import managed
from synchro.redis.model import PingResult

NS = "ns"
S = st.SearchStrategy[Any]
# make test runs a fixed set of examples, in about four seconds. SYNCHRO_FUZZ_EXAMPLES=5000 runs that many new
# random ones instead, for a deeper search.
DEEPER = os.environ.get("SYNCHRO_FUZZ_EXAMPLES")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=int(DEEPER or examples),
        deadline=None,
        derandomize=not DEEPER,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ------------------------------------------------------------------ valid specs


def names(max_size: int = 20) -> S:
    """DNS labels: a lowercase letter, then lowercase letters, digits and '-', a letter or digit last."""
    middle = st.text(alphabet=string.ascii_lowercase + string.digits + "-", max_size=max(0, max_size - 2))
    tail = st.one_of(st.just(""), st.builds(str.__add__, middle, st.sampled_from("z09")))
    return st.builds(str.__add__, st.sampled_from(string.ascii_lowercase), tail)


def object_names() -> S:
    return st.builds(".".join, st.lists(names(12), min_size=1, max_size=3))


HOSTS = st.sampled_from(["cache", "redis.example.com", "10.0.0.7", "127.0.0.1", "[::1]", "[fe80::1]", "r_1"])
ENV_NAMES = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_uppercase + "_"),
    st.text(alphabet=string.ascii_uppercase + "_09", max_size=8),
)
KEYS = st.text(alphabet=string.ascii_letters + string.digits + "-._", min_size=1, max_size=12)
QUANTITIES = st.one_of(st.integers(0, 10**6), st.sampled_from(["500m", "1Gi", "2", "0.5", "1e3", "128Mi", "+1"]))


def url(parts: dict[str, str]) -> str:
    return "{scheme}://{user}{host}{port}{path}".format(**parts)


def url_parts() -> S:
    return st.fixed_dictionaries(
        {
            "scheme": st.sampled_from(["redis", "rediss"]),
            "user": st.sampled_from(["", "app@", "a%40b@"]),
            "host": HOSTS,
            "port": st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")),
            "path": st.one_of(st.just(""), st.just("/"), st.integers(0, 15).map(lambda d: f"/{d}")),
        }
    )


def key_ref(default_key: bool) -> S:
    if default_key:
        return st.fixed_dictionaries({"name": object_names()}, optional={"key": KEYS})
    return st.fixed_dictionaries({"name": object_names(), "key": KEYS}, optional={"optional": st.booleans()})


def value_from() -> S:
    field_path = st.sampled_from([*api.FIELD_PATHS, "metadata.labels['app']", "metadata.annotations['x/y']"])
    resource = st.sampled_from(["limits.cpu", "requests.memory", "limits.hugepages-2Mi"])
    return st.one_of(
        st.fixed_dictionaries({"configMapKeyRef": key_ref(False)}),
        st.fixed_dictionaries({"secretKeyRef": key_ref(False)}),
        st.fixed_dictionaries(
            {"fieldRef": st.fixed_dictionaries({"fieldPath": field_path}, optional={"apiVersion": st.just("v1")})}
        ),
        st.fixed_dictionaries(
            {
                "resourceFieldRef": st.fixed_dictionaries(
                    {"resource": resource}, optional={"containerName": names(10), "divisor": QUANTITIES}
                )
            }
        ),
    )


def targets() -> S:
    var = st.one_of(
        st.fixed_dictionaries({"name": ENV_NAMES}, optional={"value": st.text(max_size=12)}),
        st.fixed_dictionaries({"name": ENV_NAMES, "valueFrom": value_from()}),
    )
    containers = st.sampled_from(["app", "web", "c0", "metrics", PROBE_CONTAINER])
    target = st.fixed_dictionaries(
        {"name": object_names(), "preset": st.sampled_from(sorted(presets.PRESETS))},
        optional={
            "kind": st.sampled_from(api.TARGET_KINDS),
            "containers": st.lists(containers, max_size=3, unique=True),
            "env": st.lists(var, max_size=4, unique_by=lambda e: e["name"]),
        },
    )
    return st.lists(target, min_size=1, max_size=3, unique_by=lambda t: t["name"])


def redis() -> S:
    amounts = st.fixed_dictionaries({}, optional={r: QUANTITIES for r in api.RESOURCES})
    persistence = {
        "enabled": st.booleans(),
        "size": st.sampled_from(["1Gi", "10Mi", "1", "0.5Gi"]),
        "storageClassName": object_names(),
    }
    managed = {
        "image": st.sampled_from(["redis:7", "synchro.local/redis:7", "r.example:5000/redis@sha256:ab"]),
        "auth": st.booleans(),
        "resources": st.fixed_dictionaries({}, optional={"limits": amounts, "requests": amounts}),
        "persistence": st.fixed_dictionaries({}, optional=persistence),
    }
    tls = st.fixed_dictionaries({}, optional={"enabled": st.booleans(), "caSecretRef": key_ref(True)})
    external = st.fixed_dictionaries(
        {"url": url_parts().map(url)}, optional={"passwordSecretRef": key_ref(True), "tls": tls}
    )
    return st.one_of(
        st.fixed_dictionaries(
            {}, optional={"mode": st.just("Managed"), "managed": st.fixed_dictionaries({}, optional=managed)}
        ),
        st.fixed_dictionaries({"mode": st.just("External"), "external": external}),
    )


def seconds(n: int, draw: Any) -> str:
    """n seconds, in one of the units that say it exactly (a bare number is seconds)."""
    unit = draw(st.sampled_from([u for u, size in UNITS.items() if n % size == 0]))
    return f"{n // UNITS[unit]}{unit}"


UNITS = {"h": 3600, "m": 60, "s": 1, "": 1}


@st.composite
def probes(draw: Any) -> dict[str, Any]:
    interval = draw(st.integers(api.MIN_PROBE_INTERVAL_S + 1, api.MAX_PROBE_INTERVAL_S))
    timeout = draw(st.integers(api.MIN_PROBE_TIMEOUT_S, interval - 1))
    probe = {"interval": seconds(interval, draw), "timeout": seconds(timeout, draw)}
    return {**probe, **draw(st.fixed_dictionaries({}, optional={"sidecar": st.booleans()}))}


def specs() -> S:
    """Specs that follow every rule of the CRD."""
    prefix = st.builds(
        str.__add__, st.sampled_from("aZ9"), st.text(alphabet=string.ascii_letters + "09._:-", max_size=20)
    )
    return st.fixed_dictionaries(
        {"targets": targets()},
        optional={
            "replicas": st.integers(0, api.MAX_REPLICAS),
            "prefix": prefix,
            "redis": redis(),
            "probe": probes(),
            "deletionPolicy": st.sampled_from(api.DELETION_POLICIES),
        },
    )


def cluster_names() -> S:
    return names(api.MAX_MANAGED_NAME)  # good for a managed Redis too


# ------------------------------------------------------------------ one mutation that breaks a rule, or may

Draw = Callable[[S], Any]
BAD_NAMES = st.sampled_from(["", "Web", "my app", "a_b", "-a", "a-", "a..b", "é", "a.-b"])
BAD_DURATIONS = st.sampled_from(["-5s", "1y", "1.5s", "", "s", "10S", " 1s", "٣s", "1s\n", "10ms", "1h30m"])


def _target(draw: Draw, spec: dict[str, Any]) -> dict[str, Any]:
    target: dict[str, Any] = draw(st.sampled_from(spec["targets"]))
    return target


def _env(draw: Draw, spec: dict[str, Any], var: dict[str, Any]) -> None:
    _target(draw, spec).setdefault("env", []).append(var)


def _external(spec: dict[str, Any]) -> dict[str, Any]:
    redis = spec.get("redis") or {}
    if redis.get("mode") != "External":
        spec["redis"] = redis = {"mode": "External", "external": {"url": "redis://cache:6379/0"}}
    external: dict[str, Any] = redis["external"]
    return external


def _managed(spec: dict[str, Any]) -> dict[str, Any]:
    redis = spec.get("redis") or {}
    if redis.get("mode") == "External":
        redis = {"mode": "Managed"}
    spec["redis"] = redis
    managed: dict[str, Any] = redis.setdefault("managed", {})
    return managed


def _seconds(duration: str) -> int:
    return int(duration.rstrip("smh")) * UNITS.get(duration[-1], 1)


Mutation = Callable[[Draw, dict[str, Any]], "str | None"]  # changes the spec; may give the SyncCluster a new name
BREAKS: dict[str, Mutation] = {}  # each breaks one rule of the CRD: parse must say SpecError
MAYBE: dict[str, Mutation] = {}  # free text where a rule applies: it may break the rule or not


def mutation(table: dict[str, Mutation], name: str) -> Callable[[Mutation], Mutation]:
    def register(f: Mutation) -> Mutation:
        table[name] = f
        return f

    return register


@mutation(BREAKS, "cluster name")
def bad_cluster_name(draw: Draw, spec: dict[str, Any]) -> str:
    managed_only = ["1cache", "a" * 58, "my.cache", "x" * 63]  # a Service name must be a DNS label of 63
    return str(draw(st.sampled_from(["a" * 64, "b" * 70] + managed_only * is_managed(spec))))


@mutation(BREAKS, "target name")
def bad_target_name(draw: Draw, spec: dict[str, Any]) -> None:
    _target(draw, spec)["name"] = draw(BAD_NAMES)


@mutation(BREAKS, "duplicate target")
def duplicate_target(draw: Draw, spec: dict[str, Any]) -> None:
    spec["targets"].append({**_target(draw, spec), "preset": "generic"})


@mutation(BREAKS, "container name")
def bad_container(draw: Draw, spec: dict[str, Any]) -> None:
    bad = draw(st.sampled_from(["", "App", "a_b", "a.b", "-a"]))
    _target(draw, spec).setdefault("containers", []).append(bad)


@mutation(BREAKS, "duplicate container")
def duplicate_container(draw: Draw, spec: dict[str, Any]) -> None:
    containers = _target(draw, spec).setdefault("containers", [])
    containers += containers[:1] or ["app", "app"]


@mutation(BREAKS, "env name")
def bad_env_name(draw: Draw, spec: dict[str, Any]) -> None:
    _env(draw, spec, {"name": draw(st.sampled_from(["", "1X", "A=B", "A B", "é"]))})


@mutation(BREAKS, "duplicate env")
def duplicate_env(draw: Draw, spec: dict[str, Any]) -> None:
    env = _target(draw, spec).setdefault("env", [])
    env += [{"name": (env or [{"name": "X"}])[0]["name"], "value": "again"}] * (1 if env else 2)


@mutation(BREAKS, "env value and valueFrom")
def env_value_and_value_from(draw: Draw, spec: dict[str, Any]) -> None:
    _env(draw, spec, {"name": "BOTH", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})


@mutation(BREAKS, "valueFrom sources")
def value_from_sources(draw: Draw, spec: dict[str, Any]) -> None:
    two = {"fieldRef": {"fieldPath": "metadata.uid"}, "secretKeyRef": {"name": "s", "key": "k"}}
    _env(draw, spec, {"name": "VF", "valueFrom": draw(st.sampled_from([{}, two]))})


@mutation(BREAKS, "fieldPath")
def bad_field_path(draw: Draw, spec: dict[str, Any]) -> None:
    path = draw(st.sampled_from(["", "metadata.foo", "metadata.labels", "spec", "status.phase"]))
    _env(draw, spec, {"name": "FP", "valueFrom": {"fieldRef": {"fieldPath": path}}})


@mutation(BREAKS, "resourceFieldRef")
def bad_resource_field(draw: Draw, spec: dict[str, Any]) -> None:
    resource = draw(st.sampled_from(["limits.gpu", "cpu", "", "limits.cpu ", "requests.hugepages-"]))
    _env(draw, spec, {"name": "RF", "valueFrom": {"resourceFieldRef": {"resource": resource}}})


@mutation(BREAKS, "secret ref")
def bad_secret_ref(draw: Draw, spec: dict[str, Any]) -> None:
    refs = [{"name": "Auth"}, {"name": ""}, {"name": "auth", "key": "a/b"}, {"name": "auth", "key": ""}]
    _external(spec)["passwordSecretRef"] = draw(st.sampled_from(refs))


@mutation(BREAKS, "prefix")
def bad_prefix(draw: Draw, spec: dict[str, Any]) -> None:
    spec["prefix"] = draw(st.sampled_from(["", "my app", "app.*", ".x", "a\n", "é"]))


@mutation(BREAKS, "url")
def bad_url(draw: Draw, spec: dict[str, Any]) -> None:
    """A URL with one part that breaks a rule."""
    bad = {
        "scheme": st.sampled_from(["http", "redis+tls", "Redis", "unix"]),
        "user": st.sampled_from(["app:pw@", ":@", "u:p:q@", "a@b:c@"]),
        "host": st.sampled_from(["", "ca che", "a!b", "[", "[::1", "a%20b", "é", "-"]),
        "port": st.sampled_from([":0", ":65536", ":70000", ":99999999", ":http", ":-1", ":1:2", ": 1"]),
        "path": st.sampled_from(["/cache", "/0/", "/0?x=1", "#f", "/-1", "/0 ", "//0", "/0#"]),
    }
    parts, part = draw(url_parts()), draw(st.sampled_from(sorted(bad)))
    _external(spec)["url"] = url({**parts, part: draw(bad[part])})


@mutation(BREAKS, "redis modes")
def mixed_modes(draw: Draw, spec: dict[str, Any]) -> None:
    external = {"url": "redis://cache:6379/0"}
    mixed = [
        {"mode": "External"},
        {"mode": "External", "managed": {}},
        {"mode": "External", "external": external, "managed": {"auth": True}},
        {"mode": "Managed", "external": external},
        {"external": external},
    ]
    spec["redis"] = draw(st.sampled_from(mixed))


@mutation(BREAKS, "interval format")
def bad_interval(draw: Draw, spec: dict[str, Any]) -> None:
    spec.setdefault("probe", {})["interval"] = draw(BAD_DURATIONS)


@mutation(BREAKS, "timeout format")
def bad_timeout(draw: Draw, spec: dict[str, Any]) -> None:
    spec.setdefault("probe", {})["timeout"] = draw(BAD_DURATIONS)


@mutation(BREAKS, "interval range")
def interval_out_of_range(draw: Draw, spec: dict[str, Any]) -> None:
    spec.setdefault("probe", {})["interval"] = draw(st.sampled_from(["0s", "0", "0h", "3601", "61m", "2h", "9999h"]))


@mutation(BREAKS, "timeout not below interval")
def timeout_not_below_interval(draw: Draw, spec: dict[str, Any]) -> None:
    probe = spec.setdefault("probe", {})
    interval = _seconds(probe.get("interval", f"{api.DEFAULT_PROBE_INTERVAL_S}s"))
    probe["timeout"] = seconds(draw(st.integers(interval, api.MAX_PROBE_INTERVAL_S * 2)), draw)


@mutation(BREAKS, "image")
def bad_image(draw: Draw, spec: dict[str, Any]) -> None:
    _managed(spec)["image"] = draw(st.sampled_from(["", "redis 7", " redis", "redis\t7"]))


@mutation(BREAKS, "volume size")
def bad_size(draw: Draw, spec: dict[str, Any]) -> None:
    size = draw(st.sampled_from(["0", "-1Gi", "lots", "0Gi", "1 Gi"]))
    _managed(spec).setdefault("persistence", {})["size"] = size


@mutation(BREAKS, "resource quantity")
def bad_quantity(draw: Draw, spec: dict[str, Any]) -> None:
    amount = draw(st.sampled_from(["-1", "lots", "", "1Zi", -5]))
    _managed(spec).setdefault("resources", {})["limits"] = {"memory": amount}


@mutation(BREAKS, "managed replicas")
def bad_managed_replicas(draw: Draw, spec: dict[str, Any]) -> None:
    _managed(spec)["replicas"] = draw(st.sampled_from([2, 0, -1, -7]))


@mutation(BREAKS, "storage class")
def bad_storage_class(draw: Draw, spec: dict[str, Any]) -> None:
    _managed(spec).setdefault("persistence", {})["storageClassName"] = draw(BAD_NAMES)


@mutation(MAYBE, "free url")
def free_url(draw: Draw, spec: dict[str, Any]) -> None:
    _external(spec)["url"] = "redis://" + draw(st.text(max_size=30))


@mutation(MAYBE, "free prefix")
def free_prefix(draw: Draw, spec: dict[str, Any]) -> None:
    spec["prefix"] = draw(st.text(max_size=10))


@mutation(MAYBE, "free env name")
def free_env_name(draw: Draw, spec: dict[str, Any]) -> None:
    _env(draw, spec, {"name": draw(st.text(max_size=8))})


@mutation(MAYBE, "free duration")
def free_duration(draw: Draw, spec: dict[str, Any]) -> None:
    spec.setdefault("probe", {})["timeout"] = draw(st.text(max_size=7))


def is_managed(spec: dict[str, Any]) -> bool:
    return (spec.get("redis") or {}).get("mode", "Managed") == "Managed"


# ------------------------------------------------------------------ the world the pass sees


def mostly(usual: Any, *rare: Any) -> S:
    """The happy path most of the time, so that passes get far (to a probe plan) as often as they fail early."""
    return st.integers(0, 3 + len(rare)).map(lambda i: rare[i] if i < len(rare) else usual)


@st.composite
def worlds(draw: Any, spec: api.SyncClusterSpec) -> Snapshot:
    ping = draw(mostly(PingResult.answered(("10.0.0.5", 6379)), PingResult.unreachable("refused"), None))
    if spec.managed is not None:
        deployment = {"metadata": {"name": "x"}, "status": {"availableReplicas": draw(mostly(1, 0))}}
        name = managed.name(spec.name)
        live = {("Deployment", name): deployment, ("Service", name): {"spec": {"clusterIP": "10.96.0.9"}}}
        seen: ManagedSeen | ExternalSeen = ManagedSeen(draw(mostly(PASSWORD, None)), live, (), ping)
    else:
        assert spec.external is not None
        refs = [r for r in (spec.external.password, spec.external.ca) if r is not None]
        secret = {"metadata": {"uid": "s"}, "data": {r.key: "cHc=" for r in refs}}
        seen = ExternalSeen({r.name: draw(mostly(secret, None)) for r in refs}, ping)
    found = []
    for t in spec.targets:
        containers = sorted({*t.containers, "app"} - {PROBE_CONTAINER})
        present = draw(mostly(containers, ["app"]))
        found.append(TargetSeen(t, draw(mostly(workload_of(t, present), None)), draw(mostly(None, spec.name, "other"))))
    return Snapshot(BODY, spec, seen, tuple(found), {}, "synchro.local/operator:test")


def workload_of(target: api.Target, containers: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": target.kind,
        "metadata": {"name": target.name, "namespace": NS, "resourceVersion": "1", "generation": 1},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": c} for c in containers]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1},
    }


# ------------------------------------------------------------------ servable: what came out is sound


def invariants(name: str, spec: api.SyncClusterSpec) -> list[str]:
    """What a served spec must hold, read off the parsed model (not by asking parse again)."""
    found = []
    if not 1 <= spec.probe.timeout_s < spec.probe.interval_s <= 3600:
        found.append(f"probe timeout {spec.probe.timeout_s}s, interval {spec.probe.interval_s}s")
    if not (0 <= spec.replicas <= 1000 and spec.prefix and set(spec.prefix) <= PREFIX_CHARS and len(name) <= 63):
        found.append(f"replicas {spec.replicas}, prefix {spec.prefix!r}, name {name!r}")
    names = [t.name for t in spec.targets]
    if not 1 <= len(names) == len(set(names)) <= 32:
        found.append(f"targets {names}")
    for t in spec.targets:
        env = [e["name"] for e in t.env]
        if len(set(t.containers)) < len(t.containers) or len(set(env)) < len(env):
            found.append(f"{t.name}: containers {t.containers}, env {env}")
        found += [f"{t.name}: {e}" for e in t.env if env_problem(e)]
    ext = spec.external
    if ext is not None:
        if not (ext.host and ext.host.strip() == ext.host and 1 <= ext.port <= 65535 and ext.db >= 0):
            found.append(f"external {ext.host!r}:{ext.port}/{ext.db}")
        if urlsplit(ext.url).password is not None:
            found.append("a password in the URL")
    return found


PREFIX_CHARS = set(string.ascii_letters + string.digits + "._:-")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
QUANTITY = re.compile(r"[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")


def env_problem(var: Any) -> str:
    """Kubernetes' rules for one EnvVar (with its relaxed names: printable ASCII but '=')."""
    name = var.get("name", "")
    if not name or "=" in name or not all(" " <= c <= "~" for c in name):
        return f"env name {name!r}"
    if "value" in var and "valueFrom" in var:
        return f"{name}: value and valueFrom"
    source = var.get("valueFrom")
    if source is not None and len(source) != 1:
        return f"{name}: valueFrom {sorted(source)}"
    return ""


def quantity_problem(value: Any) -> str:
    ok = (isinstance(value, int) and value >= 0) or (isinstance(value, str) and QUANTITY.fullmatch(value))
    return "" if ok else f"quantity {value!r}"


def container_problems(containers: list[dict[str, Any]]) -> list[str]:
    found = []
    names = [c["name"] for c in containers]
    if len(set(names)) < len(names) or not all(DNS_LABEL.fullmatch(n) and len(n) <= 63 for n in names):
        found.append(f"containers {names}")
    for c in containers:
        env = [e["name"] for e in c.get("env", [])]
        if len(set(env)) < len(env):
            found.append(f"{c['name']}: env {env}")
        found += [p for p in map(env_problem, c.get("env", [])) if p]
        if "image" in c and (not c["image"] or c["image"] != "".join(c["image"].split())):
            found.append(f"image {c['image']!r}")
        found += [p for part in c.get("resources", {}).values() for p in map(quantity_problem, part.values()) if p]
    return found


def object_problems(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in an object the pass writes (names, labels, containers, env)."""
    meta, spec = obj["metadata"], obj.get("spec", {})
    name = meta["name"]
    found = [] if SUBDOMAIN.fullmatch(name) and len(name) <= 253 else [f"name {name!r}"]
    if obj["kind"] == "Service" and not (DNS_1035.fullmatch(name) and len(name) <= 63):
        found.append(f"Service name {name!r}")
    template = spec.get("template", {})
    selector = spec.get("selector", {})
    for labels in (meta.get("labels"), template.get("metadata", {}).get("labels"), selector.get("matchLabels")):
        found += [f"label {k}={v!r}" for k, v in (labels or {}).items() if not valid_label(v)]
    found += container_problems(template.get("spec", {}).get("containers", []))
    storage = spec.get("resources", {}).get("requests", {}).get("storage")
    if storage is not None and (quantity_problem(storage) or not storage.strip("+0.").rstrip("KMGTPEi")):
        found.append(f"storage {storage!r}")
    return found


def valid_label(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(LABEL_VALUE.fullmatch(value))


def check_pass(result: Pass) -> None:
    kinds = [c.type for c in result.conditions]
    assert kinds == [conditions.REDIS_READY, conditions.CONFIG_INJECTED, conditions.ROLLOUT_COMPLETE]
    assert all(c.message and c.reason != Reason.INVALID_SPEC for c in result.conditions)
    json.dumps(result.fields)
    if result.probe is not None:  # what the probe reads of the plan
        event("a probe plan")
        assert result.probe.desired_url and result.probe.timeout_s < result.probe.interval_s
        json.dumps([result.probe.expected_subscribers, result.probe.legacy_channels])


def land(seen: Snapshot, writes: tuple[Write, ...]) -> Snapshot:
    """The world after the writes were applied and rolled out."""
    by_target = {w.target: landed(w) for w in writes if w.target is not None}
    targets = tuple(
        dataclasses.replace(t, workload=by_target.get((t.target.kind, t.target.name), t.workload)) for t in seen.targets
    )
    redis = seen.redis
    if isinstance(redis, ManagedSeen):
        applied = {
            (w.obj["kind"], w.obj["metadata"]["name"]): {**w.obj, "status": {"availableReplicas": 1}}
            for w in writes
            if w.target is None
        }
        redis = dataclasses.replace(redis, live={**redis.live, **applied})
    return dataclasses.replace(seen, redis=redis, targets=targets)


def serve(name: str, spec: api.SyncClusterSpec, data: st.DataObject) -> None:
    """Two passes over a drawn world: nothing raises, the model holds, every write is sound."""
    assert invariants(name, spec) == []
    seen = data.draw(worlds(spec))
    for _ in range(2):
        decision = decide.decide(seen)
        failed = data.draw(st.sets(st.sampled_from([w.target for w in decision.writes if w.target] or [None])))
        check_pass(decide.conclude(decision, {k: (Reason.APPLY_FAILED, "422: refused") for k in failed if k}))
        for write in decision.writes:
            assert object_problems(write.obj) == [], write.obj
        seen = land(seen, decision.writes)


@pytest.mark.parametrize("what", sorted(BREAKS) + sorted(MAYBE))
@fuzz(15)
@given(name=cluster_names(), spec=specs(), data=st.data())
def test_a_spec_with_one_mutation_is_served_or_invalid_never_raised(
    what: str, name: str, spec: dict[str, Any], data: st.DataObject
) -> None:
    """A valid spec, then one mutation: one that breaks a rule (parse must say InvalidSpec), or free text where a
    rule applies (either outcome, but a served spec must be sound)."""
    name = (BREAKS | MAYBE)[what](data.draw, spec) or name
    assert errors(SPEC_SCHEMA, spec) == [], "the mutation broke the structural schema, not a rule"
    given_spec = copy.deepcopy(spec)
    try:
        parsed = api.parse(NS, name, spec)
    except api.SpecError as e:
        event(f"InvalidSpec after {what}")
        [ready] = decide.invalid(e).conditions
        assert (ready.type, ready.status, ready.reason) == (conditions.READY, False, Reason.INVALID_SPEC)
        assert ready.message
        return
    finally:
        assert spec == given_spec, "parse changed its input"
    assert what in MAYBE, f"parse served a spec that breaks a rule ({what})"
    event(f"served after {what}")
    serve(name, parsed, data)


@fuzz(60)
@given(name=cluster_names(), spec=specs(), data=st.data())
def test_a_spec_that_follows_every_rule_is_served(name: str, spec: dict[str, Any], data: st.DataObject) -> None:
    assert errors(SPEC_SCHEMA, spec) == []
    serve(name, api.parse(NS, name, spec), data)
