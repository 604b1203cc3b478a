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


def _secret_ref(description: str, default_key: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "required": ["name"],
        "properties": {
            "name": _string("Name of a Secret in the SyncCluster's namespace.", minLength=1),
            "key": _string("Key within the Secret.", default=default_key),
        },
    }


_ENV_VAR: Schema = {
    "type": "object",
    "required": ["name"],
    "description": "A Kubernetes EnvVar; it overrides the preset's variable of the same name or adds one.",
    "properties": {
        "name": _string("Variable name.", minLength=1),
        "value": _string("Literal value."),
        "valueFrom": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

_TARGET: Schema = {
    "type": "object",
    "required": ["name", "preset"],
    "properties": {
        "kind": _string("Workload kind.", enum=list(api.TARGET_KINDS), default=api.DEFAULT_KIND),
        "name": _string("Workload name, in the SyncCluster's namespace.", minLength=1, maxLength=253),
        "preset": _string("The app's Redis dialect.", enum=sorted(presets.PRESETS)),
        "containers": {
            "type": "array",
            "description": "Containers to inject; default: every container of the pod.",
            "items": {"type": "string"},
            "maxItems": 16,
        },
        "env": {"type": "array", "items": _ENV_VAR, "maxItems": 64},
    },
}

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
                    pattern="^rediss?://",
                    maxLength=2048,
                ),
                "passwordSecretRef": _secret_ref("Secret holding the Redis password.", api.PASSWORD_KEY),
                "tls": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean", "default": False},
                        "caSecretRef": _secret_ref("Secret holding the CA bundle that signed Redis.", "ca.crt"),
                    },
                },
            },
        },
        "managed": {
            "type": "object",
            "properties": {
                "image": _string("Redis image.", default=api.DEFAULT_REDIS_IMAGE),
                "auth": {"type": "boolean", "default": True, "description": "Require a generated password."},
                "resources": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "persistence": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean", "default": False},
                        "size": _string("Volume size.", default="1Gi"),
                        "storageClassName": _string("Storage class; default: the cluster's."),
                    },
                },
            },
        },
    },
    "x-kubernetes-validations": [
        {
            "rule": "self.mode != 'External' || has(self.external)",
            "message": "redis.mode External needs redis.external.url",
        },
        {
            "rule": "self.mode != 'External' || !has(self.managed)",
            "message": "redis.mode External takes no redis.managed fields",
        },
        {
            "rule": "self.mode != 'Managed' || !has(self.external)",
            "message": "redis.mode Managed takes no redis.external fields; set mode: External to adopt a Redis",
        },
    ],
}

_SPEC: Schema = {
    "type": "object",
    "required": ["targets"],
    "properties": {
        "replicas": {
            "type": "integer",
            "minimum": 0,
            "maximum": 1000,
            "default": api.DEFAULT_REPLICAS,
            "description": "Desired replicas of every target, once Redis is ready.",
        },
        "prefix": _string(
            "Channel and key namespace; default: <namespace>.<name>.",
            pattern="^[A-Za-z0-9][A-Za-z0-9._:-]*$",
            maxLength=64,
        ),
        "redis": _REDIS,
        "targets": {
            "type": "array",
            "items": _TARGET,
            "minItems": 1,
            "maxItems": 32,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
        "probe": {
            "type": "object",
            "properties": {
                "sidecar": {"type": "boolean", "default": True},
                "interval": _string("Probe interval.", pattern="^[0-9]+[smh]?$", default="10s"),
                "timeout": _string("Probe reply timeout.", pattern="^[0-9]+[smh]?$", default="2s"),
            },
        },
        "deletionPolicy": _string(
            "Delete: undo the injection on deletion. Retain: leave targets as they are.",
            enum=list(api.DELETION_POLICIES),
            default="Delete",
        ),
    },
}

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
