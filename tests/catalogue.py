"""A catalogue of invalid SyncClusters, in the style of Gateway API's CEL tests: a valid base, one mutation per
row, and what must be said about it.

- tests/integration/test_bad_input_apiserver.py creates every row against the real kube-apiserver and expects the 422
  answer's message to contain `server`;
- tests/unit/test_bad_input.py expects `api.parse` to raise SpecError containing `parse` (by default the same
  words): a spec that reaches the operator without the API server's check still ends as `InvalidSpec`.

Where the API server's words come from the CRD's own CEL rules, both sides use `api.Msg`, so a row fails when its
rule is removed from `synchro.crd` or from `api.parse`. GOOD lists edge cases both must accept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synchro import api
from synchro.api import Msg

BASE: dict[str, Any] = {
    "apiVersion": api.API_VERSION,
    "kind": api.KIND,
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "prefix": "web",
        "redis": {
            "mode": "External",
            "external": {
                "url": "redis://cache.example:6379/0",
                "passwordSecretRef": {"name": "redis-auth", "key": "password"},
                "tls": {"enabled": False},
            },
        },
        "targets": [
            {
                "name": "web",
                "kind": "Deployment",
                "preset": "generic",
                "containers": ["app"],
                "env": [
                    {"name": "LOG_LEVEL", "value": "debug"},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ],
            }
        ],
        "probe": {"sidecar": True, "interval": "10s", "timeout": "2s"},
        "deletionPolicy": "Delete",
    },
}

Edit = Callable[[dict[str, Any]], None]


def _parent(body: dict[str, Any], path: str) -> tuple[Any, str | int]:
    *steps, last = [int(s) if s.isdigit() else s for s in path.split(".")]
    node: Any = body
    for step in steps:
        node = node[step]
    return node, last


def put(path: str, value: Any) -> Edit:
    """Set the field at a dotted path (list indexes as numbers): `put("spec.targets.0.name", "x")`."""

    def edit(body: dict[str, Any]) -> None:
        node, last = _parent(body, path)
        node[last] = copy.deepcopy(value)

    return edit


def drop(path: str) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        node, last = _parent(body, path)
        del node[last]

    return edit


# A managed Redis instead of the base's external one, with every field set.
MANAGED = put(
    "spec.redis",
    {
        "mode": "Managed",
        "managed": {
            "image": "redis:7.4",
            "auth": True,
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "256Mi"}},
            "persistence": {"enabled": True, "size": "1Gi", "storageClassName": "local-path"},
        },
    },
)


@dataclass(frozen=True)
class Row:
    id: str
    edits: tuple[Edit, ...]
    server: str  # a substring of the API server's answer
    parse: str = ""  # a substring of api.parse's SpecError; empty: the same as `server`
    at: str = ""  # the field both name, where the same words could be said of several fields

    def body(self) -> dict[str, Any]:
        body = copy.deepcopy(BASE)
        for edit in self.edits:
            edit(body)
        return body

    @property
    def parse_says(self) -> str:
        return self.parse or self.server


def row(id: str, *edits: Edit, server: str, parse: str = "", at: str = "") -> Row:
    return Row(id, edits, server, parse, at)


def _target(i: int) -> dict[str, str]:
    return {"name": f"web-{i}", "preset": "generic"}


MUST_BE_INTEGER = "must be an integer"
MUST_BE_BOOLEAN = "must be true or false"

URL = "spec.redis.external.url"
PROBE = "spec.probe"
T0 = "spec.targets[0]"
SECRET = "spec.redis.external.passwordSecretRef"

BAD: list[Row] = [
    # ------------------------------------------------------------ wrong types and enum values
    row("replicas is a string", put("spec.replicas", "three"), server="must be of type integer", parse=MUST_BE_INTEGER),
    row("replicas is negative", put("spec.replicas", -1), server="greater than or equal to 0", parse="between 0 and"),
    row("replicas above 1000", put("spec.replicas", 1001), server="less than or equal to 1000", parse="between 0 and"),
    row(
        "targets is an object",
        put("spec.targets", _target(0)),
        server="must be of type array",
        parse="must be a list",
        at="spec.targets",
    ),
    row(
        "sidecar is a string",
        put("spec.probe.sidecar", "yes"),
        server="must be of type boolean",
        parse=MUST_BE_BOOLEAN,
        at="spec.probe.sidecar",
    ),
    row(
        "tls.enabled is a number",
        put("spec.redis.external.tls.enabled", 1),
        server="must be of type boolean",
        parse=MUST_BE_BOOLEAN,
        at="spec.redis.external.tls.enabled",
    ),
    row(
        "auth is a string",
        MANAGED,
        put("spec.redis.managed.auth", "no"),
        server="must be of type boolean",
        parse=MUST_BE_BOOLEAN,
        at="spec.redis.managed.auth",
    ),
    row("unknown preset", put("spec.targets.0.preset", "wordpress"), server='Unsupported value: "wordpress"'),
    row("unknown workload kind", put("spec.targets.0.kind", "DaemonSet"), server='Unsupported value: "DaemonSet"'),
    row("unknown redis mode", put("spec.redis.mode", "Cluster"), server='Unsupported value: "Cluster"'),
    row("unknown deletionPolicy", put("spec.deletionPolicy", "Orphan"), server='Unsupported value: "Orphan"'),
    row("no targets", drop("spec.targets"), server="spec.targets: Required value", parse="at least 1 items"),
    row("empty targets", put("spec.targets", []), server="should have at least 1 items"),
    row("target without a preset", drop("spec.targets.0.preset"), server="Required value", at=f"{T0}.preset"),
    row("Secret ref without a name", drop(f"{SECRET}.name"), server="Required value", at=f"{SECRET}.name"),
    # ------------------------------------------------------------ names: empty, over-long, malformed
    row("name over 63 characters", put("metadata.name", "a" * 64), server=Msg.NAME),
    row("managed Redis, name over 57 characters", MANAGED, put("metadata.name", "a" * 58), server=Msg.MANAGED_NAME),
    row("managed Redis, a dot in the name", MANAGED, put("metadata.name", "my.cache"), server=Msg.MANAGED_NAME),
    row("managed Redis, name starts with a digit", MANAGED, put("metadata.name", "1cache"), server=Msg.MANAGED_NAME),
    row("empty target name", put("spec.targets.0.name", ""), server=Msg.OBJECT_NAME, at=f"{T0}.name"),
    row("target name over 253 characters", put("spec.targets.0.name", "a" * 254), server="Too long", at=f"{T0}.name"),
    row("uppercase target name", put("spec.targets.0.name", "Web"), server=Msg.OBJECT_NAME, at=f"{T0}.name"),
    row("target name with a space", put("spec.targets.0.name", "my app"), server=Msg.OBJECT_NAME, at=f"{T0}.name"),
    row("empty container name", put("spec.targets.0.containers", [""]), server=Msg.CONTAINER, at=f"{T0}.containers[0]"),
    row(
        "container name over 63 characters",
        put("spec.targets.0.containers", ["a" * 64]),
        server="Too long",
        at=f"{T0}.containers[0]",
    ),
    row(
        "container name with an underscore",
        put("spec.targets.0.containers", ["my_app"]),
        server=Msg.CONTAINER,
        at=f"{T0}.containers[0]",
    ),
    row("empty env name", put("spec.targets.0.env.0.name", ""), server=Msg.ENV_NAME, at=f"{T0}.env[0].name"),
    row("env name starts with a digit", put("spec.targets.0.env.0.name", "1VAR"), server=Msg.ENV_NAME),
    row("env name with '='", put("spec.targets.0.env.0.name", "A=B"), server=Msg.ENV_NAME),
    row("uppercase Secret name", put(f"{SECRET}.name", "Redis-Auth"), server=Msg.OBJECT_NAME, at=f"{SECRET}.name"),
    row("Secret key with a slash", put(f"{SECRET}.key", "pass/word"), server=Msg.KEY, at=f"{SECRET}.key"),
    row(
        "uppercase storage class",
        MANAGED,
        put("spec.redis.managed.persistence.storageClassName", "Fast"),
        server=Msg.OBJECT_NAME,
        at="spec.redis.managed.persistence.storageClassName",
    ),
    # ------------------------------------------------------------ prefix
    row("prefix with a space", put("spec.prefix", "my app"), server=Msg.PREFIX),
    row("prefix with *", put("spec.prefix", "app.*"), server=Msg.PREFIX),
    row("prefix starting with a dot", put("spec.prefix", ".app"), server=Msg.PREFIX),
    row("empty prefix", put("spec.prefix", ""), server=Msg.PREFIX),
    row("prefix over 64 characters", put("spec.prefix", "a" * 65), server="Too long", at="spec.prefix"),
    # ------------------------------------------------------------ the external Redis URL
    row(
        "http URL",
        put(URL, "http://cache:6379/0"),
        server="should match '^rediss?://'",
        parse="must start with redis:// or rediss://",
    ),
    row("password in the URL", put(URL, "redis://app:s3cret@cache:6379/0"), server=Msg.URL_PASSWORD),
    row("empty password in the URL", put(URL, "redis://app:@cache:6379/0"), server=Msg.URL_PASSWORD),
    row("path that is not a db number", put(URL, "redis://cache:6379/cache"), server=Msg.URL_DB),
    row("query in the URL", put(URL, "redis://cache:6379/0?timeout=5"), server=Msg.URL_DB),
    row("db path with a trailing slash", put(URL, "redis://cache:6379/0/"), server=Msg.URL_DB),
    row("port 0", put(URL, "redis://cache:0/0"), server=Msg.URL_PORT),
    row("port 70000", put(URL, "redis://cache:70000/0"), server=Msg.URL_PORT),
    row("port that is not a number", put(URL, "redis://cache:http/0"), server=Msg.URL),
    row("URL without a host", put(URL, "redis:///0"), server=Msg.URL_HOST),
    row("host with a space", put(URL, "redis://ca che:6379/0"), server=Msg.URL, parse=Msg.URL_HOST),
    row("URL over 2048 characters", put(URL, "redis://" + "a" * 2041 + "/0"), server="Too long", at=URL),
    row("External without external", drop("spec.redis.external"), server=Msg.EXTERNAL_NEEDS_URL),
    row("Managed with external", put("spec.redis.mode", "Managed"), server=Msg.MANAGED_NO_EXTERNAL),
    row("External with managed", put("spec.redis.managed", {"auth": True}), server=Msg.EXTERNAL_NO_MANAGED),
    # ------------------------------------------------------------ the probe's durations
    row("interval -5s", put("spec.probe.interval", "-5s"), server=Msg.DURATION, at=f"{PROBE}.interval"),
    row("interval 1y", put("spec.probe.interval", "1y"), server=Msg.DURATION, at=f"{PROBE}.interval"),
    row("timeout 1.5s", put("spec.probe.timeout", "1.5s"), server=Msg.DURATION, at=f"{PROBE}.timeout"),
    row(
        "interval over 7 characters",
        put("spec.probe.interval", "10000000s"),
        server="Too long",
        parse=Msg.DURATION,
        at=f"{PROBE}.interval",
    ),
    row("interval 0s", put("spec.probe.interval", "0s"), put("spec.probe.timeout", "0s"), server=Msg.INTERVAL),
    row("interval 2h", put("spec.probe.interval", "2h"), server=Msg.INTERVAL),
    row("timeout equal to the interval", put("spec.probe.timeout", "10s"), server=Msg.TIMEOUT),
    row("timeout above the interval", put("spec.probe.timeout", "1m"), server=Msg.TIMEOUT),
    row(
        "timeout equal, in bare seconds",
        put("spec.probe.interval", "5"),
        put("spec.probe.timeout", "5s"),
        server=Msg.TIMEOUT,
    ),
    row("timeout 0s", put("spec.probe.timeout", "0s"), server=Msg.TIMEOUT),
    # ------------------------------------------------------------ lists
    row("1,000 targets", put("spec.targets", [_target(i) for i in range(1000)]), server="must have at most 32 items"),
    row(
        "two targets with one name",
        put("spec.targets", [_target(1), _target(1)]),
        server="Duplicate value",
        at="spec.targets[1]",
    ),
    row(
        "a container named twice",
        put("spec.targets.0.containers", ["app", "app"]),
        server='Duplicate value: "app"',
        at=f"{T0}.containers[1]",
    ),
    row(
        "17 containers",
        put("spec.targets.0.containers", [f"c{i}" for i in range(17)]),
        server="must have at most 16 items",
    ),
    row("env with value and valueFrom", put("spec.targets.0.env.1.value", "x"), server=Msg.ENV_VALUE_OR_FROM),
    row("env valueFrom with no source", put("spec.targets.0.env.1.valueFrom", {}), server=Msg.VALUE_FROM),
    row(
        "env valueFrom with two sources",
        put("spec.targets.0.env.1.valueFrom.secretKeyRef", {"name": "s", "key": "k"}),
        server=Msg.VALUE_FROM,
    ),
    row(
        "env secretKeyRef without a key",
        put("spec.targets.0.env.1.valueFrom", {"secretKeyRef": {"name": "s"}}),
        server="Required value",
        at=f"{T0}.env[1].valueFrom.secretKeyRef.key",
    ),
    row(
        "env named twice",
        put("spec.targets.0.env.1", {"name": "LOG_LEVEL", "value": "info"}),
        server="Duplicate value",
        at=f"{T0}.env[1]",
    ),
    row(
        "65 env vars",
        put("spec.targets.0.env", [{"name": f"V{i}", "value": "x"} for i in range(65)]),
        server="must have at most 64 items",
    ),
    row(
        "unsupported fieldPath",
        put("spec.targets.0.env.1.valueFrom.fieldRef.fieldPath", "metadata.foo"),
        server=Msg.FIELD_PATH,
    ),
    row(
        "fieldRef apiVersion v2",
        put("spec.targets.0.env.1.valueFrom.fieldRef.apiVersion", "v2"),
        server='Unsupported value: "v2"',
    ),
    row(
        "resourceFieldRef to an unknown resource",
        put("spec.targets.0.env.1.valueFrom", {"resourceFieldRef": {"resource": "limits.gpu"}}),
        server=Msg.RESOURCE_FIELD,
    ),
    # ------------------------------------------------------------ the managed Redis
    row(
        "persistence size not a quantity", MANAGED, put("spec.redis.managed.persistence.size", "lots"), server=Msg.SIZE
    ),
    row("persistence size zero", MANAGED, put("spec.redis.managed.persistence.size", "0"), server=Msg.SIZE),
    row(
        "memory limit not a quantity",
        MANAGED,
        put("spec.redis.managed.resources.limits.memory", "a lot"),
        server=Msg.QUANTITY,
        at="spec.redis.managed.resources.limits.memory",
    ),
    row(
        "negative cpu request",
        MANAGED,
        put("spec.redis.managed.resources.requests.cpu", "-1"),
        server=Msg.QUANTITY,
        at="spec.redis.managed.resources.requests.cpu",
    ),
    row("image with a space", MANAGED, put("spec.redis.managed.image", "redis 7"), server=Msg.IMAGE),
    row(
        "managed replicas 3, name over 46 characters",
        MANAGED,
        put("spec.redis.managed.replicas", 3),
        put("metadata.name", "a" * 47),
        server=Msg.HA_NAME,
    ),
    row("managed replicas 2", MANAGED, put("spec.redis.managed.replicas", 2), server=Msg.MANAGED_REPLICAS),
    row("managed replicas 0", MANAGED, put("spec.redis.managed.replicas", 0), server=Msg.MANAGED_REPLICAS),
    row("managed replicas -3", MANAGED, put("spec.redis.managed.replicas", -3), server=Msg.MANAGED_REPLICAS),
    row(
        "managed replicas above 9",
        MANAGED,
        put("spec.redis.managed.replicas", 10),
        server="less than or equal to 9",
        at="spec.redis.managed.replicas",
    ),
    row(
        "managed replicas is a string",
        MANAGED,
        put("spec.redis.managed.replicas", "3"),
        server="must be of type integer",
        parse=MUST_BE_INTEGER,
        at="spec.redis.managed.replicas",
    ),
    row("empty image", MANAGED, put("spec.redis.managed.image", ""), server=Msg.IMAGE),
]


GOOD: list[Row] = [
    # id, edits; `server` unused. Each must be accepted by the API server and by api.parse.
    row("the base", server=""),
    row("the managed base", MANAGED, server=""),
    row("managed with only a mode", put("spec.redis", {"mode": "Managed"}), server=""),
    row("no optional field", put("spec", {"targets": [{"name": "web", "preset": "generic"}]}), server=""),
    row("port 1", put("spec.redis.external.url", "redis://cache:1/0"), server=""),
    row("port 65535", put("spec.redis.external.url", "redis://cache:65535/15"), server=""),
    row("IPv6 host", put("spec.redis.external.url", "redis://[::1]:6379/0"), server=""),
    row("IPv4 host, no port, no path", put("spec.redis.external.url", "redis://10.0.0.7"), server=""),
    row("user without password, TLS", put("spec.redis.external.url", "rediss://app@cache:6380/3"), server=""),
    row("a bare slash for db 0", put("spec.redis.external.url", "redis://cache:6379/"), server=""),
    row("interval 1h, timeout 59m", put("spec.probe.interval", "1h"), put("spec.probe.timeout", "59m"), server=""),
    row("bare seconds", put("spec.probe.interval", "2"), put("spec.probe.timeout", "1"), server=""),
    row("prefix of 64 characters", put("spec.prefix", "a:b.c_d-E" + "x" * 55), server=""),
    row("external name of 63 characters", put("metadata.name", "a" * 63), server=""),
    row("managed name of 57 characters", MANAGED, put("metadata.name", "a" * 57), server=""),
    row(
        "32 targets, 16 containers, 64 env vars",
        put("spec.targets", [_target(i) for i in range(32)]),
        put("spec.targets.0.containers", [f"c{i}" for i in range(16)]),
        put("spec.targets.0.env", [{"name": f"V{i}", "value": "x"} for i in range(64)]),
        server="",
    ),
    row(
        "every valueFrom source",
        put(
            "spec.targets.0.env",
            [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a", "optional": True}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b"}}},
                {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}},
                {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "E"},
                {"name": "F", "value": ""},
            ],
        ),
        server="",
    ),
    row("replicas 0", put("spec.replicas", 0), server=""),
    row("managed replicas 1", MANAGED, put("spec.redis.managed.replicas", 1), server=""),
    row("managed replicas 3", MANAGED, put("spec.redis.managed.replicas", 3), server=""),
    row("managed replicas 4", MANAGED, put("spec.redis.managed.replicas", 4), server=""),
    row("managed replicas 9", MANAGED, put("spec.redis.managed.replicas", 9), server=""),
    row(
        "managed replicas 3, name of 46 characters",
        MANAGED,
        put("spec.redis.managed.replicas", 3),
        put("metadata.name", "a" * 46),
        server="",
    ),
    row("replicas 1000", put("spec.replicas", 1000), server=""),
]
