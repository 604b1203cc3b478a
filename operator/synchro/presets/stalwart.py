"""Stalwart mail server v0.15 (TOML configuration), Redis as in-memory store and cluster coordinator.

Stalwart reads no Redis variable by itself: the user's config.toml pulls them in with env macros.
Put this in the config (macros only work in local keys; the defaults cover store.*, storage.lookup
and cluster.*):

    [store."redis"]
    type = "redis"
    redis-type = "single"
    urls = "%{env:STALWART_REDIS_URL}%"
    timeout = "10s"

    [storage]
    lookup = "redis"

    [cluster]
    coordinator = "redis"
    node-id = "%{env:STALWART_NODE_ID}%"

Synchro does not inject STALWART_NODE_ID (see the preset notes). One way to supply it is a
StatefulSet with `spec.ordinals.start: 1`, so pod indexes start at 1, plus this target override:

    env:
      - name: STALWART_NODE_ID
        valueFrom:
          fieldRef:
            fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, plain, redis_url

# Stalwart's coordination topic: the same for every backend and not configurable.
BROADCAST_TOPIC = "stwt.agora"


def _env(ep: Endpoint) -> list[EnvVar]:
    return [plain("STALWART_REDIS_URL", redis_url(ep))]


def _channels(ep: Endpoint) -> list[str]:
    return [BROADCAST_TOPIC]


PRESET = Preset(
    name="stalwart",
    summary="Stalwart v0.15: STALWART_REDIS_URL for a TOML redis store (in-memory store and coordinator).",
    app_versions="Stalwart v0.15.x (TOML config); v0.16+ is not automated",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "The user's config.toml must reference %{env:STALWART_REDIS_URL}% (snippet in docs); an unset "
        "macro variable is a config error. The URL embeds the password, which must be URL-safe. "
        "STALWART_NODE_ID is not injected: node-id must be a unique positive integer, but the pod-index "
        "label starts at 0 and exists only on StatefulSet pods (Kubernetes 1.28+). Without distinct ids "
        "(a missing node-id defaults to 1 in recent code) nodes drop each other's stwt.agora "
        "broadcasts as their own. Set it with a target override (StatefulSet with "
        "spec.ordinals.start: 1 and a pod-index fieldRef) or in the config. "
        "The stwt.agora topic is not configurable and in-memory keys carry no prefix, so each Stalwart "
        "SyncCluster needs a Redis of its own (a separate db still shares pub/sub). "
        "v0.16 keeps InMemoryStore and Coordinator in the database and sets them via WebUI, "
        "stalwart-cli or JMAP; Synchro does not automate that registry step yet. Using a macro for the "
        "integer node-id is inferred, not verified."
    ),
)
