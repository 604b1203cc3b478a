"""Hocuspocus servers using @hocuspocus/extension-redis.

The extension reads no environment itself, so this preset defines the contract; the app's server
code wires it up, e.g.:

    new Redis({
      redis: new IORedis(process.env.REDIS_URL),   // carries TLS, username, password and db
      prefix: process.env.HOCUSPOCUS_REDIS_PREFIX,
    })

or `host: REDIS_HOST, port: Number(REDIS_PORT), options: {db, username, password}` for apps that
build the client from parts.
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, plain
from .generic import conventional_env


def _env(ep: Endpoint) -> list[EnvVar]:
    return [*conventional_env(ep), plain("HOCUSPOCUS_REDIS_PREFIX", ep.prefix)]


def _channels(ep: Endpoint) -> list[str]:
    return []


PRESET = Preset(
    name="hocuspocus",
    summary="Hocuspocus collaboration servers with @hocuspocus/extension-redis, wired to REDIS_* variables.",
    app_versions="@hocuspocus/extension-redis 3.x / 4.x (the app's server code reads the variables)",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "The app must pass these variables to the extension; Synchro can only inject them. "
        "No always-on channel: each instance subscribes to <prefix>:<documentName> only while it has "
        "that document loaded, so an idle replica has zero subscriptions and PUBSUB NUMSUB cannot count "
        "replicas. A replica check needs a probe document opened on every pod. "
        "REDIS_USERNAME and REDIS_PASSWORD are empty when unset; REDIS_URL embeds the password, so it "
        "must be URL-safe."
    ),
)
