"""soketi (Pusher-compatible WebSockets) with the Redis adapter, rate limiter, cache and queue.

soketi reads only `SOKETI_*` variables and `JSON.parse`s each value when it can, so `12345` arrives
as a number and `true` as a boolean. Known values that would parse are JSON-quoted here, and the
password, unknown until Kubernetes pastes it in, is always wrapped in JSON quotes.
"""

from __future__ import annotations

import json

from .base import PASSWORD_REF, Endpoint, EnvVar, Preset, plain

_TLS_OPTION_VARS = (
    "SOKETI_ADAPTER_REDIS_SUB_OPTIONS",
    "SOKETI_ADAPTER_REDIS_PUB_OPTIONS",
    "SOKETI_CACHE_REDIS_OPTIONS",
    "SOKETI_RATE_LIMITER_REDIS_OPTIONS",
    "SOKETI_QUEUE_REDIS_OPTIONS",
)


def _text(value: str) -> str:
    """A value soketi reads back as exactly this string."""
    try:
        json.loads(value)
    except ValueError:
        return value
    return json.dumps(value)


def _env(ep: Endpoint) -> list[EnvVar]:
    env = [
        plain("SOKETI_ADAPTER_DRIVER", "redis"),
        plain("SOKETI_ADAPTER_REDIS_PREFIX", _text(ep.prefix)),
        plain("SOKETI_RATE_LIMITER_DRIVER", "redis"),
        plain("SOKETI_CACHE_DRIVER", "redis"),
        plain("SOKETI_QUEUE_DRIVER", "redis"),
        plain("SOKETI_DB_REDIS_HOST", _text(ep.host)),
        plain("SOKETI_DB_REDIS_PORT", str(ep.port)),
        plain("SOKETI_DB_REDIS_DB", str(ep.db)),
        plain("SOKETI_DB_REDIS_KEY_PREFIX", _text(f"{ep.prefix}:")),
    ]
    if ep.username:
        env.append(plain("SOKETI_DB_REDIS_USERNAME", _text(ep.username)))
    if ep.password is not None:
        env.append(plain("SOKETI_DB_REDIS_PASSWORD", json.dumps(PASSWORD_REF)))
    if ep.tls:
        env += [plain(name, '{"tls":{}}') for name in _TLS_OPTION_VARS]
    return env


def _channels(ep: Endpoint) -> list[str]:
    return [f"{ep.prefix}#redis-adapter#comms#req"]


PRESET = Preset(
    name="soketi",
    summary="soketi: Redis adapter for cross-node broadcasts, plus rate limiter, cache and webhook queue.",
    app_versions="soketi 1.x (env contract read from the 1.6 source; verified with 1.6.1)",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "The password goes in as a JSON string, '\"$(SYNCHRO_REDIS_PASSWORD)\"', so a numeric or "
        "`true` password stays a string; a password containing a double quote or backslash breaks "
        "that quoting. SOKETI_DB_REDIS_KEY_PREFIX=<prefix>: namespaces rate-limiter, cache and BullMQ "
        "queue keys (ioredis does not prefix pub/sub, so adapter channels use "
        'SOKETI_ADAPTER_REDIS_PREFIX). With TLS, `{"tls":{}}` goes to the adapter pub/sub options and '
        "to the cache, rate-limiter and queue options, since each opens its own connections (with "
        "soketi 1.6.1 all 22 of a replica's connect to a TLS-only Redis); a private CA must reach Node "
        "by the user's means, e.g. NODE_EXTRA_CA_CERTS. The probe counts processes; soketi itself counts "
        "nodes with the same PUBSUB NUMSUB. All replicas need the same app credentials "
        "(SOKETI_DEFAULT_APP_* or a shared app manager); Synchro does not set them. soketi 1.6.1 pins "
        "uWebSockets.js v20.10.0, whose binaries exist for Node 14/16/18 only."
    ),
)
