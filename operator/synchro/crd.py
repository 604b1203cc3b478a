"""The SyncCluster CRD, built from synchro.api and the preset registry: the one source of crds/ and the chart.

`python -m synchro.crd` prints it as YAML (`make crds`); a unit test fails when crds/ drifts from it.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from synchro import api, presets

Schema = dict[str, Any]


def _string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _rule(rule: str, message: str) -> dict[str, str]:
    return {"rule": rule, "message": message}


def _matches(regex: str, subject: str = "self") -> str:
    """A CEL `matches`, the regex (RE2, as Python reads it too) in a CEL string literal."""
    assert "'" not in regex, regex
    return f"{subject}.matches('{regex.replace(chr(92), chr(92) * 2)}')"


def _checked(description: str, regex: str, message: str, max_length: int, **extra: Any) -> Schema:
    """A string that must match `regex`, said with `message` (a CEL rule: a pattern's message shows the regex)."""
    return _string(
        description, maxLength=max_length, **extra, **{"x-kubernetes-validations": [_rule(_matches(regex), message)]}
    )


def _object_name(description: str) -> Schema:
    return _checked(description, api.OBJECT_NAME_RE, api.Msg.OBJECT_NAME, api.MAX_OBJECT_NAME)


def _quantity(description: str, positive: bool = False) -> Schema:
    """A Kubernetes quantity; an integer too, unless `positive` (a volume size), which must also be above zero."""
    if positive:
        rule = "isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))"
        return _string(
            description, maxLength=api.MAX_QUANTITY, **{"x-kubernetes-validations": [_rule(rule, api.Msg.SIZE)]}
        )
    rule = "type(self) == int ? self >= 0 : isQuantity(self) && !quantity(self).isLessThan(quantity('0'))"
    return {
        "description": description,
        "x-kubernetes-int-or-string": True,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "maxLength": api.MAX_QUANTITY,  # of a string
        "x-kubernetes-validations": [_rule(rule, api.Msg.QUANTITY)],
    }


def _key_ref(description: str, default_key: str | None = None, optional: bool = False) -> Schema:
    """A key of a Secret or ConfigMap in the SyncCluster's namespace; `optional` as in a Kubernetes EnvVarSource."""
    key = _checked("Key within it.", api.KEY_RE, api.Msg.KEY, api.MAX_FIELD)
    if default_key is not None:
        key["default"] = default_key
    properties = {"name": _object_name("Its name, in the SyncCluster's namespace."), "key": key}
    if optional:
        properties["optional"] = {"type": "boolean", "description": "Start the pod even if it is missing."}
    return {
        "type": "object",
        "description": description,
        "required": ["name"] if default_key is not None else ["name", "key"],
        "properties": properties,
    }


def _field_path_rule() -> str:
    known = ", ".join(f"'{p}'" for p in api.FIELD_PATHS)
    keyed = " || ".join(f"self.startsWith('{p}')" for p in api.FIELD_PATH_KEYED)
    return f"self in [{known}] || (({keyed}) && self.endsWith(']'))"


_VALUE_FROM: Schema = {
    "type": "object",
    "description": "Where the value comes from, as in a Kubernetes EnvVarSource: exactly one source.",
    "properties": {
        "configMapKeyRef": _key_ref("A key of a ConfigMap.", optional=True),
        "secretKeyRef": _key_ref("A key of a Secret.", optional=True),
        "fieldRef": {
            "type": "object",
            "description": "A field of the pod, such as metadata.name.",
            "required": ["fieldPath"],
            "properties": {
                "fieldPath": _string(
                    "The field's path.",
                    maxLength=api.MAX_FIELD,
                    **{"x-kubernetes-validations": [_rule(_field_path_rule(), api.Msg.FIELD_PATH)]},
                ),
                "apiVersion": _string("The version the path is in.", enum=["v1"]),
            },
        },
        "resourceFieldRef": {
            "type": "object",
            "description": "A resource of a container, such as limits.memory.",
            "required": ["resource"],
            "properties": {
                "resource": _checked("The resource.", api.RESOURCE_FIELD_RE, api.Msg.RESOURCE_FIELD, api.MAX_FIELD),
                "containerName": _checked(
                    "The container.", api.DNS_LABEL_RE, api.Msg.CONTAINER, api.MAX_CONTAINER_NAME
                ),
                "divisor": _quantity("The unit of the value."),
            },
        },
    },
    "x-kubernetes-validations": [
        _rule(" + ".join(f"(has(self.{k}) ? 1 : 0)" for k in api.VALUE_SOURCES) + " == 1", api.Msg.VALUE_FROM)
    ],
}

_ENV_VAR: Schema = {
    "type": "object",
    "required": ["name"],
    "description": "A Kubernetes EnvVar; it overrides the preset's variable of the same name or adds one.",
    "properties": {
        "name": _checked("Variable name.", api.ENV_NAME_RE, api.Msg.ENV_NAME, api.MAX_ENV_NAME),
        "value": _string("Literal value.", maxLength=api.MAX_ENV_VALUE),
        "valueFrom": _VALUE_FROM,
    },
    "x-kubernetes-validations": [_rule("!has(self.value) || !has(self.valueFrom)", api.Msg.ENV_VALUE_OR_FROM)],
}

_TARGET: Schema = {
    "type": "object",
    "required": ["name", "preset"],
    "properties": {
        "kind": _string("Workload kind.", enum=list(api.TARGET_KINDS), default=api.DEFAULT_KIND),
        "name": _object_name("Workload name, in the SyncCluster's namespace."),
        "preset": _string("The app's Redis dialect.", enum=sorted(presets.PRESETS)),
        "containers": {
            "type": "array",
            "description": "Containers to inject, each once; default: every container of the pod.",
            "items": _checked("A container name.", api.DNS_LABEL_RE, api.Msg.CONTAINER, api.MAX_CONTAINER_NAME),
            "maxItems": api.MAX_CONTAINERS,
            "x-kubernetes-list-type": "set",
        },
        "env": {
            "type": "array",
            "items": _ENV_VAR,
            "maxItems": api.MAX_ENV,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    },
}

_URL_RULES = [
    _rule("!" + _matches(api.URL_PASSWORD_RE), api.Msg.URL_PASSWORD),
    _rule(_matches(api.URL_PATH_RE), api.Msg.URL_DB),
    # Said only when the rules above hold, so that one mistake gets one message.
    _rule(f"!{_matches(api.URL_PATH_RE)} || {_matches(api.URL_PASSWORD_RE)} || isURL(self)", api.Msg.URL),
    _rule(_matches(api.URL_HOST_RE), api.Msg.URL_HOST),
    # Bounds from the url() library are unknown to the cost estimate: size() is cheap, matches() on them is not.
    _rule(
        "!isURL(self) || url(self).getPort() == '' || (url(self).getPort().size() <= 5 && "
        "int(url(self).getPort()) >= 1 && int(url(self).getPort()) <= 65535)",
        api.Msg.URL_PORT,
    ),
]

_REDIS: Schema = {
    "type": "object",
    "default": {"mode": "Managed"},
    "properties": {
        "mode": _string(
            "Managed: the operator runs Redis. External: adopt one.", enum=list(api.REDIS_MODES), default="Managed"
        ),
        "external": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": _string(
                    "redis[s]://[user@]host[:port][/db]; the password comes from passwordSecretRef.",
                    pattern=api.URL_SCHEME_RE,
                    maxLength=api.MAX_URL,
                    **{"x-kubernetes-validations": _URL_RULES},
                ),
                "passwordSecretRef": _key_ref("Secret holding the Redis password.", api.PASSWORD_KEY),
                "tls": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean", "default": False},
                        "caSecretRef": _key_ref("Secret holding the CA bundle that signed Redis.", "ca.crt"),
                    },
                },
            },
        },
        "managed": {
            "type": "object",
            "properties": {
                "replicas": {
                    "type": "integer",
                    "description": f"Redis pods: 1, or {api.MIN_HA_REPLICAS} or more for replicas with Sentinels.",
                    "default": api.DEFAULT_MANAGED_REPLICAS,
                    "maximum": api.MAX_MANAGED_REPLICAS,
                    "x-kubernetes-validations": [
                        _rule(f"self == 1 || self >= {api.MIN_HA_REPLICAS}", api.Msg.MANAGED_REPLICAS)
                    ],
                },
                "image": _checked(
                    "Redis image.", api.IMAGE_RE, api.Msg.IMAGE, api.MAX_IMAGE, default=api.DEFAULT_REDIS_IMAGE
                ),
                "auth": {"type": "boolean", "default": True, "description": "Require a generated password."},
                "resources": {
                    "type": "object",
                    "description": "The Redis container's resources.",
                    "properties": {
                        part: {
                            "type": "object",
                            "properties": {name: _quantity(f"An amount of {name}.") for name in api.RESOURCES},
                        }
                        for part in ("limits", "requests")
                    },
                },
                "persistence": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean", "default": False},
                        "size": {**_quantity("Volume size.", positive=True), "default": "1Gi"},
                        "storageClassName": _object_name("Storage class; default: the cluster's."),
                    },
                },
            },
        },
    },
    "x-kubernetes-validations": [
        _rule("self.mode != 'External' || has(self.external)", api.Msg.EXTERNAL_NEEDS_URL),
        _rule("self.mode != 'External' || !has(self.managed)", api.Msg.EXTERNAL_NO_MANAGED),
        _rule("self.mode != 'Managed' || !has(self.external)", api.Msg.MANAGED_NO_EXTERNAL),
    ],
}


def _seconds(field: str) -> str:
    """CEL: a probe duration as a CEL duration (a bare number is seconds)."""
    return f"duration(self.{field}.matches('^[0-9]+$') ? self.{field} + 's' : self.{field})"


def _duration(description: str, default: str) -> Schema:
    return _checked(description, api.DURATION_RE, api.Msg.DURATION, api.MAX_DURATION, default=default)


_PROBE: Schema = {
    "type": "object",
    "properties": {
        "sidecar": {"type": "boolean", "default": True},
        "interval": _duration("Probe interval.", f"{api.DEFAULT_PROBE_INTERVAL_S}s"),
        "timeout": _duration("Probe reply timeout.", f"{api.DEFAULT_PROBE_TIMEOUT_S}s"),
    },
    "x-kubernetes-validations": [
        _rule(
            f"!has(self.interval) || !{_matches(api.DURATION_RE, 'self.interval')} || "
            f"({_seconds('interval')} >= duration('{api.MIN_PROBE_INTERVAL_S}s')"
            f" && {_seconds('interval')} <= duration('{api.MAX_PROBE_INTERVAL_S}s'))",
            api.Msg.INTERVAL,
        ),
        _rule(
            "!has(self.interval) || !has(self.timeout) || "
            f"!{_matches(api.DURATION_RE, 'self.interval')} || !{_matches(api.DURATION_RE, 'self.timeout')} || "
            f"({_seconds('timeout')} >= duration('{api.MIN_PROBE_TIMEOUT_S}s')"
            f" && {_seconds('timeout')} < {_seconds('interval')})",
            api.Msg.TIMEOUT,
        ),
    ],
}

_SPEC: Schema = {
    "type": "object",
    "required": ["targets"],
    "properties": {
        "replicas": {
            "type": "integer",
            "minimum": 0,
            "maximum": api.MAX_REPLICAS,
            "default": api.DEFAULT_REPLICAS,
            "description": "Desired replicas of every target, once Redis is ready.",
        },
        "prefix": _checked(
            "Channel and key namespace; default: <namespace>.<name>.", api.PREFIX_RE, api.Msg.PREFIX, api.MAX_PREFIX
        ),
        "redis": _REDIS,
        "targets": {
            "type": "array",
            "items": _TARGET,
            "minItems": 1,
            "maxItems": api.MAX_TARGETS,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
        "probe": _PROBE,
        "deletionPolicy": _string(
            "Delete: undo the injection on deletion. Retain: leave targets as they are.",
            enum=list(api.DELETION_POLICIES),
            default="Delete",
        ),
    },
}

# On the whole object: its name becomes a label value, and with a managed Redis part of a Service's name.
_NAME_RULES = [
    _rule(f"self.metadata.name.size() <= {api.MAX_LABEL_VALUE}", api.Msg.NAME),
    _rule(
        "(has(self.spec.redis) && has(self.spec.redis.mode) && self.spec.redis.mode == 'External') || "
        f"(self.metadata.name.size() <= {api.MAX_MANAGED_NAME} && "
        f"{_matches(api.SERVICE_NAME_RE, 'self.metadata.name')})",
        api.Msg.MANAGED_NAME,
    ),
    _rule(
        "!has(self.spec.redis) || !has(self.spec.redis.managed) || !has(self.spec.redis.managed.replicas) || "
        f"self.spec.redis.managed.replicas < {api.MIN_HA_REPLICAS} || self.metadata.name.size() <= {api.MAX_HA_NAME}",
        api.Msg.HA_NAME,
    ),
]

_CONDITION: Schema = {
    "type": "object",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "observedGeneration": {"type": "integer"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
    },
}

_STATUS: Schema = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "replicas": {"type": "integer"},
        "readyReplicas": {"type": "integer"},
        "selector": {"type": "string"},
        "redis": {
            "type": "object",
            "properties": {
                "mode": {"type": "string"},
                "endpoint": {"type": "string"},
                "secret": {"type": "string"},
                "master": {"type": "string", "description": "With replicas: the pod the apps' Service routes to."},
                "nodes": {
                    "type": "array",
                    "description": "With replicas: each Redis pod's role, its link to the master, and its lag.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "pod": {"type": "string"},
                            "role": {"type": "string", "enum": ["master", "replica", "unknown"]},
                            "linkUp": {"type": "boolean"},
                            "lagBytes": {"type": "integer"},
                        },
                    },
                },
                "sentinels": {
                    "type": "object",
                    "description": "With replicas: the Sentinels that answered, and how many must agree.",
                    "properties": {"ready": {"type": "integer"}, "quorum": {"type": "integer"}},
                },
                "lastFailover": {
                    "type": "object",
                    "description": "With replicas: the last time the master moved, from which pod to which.",
                    "properties": {
                        "time": {"type": "string"},
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "healSeconds": {"type": "number"},
                    },
                },
                "passwordRotation": {
                    "type": "object",
                    "description": "The last synchro.dev/rotate-password request on a managed Redis, and how far.",
                    "properties": {
                        "requested": {"type": "string"},
                        "phase": {"type": "string", "enum": ["Staged", "RollingOut", "Done", "Refused"]},
                        "message": {"type": "string"},
                    },
                },
            },
        },
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "configHash": {"type": "string"},
                    "rolledOutHash": {
                        "type": "string",
                        "description": "The last config rolled out while Redis answered.",
                    },
                    "replicas": {"type": "integer"},
                    "readyReplicas": {"type": "integer"},
                },
            },
        },
        "conditions": {
            "type": "array",
            "items": _CONDITION,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
        "probe": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
    # kopf keeps its handler progress here if ever asked to; tolerate it rather than prune it.
    "x-kubernetes-preserve-unknown-fields": True,
}


def _condition_column(name: str, condition: str) -> dict[str, str]:
    return {"name": name, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status'}


def build() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{api.PLURAL}.{api.GROUP}"},
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": api.PLURAL,
                "singular": api.KIND.lower(),
                "kind": api.KIND,
                "shortNames": ["syncc"],
                "categories": ["synchro"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        _condition_column("Ready", "Ready"),
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Redis", "type": "string", "jsonPath": ".status.redis.endpoint"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {"spec": _SPEC, "status": _STATUS},
                            "x-kubernetes-validations": _NAME_RULES,
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    return "# Generated by `make crds` from operator/synchro/crd.py: do not edit.\n" + yaml.safe_dump(
        build(), sort_keys=False, width=120
    )


if __name__ == "__main__":
    sys.stdout.write(render())
