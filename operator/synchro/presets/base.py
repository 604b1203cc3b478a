"""The shapes every preset shares: an endpoint in, Kubernetes EnvVar dicts out.

Passwords never appear as plain text. A preset either points a variable at the Secret
(`valueFrom.secretKeyRef`) or, where the app wants the password inside a larger string such as a
URL, writes `$(SYNCHRO_REDIS_PASSWORD)`. Kubernetes expands that reference only from variables
defined *earlier* in the same container's env list, so `env_for` always puts `password_env` first.

Kubernetes pastes the password in verbatim, without percent-encoding. Variables that carry it
inside a URL therefore need a URL-safe password (letters, digits, `-._~`). Synchro's generated
passwords are URL-safe; for an external Redis it is the user's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote

from synchro.api import SecretRef

EnvVar: TypeAlias = dict[str, Any]  # one Kubernetes EnvVar object as a plain dict

PASSWORD_VAR = "SYNCHRO_REDIS_PASSWORD"
PASSWORD_REF = f"$({PASSWORD_VAR})"


SecretKeyRef = SecretRef  # one type for a Secret key reference; presets name it the way Kubernetes does


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = 6379
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: SecretKeyRef | None = None
    prefix: str = "synchro"  # the SyncCluster's channel/key namespace (e.g. "default.cms")

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("Endpoint.host must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"Endpoint.port must be 1-65535, got {self.port}")
        if self.db < 0:
            raise ValueError(f"Endpoint.db must not be negative, got {self.db}")
        if not self.prefix:
            raise ValueError("Endpoint.prefix must not be empty")


def plain(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def from_secret(name: str, ref: SecretKeyRef) -> EnvVar:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def password_env(ep: Endpoint) -> list[EnvVar]:
    """The variable that `$(SYNCHRO_REDIS_PASSWORD)` references resolve to; empty without a password."""
    return [] if ep.password is None else [from_secret(PASSWORD_VAR, ep.password)]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def redis_url(ep: Endpoint, *, credentials: bool = True) -> str:
    """`redis[s]://[user][:$(SYNCHRO_REDIS_PASSWORD)@]host:port/db`.

    With `credentials=False` the userinfo is left out, for apps that take the username and
    password in their own variables (safer: those need no URL-safe password).
    """
    scheme = "rediss" if ep.tls else "redis"
    userinfo = ""
    if credentials:
        user = quote(ep.username, safe="") if ep.username else ""
        if ep.password is not None:
            userinfo = f"{user}:{PASSWORD_REF}@"
        elif user:
            userinfo = f"{user}@"
    return f"{scheme}://{userinfo}{_url_host(ep.host)}:{ep.port}/{ep.db}"


@dataclass(frozen=True)
class Preset:
    name: str  # the value users write in spec.targets[].preset
    summary: str  # one line for docs
    app_versions: str  # which app versions the contract follows
    build_env: Callable[[Endpoint], list[EnvVar]]  # the app's variables, not including password_env
    probe_channels: Callable[[Endpoint], list[str]]  # always-on channels every app process subscribes to
    notes: str = ""  # caveats for docs
    # probe channel -> the channel older releases of the app subscribe to instead (they ignore the namespace)
    legacy_channels: Callable[[Endpoint], dict[str, str]] = lambda _ep: {}


def _name_of(var: Mapping[str, Any]) -> str:
    name = var.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"env var without a name: {var!r}")
    return name


def env_for(preset: Preset, ep: Endpoint, overrides: Sequence[Mapping[str, Any]] = ()) -> list[EnvVar]:
    """The env list to inject: password first, then the preset's variables, then the overrides.

    An override replaces the variable of the same name where it stands (so references to it keep
    resolving); an override with a new name is appended.
    """
    result = password_env(ep) + preset.build_env(ep)
    index: dict[str, int] = {}
    for i, var in enumerate(result):
        name = _name_of(var)
        if name in index:
            raise ValueError(f"preset {preset.name!r} emits {name} twice")
        index[name] = i
    for override in overrides:
        name = _name_of(override)
        if name in index:
            result[index[name]] = deepcopy(dict(override))
        else:
            index[name] = len(result)
            result.append(deepcopy(dict(override)))
    return result
