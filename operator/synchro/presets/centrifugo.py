"""Centrifugo v6 with the Redis engine (broker and presence manager).

The address is a URL without credentials: centrifuge's URL parser would take a password from it,
but the separate PASSWORD variable comes straight from the Secret and needs no URL-safe password.
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, from_secret, plain, redis_url


def _env(ep: Endpoint) -> list[EnvVar]:
    env = [
        plain("CENTRIFUGO_ENGINE_TYPE", "redis"),
        plain("CENTRIFUGO_ENGINE_REDIS_ADDRESS", redis_url(ep, credentials=False)),
        plain("CENTRIFUGO_ENGINE_REDIS_PREFIX", ep.prefix),
        plain("CENTRIFUGO_ENGINE_REDIS_DB", str(ep.db)),
    ]
    if ep.username:
        env.append(plain("CENTRIFUGO_ENGINE_REDIS_USER", ep.username))
    if ep.password is not None:
        env.append(from_secret("CENTRIFUGO_ENGINE_REDIS_PASSWORD", ep.password))
    return env


def _channels(ep: Endpoint) -> list[str]:
    return [f"{ep.prefix}.control"]


PRESET = Preset(
    name="centrifugo",
    summary="Centrifugo v6: Redis engine for broker and presence, namespaced by the cluster prefix.",
    app_versions="Centrifugo v6.x (v5's engine/redis_* keys are not covered)",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "TLS comes from the rediss:// scheme of the address (centrifuge enables TLS for it). "
        "The prefix covers every key and channel (<prefix>.control, <prefix>.node.<id>, "
        "<prefix>.client.*); Redis pub/sub ignores the db index, so the prefix is what keeps "
        "SyncClusters on one Redis apart. Every node subscribes to <prefix>.control, so its NUMSUB "
        "counts the nodes (checked with Centrifugo v6.9.1)."
    ),
)
