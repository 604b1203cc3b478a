"""Laravel Reverb with horizontal scaling over Redis pub/sub.

Reverb reads the conventional REDIS_* names (config/reverb.php, `scaling.server`), the same names
Laravel's own `database.redis` uses. REDIS_URL, when set, overrides the host settings through
Laravel's ConfigurationUrlParser. So REDIS_URL is always set, to a URL without credentials: it
carries the scheme (rediss:// turns on TLS), host, port and db and beats a stale REDIS_URL in the
app's .env, while REDIS_USERNAME / REDIS_PASSWORD fill the credentials that the URL leaves empty.
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, plain
from .generic import conventional_env


def _channel(ep: Endpoint) -> str:
    return f"{ep.prefix}:reverb"


def _env(ep: Endpoint) -> list[EnvVar]:
    return [
        plain("REVERB_SCALING_ENABLED", "true"),
        plain("REVERB_SCALING_CHANNEL", _channel(ep)),
        *conventional_env(ep, url_credentials=False),
    ]


def _channels(ep: Endpoint) -> list[str]:
    return [_channel(ep)]


PRESET = Preset(
    name="laravel-reverb",
    summary="Laravel Reverb: scaling over a Redis pub/sub channel named after the cluster prefix.",
    app_versions="Laravel Reverb 1.x (>= 1.7.0 recommended)",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "REVERB_SCALING_CHANNEL is used as the literal Redis channel (no Laravel key prefix). "
        "The REDIS_* variables are shared with Laravel's default Redis connection, so in the targeted "
        "pods the app's own cache/queue/session Redis (if any) also points at this endpoint; target the "
        "Reverb server Deployment, not the web app. The password reaches Reverb as a query parameter, "
        "built by Reverb, so it need not be URL-safe; Laravel's env() still turns the literal values "
        "`null`, `true`, `false` and `empty` into non-strings. An advisory (details uncertain) reports "
        "unsafe deserialization of Redis payloads in Reverb <= 1.6.3 with scaling on. That NUMSUB of "
        "the channel equals the number of Reverb servers is inferred."
    ),
)
