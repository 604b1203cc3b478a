"""Pure: the `synchro-probe` container injected into target pods, given the same endpoint as the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synchro import presets
from synchro.probe.protocol import CONTAINER, INTERVAL_VAR, POD_VAR, PREFIX_VAR, URL_VAR


def container(endpoint: presets.Endpoint, image: str, interval_s: int) -> dict[str, Any]:
    env = [
        *presets.password_env(endpoint),
        presets.plain(URL_VAR, presets.redis_url(endpoint)),
        presets.plain(PREFIX_VAR, endpoint.prefix),
        presets.plain(INTERVAL_VAR, str(interval_s)),
        {"name": POD_VAR, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    return {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["probe-agent"],
        "env": env,
        "resources": {"requests": {"cpu": "5m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def image_in(workload: Mapping[str, Any]) -> str | None:
    """The image of the synchro-probe container in a workload's pod template (None: it has none)."""
    containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return next((str(c.get("image")) for c in containers if c.get("name") == CONTAINER), None)
