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

Synchro does not inject STALWART_NODE_ID (see the preset notes). Give each pod its own, e.g. on a
StatefulSet target (Kubernetes 1.28+) with this override; pod index 0 is a valid node-id:

    env:
      - name: STALWART_NODE_ID
        valueFrom:
          fieldRef:
            fieldPath: metadata.labels['apps.kubernetes.io/pod-index']

Verified with stalwart-lite 0.16.0 from crates.io, a third-party fork that tracks upstream Stalwart v0.15.6
with this TOML configuration (no Stalwart Labs build is in a registry reachable here):
tests/integration/test_preset_stalwart.py runs two nodes on a shared SQLite file, fed the env of two live
StatefulSet pods with exactly this config, and an IMAP IDLE client on one node hears a message appended
through the other; with one node-id on both, or without the Redis part of the config, it does not.
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
    app_versions="Stalwart v0.15.x (TOML config); verified with stalwart-lite 0.16.0 (tracks v0.15.6); "
    "upstream v0.16+ is not automated",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "The user's config.toml must reference %{env:STALWART_REDIS_URL}% (snippet in docs); with the "
        "variable unset the Redis store is missing and Stalwart aborts at startup (store not configured). "
        "The URL embeds the password, which must be URL-safe; its db index is honoured for keys. "
        "cluster.coordinator alone carries the broadcasts (storage.lookup = redis shares rate limits and "
        "other in-memory data, and makes Redis a hard dependency). "
        "STALWART_NODE_ID is not injected: every node needs its own node-id, and an env macro for it works. "
        "A missing node-id counts as 1, and a node drops broadcasts carrying its own id, so nodes with "
        "equal ids do not synchronize. 0 is valid; keep ids below 512 (the id generator keeps 9 bits). On a "
        "StatefulSet (Kubernetes 1.28+) a target override with a pod-index fieldRef gives each pod its "
        "own; a Deployment has no per-pod number. "
        "The stwt.agora topic is not configurable and in-memory keys carry no prefix, so each Stalwart "
        "SyncCluster needs a Redis of its own (a separate db still shares pub/sub). "
        "Upstream v0.16 keeps InMemoryStore and Coordinator in the database and sets them via WebUI, "
        "stalwart-cli or JMAP; Synchro does not automate that registry step yet (stalwart-lite 0.16.0 "
        "still reads the v0.15 TOML keys)."
    ),
)
