"""App presets: which env variables make an app use Redis, and which channels prove it does.

Every module in this package (other than `base` and private `_*` modules) that defines a
module-level `PRESET` is registered, so supporting a new app means adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType

from .base import (
    PASSWORD_VAR,
    Endpoint,
    EnvVar,
    Preset,
    SecretKeyRef,
    env_for,
    from_secret,
    password_env,
    plain,
    redis_url,
)

__all__ = [
    "PASSWORD_VAR",
    "PRESETS",
    "Endpoint",
    "EnvVar",
    "Preset",
    "SecretKeyRef",
    "env_for",
    "from_secret",
    "get",
    "password_env",
    "plain",
    "redis_url",
]


def _discover() -> Mapping[str, Preset]:
    found: dict[str, Preset] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base" or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        preset = getattr(module, "PRESET", None)
        if preset is None:
            continue
        if not isinstance(preset, Preset):
            raise TypeError(f"{module.__name__}.PRESET is a {type(preset).__name__}, not a Preset")
        if preset.name in found:
            raise ValueError(f"preset name {preset.name!r} is defined twice (again in {module.__name__})")
        found[preset.name] = preset
    return MappingProxyType(dict(sorted(found.items())))


PRESETS: Mapping[str, Preset] = _discover()


def get(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None
