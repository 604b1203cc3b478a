"""The test harness's kubelet-style env resolution must itself be right, or the probe tests prove nothing."""

import pytest
from podenv import expand, field_value, resolve_env


def test_expand_follows_kubernetes_rules() -> None:
    assert expand("redis://:$(PW)@h", {"PW": "s3"}) == "redis://:s3@h"
    assert expand("$(UNDEFINED)/x", {}) == "$(UNDEFINED)/x"
    assert expand("$$(PW)", {"PW": "s3"}) == "$(PW)"


def test_resolve_env_in_order_with_secrets_and_fields() -> None:
    pod = {
        "metadata": {"name": "p-1", "namespace": "ns"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "env": [
                        {"name": "URL", "value": "redis://:$(PW)@h"},  # PW is not defined yet: stays literal
                        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                        {"name": "URL2", "value": "redis://:$(PW)@h"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                }
            ]
        },
    }
    env = resolve_env(pod, "c", lambda name, key: f"{name}/{key}")
    assert env == {"URL": "redis://:$(PW)@h", "PW": "s/password", "URL2": "redis://:s/password@h", "POD": "p-1"}


def test_field_refs_to_labels_and_annotations_like_the_downward_api() -> None:
    meta = {
        "name": "mail-1",
        "namespace": "ns",
        "labels": {"apps.kubernetes.io/pod-index": "1"},
        "annotations": {"a": "x"},
    }
    assert field_value(meta, "metadata.labels['apps.kubernetes.io/pod-index']") == "1"
    assert field_value(meta, "metadata.annotations['a']") == "x"
    assert field_value(meta, "metadata.labels['missing']") == ""
    assert field_value(meta, "metadata.namespace") == "ns"
    with pytest.raises(KeyError):
        field_value(meta, "spec.nodeName")
