"""Directus 10.4+ (the consolidated REDIS / REDIS_* variables).

Directus casts every env value by guessing its type. A value containing a comma becomes an array,
and a value such as `json:...` or `number:...` is read as a type flag. A `string:` flag forces a
string and is stripped for every variable (`@directus/env` `cast`). So the URL, whose password
Kubernetes pastes in unseen, and every value derived from the user-chosen prefix carry `string:`.
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, plain, redis_url


def _s(value: str) -> str:
    return f"string:{value}"


def _bus_namespace(ep: Endpoint) -> str:
    return f"{ep.prefix}:bus"


def _env(ep: Endpoint) -> list[EnvVar]:
    return [
        plain("REDIS_ENABLED", "true"),
        plain("REDIS", _s(redis_url(ep))),
        plain("REDIS_BUS_NAMESPACE", _s(_bus_namespace(ep))),
        plain("REDIS_LOCK_NAMESPACE", _s(f"{ep.prefix}:lock")),
        plain("REDIS_COUNTERS_NAMESPACE", _s(f"{ep.prefix}:counters")),
        plain("REDIS_PERMISSIONS_NAMESPACE", _s(f"{ep.prefix}:permissions")),
        plain("SYNCHRONIZATION_STORE", "redis"),
        plain("SYNCHRONIZATION_NAMESPACE", _s(f"{ep.prefix}:sync")),
        plain("CACHE_STORE", "redis"),
        plain("CACHE_NAMESPACE", _s(f"{ep.prefix}:cache")),
        plain("RATE_LIMITER_STORE", "redis"),
        plain("WEBSOCKETS_COLLAB_STORE_NAMESPACE", _s(f"{ep.prefix}:collab")),
        # Redis stores of newer releases (api 39): health checks, import/export jobs, license entitlements.
        plain("HEALTHCHECK_NAMESPACE", _s(f"{ep.prefix}:healthcheck")),
        plain("IMPORT_EXPORT_NAMESPACE", _s(f"{ep.prefix}:import-export")),
        plain("LICENSE_NAMESPACE", _s(f"{ep.prefix}:license")),
    ]


def _channels(ep: Endpoint) -> list[str]:
    return [f"{_bus_namespace(ep)}:schemaChanged"]


def _legacy_channels(ep: Endpoint) -> dict[str, str]:
    """Up to 11.16.1 (@directus/api 34) the bus namespace is hard-coded to `directus:bus`."""
    return {f"{_bus_namespace(ep)}:schemaChanged": "directus:bus:schemaChanged"}


PRESET = Preset(
    name="directus",
    summary="Directus: shared bus, locks, cron synchronization, cache and rate limiter in Redis.",
    app_versions="Directus 10.4+ / 11.x / 12.x (bus namespace honoured from 11.17)",
    build_env=_env,
    probe_channels=_channels,
    legacy_channels=_legacy_channels,
    notes=(
        "REDIS (the URL) wins over every REDIS_HOST/PORT/USERNAME/PASSWORD/DB, so only the URL is set; "
        "it embeds the password, which must be URL-safe. Values carry the `string:` cast flag so a comma "
        "in the password or a prefix like `json:x` cannot change their type. "
        "Directus 11.16.1 and older (@directus/api <= 34) hard-code the bus namespace `directus:bus` (and "
        "`directus:lock`, `permissions`): REDIS_BUS_NAMESPACE is "
        "ignored and the app subscribes to directus:bus:schemaChanged, which the probe counts instead when it "
        "holds more subscribers (on a Redis shared by several SyncClusters that count can include theirs), "
        "and two SyncClusters on one Redis share a bus. "
        "11.17.4 (@directus/api 35.2.0) is the first published release that honours it. "
        "The probe counts processes, not pods (PM2_INSTANCES > 1 counts several times); every process "
        "subscribes to schemaChanged (two 11.3.5 processes count 2, tests/integration/test_preset_directus.py). "
        "CACHE_STORE=redis needs the optional @keyv/redis dependency (in the official image). "
        "SYNCHRONIZATION_NAMESPACE is a key prefix, not a channel. Rate-limiter keys are not namespaced "
        "(no documented variable), so SyncClusters sharing one Redis share rate-limit counters."
    ),
)
