"""Any app that reads the conventional REDIS_URL / REDIS_HOST / REDIS_PORT / REDIS_PASSWORD variables.

The connection block is shared with presets whose apps use the same names (hocuspocus, laravel-reverb).
"""

from __future__ import annotations

from .base import Endpoint, EnvVar, Preset, from_secret, plain, redis_url


def conventional_env(ep: Endpoint, *, url_credentials: bool = True) -> list[EnvVar]:
    """REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_USERNAME, REDIS_PASSWORD.

    Username and password are always emitted, empty when unset: these names are so common that an
    app's .env file often carries them for another Redis, and a container variable beats .env.
    """
    return [
        plain("REDIS_URL", redis_url(ep, credentials=url_credentials)),
        plain("REDIS_HOST", ep.host),
        plain("REDIS_PORT", str(ep.port)),
        plain("REDIS_DB", str(ep.db)),
        plain("REDIS_USERNAME", ep.username or ""),
        plain("REDIS_PASSWORD", "") if ep.password is None else from_secret("REDIS_PASSWORD", ep.password),
    ]


def _env(ep: Endpoint) -> list[EnvVar]:
    return [*conventional_env(ep), plain("SYNCHRO_REDIS_PREFIX", ep.prefix)]


def _channels(ep: Endpoint) -> list[str]:
    return []


PRESET = Preset(
    name="generic",
    summary="Conventional REDIS_* variables for apps without a dedicated preset.",
    app_versions="any app reading REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD",
    build_env=_env,
    probe_channels=_channels,
    notes=(
        "No always-on channel is known, so the Redis-side check cannot count replicas. "
        "TLS, username and db are complete only in REDIS_URL (rediss:// for TLS); REDIS_HOST/PORT/DB/"
        "USERNAME/PASSWORD are for apps that build their own client. REDIS_USERNAME and REDIS_PASSWORD "
        "are empty when unset. REDIS_URL embeds the password, so it must be URL-safe. The app should "
        "namespace its keys and channels with SYNCHRO_REDIS_PREFIX."
    ),
)
