"""The app presets: exact env contracts (docs/presets.md), password handling, registry and env_for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from synchro import presets
from synchro.presets import PASSWORD_VAR, Endpoint, Preset, SecretKeyRef, env_for, redis_url

SECRET = SecretKeyRef(name="cms-redis-auth", key="redis-password")
HOST = "redis.cms.svc"
FULL = Endpoint(host=HOST, port=6380, db=3, tls=True, username="app", password=SECRET, prefix="team.cms")
BARE = Endpoint(host="redis.cms.svc", prefix="team.cms")
REF = "$(SYNCHRO_REDIS_PASSWORD)"
ALL = ("centrifugo", "directus", "generic", "hocuspocus", "laravel-reverb", "soketi", "stalwart")
PACKAGE_DIR = Path(presets.__file__).parent
DOCS = Path(__file__).resolve().parents[2] / "docs" / "presets.md"

SECRET_VALUE = ("secret", SECRET.name, SECRET.key)


def flat(env: list[dict[str, Any]]) -> dict[str, Any]:
    """name -> value, or ("secret", name, key) for a secretKeyRef."""
    out: dict[str, Any] = {}
    for var in env:
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            out[var["name"]] = ("secret", ref["name"], ref["key"])
        else:
            out[var["name"]] = var["value"]
    return out


def build(name: str, ep: Endpoint) -> dict[str, Any]:
    return flat(presets.get(name).build_env(ep))


EXPECTED_FULL: dict[str, dict[str, Any]] = {
    "directus": {
        "REDIS_ENABLED": "true",
        "REDIS": f"string:rediss://app:{REF}@redis.cms.svc:6380/3",
        "REDIS_BUS_NAMESPACE": "string:team.cms:bus",
        "REDIS_LOCK_NAMESPACE": "string:team.cms:lock",
        "REDIS_COUNTERS_NAMESPACE": "string:team.cms:counters",
        "REDIS_PERMISSIONS_NAMESPACE": "string:team.cms:permissions",
        "SYNCHRONIZATION_STORE": "redis",
        "SYNCHRONIZATION_NAMESPACE": "string:team.cms:sync",
        "CACHE_STORE": "redis",
        "CACHE_NAMESPACE": "string:team.cms:cache",
        "RATE_LIMITER_STORE": "redis",
        "WEBSOCKETS_COLLAB_STORE_NAMESPACE": "string:team.cms:collab",
        "HEALTHCHECK_NAMESPACE": "string:team.cms:healthcheck",
        "IMPORT_EXPORT_NAMESPACE": "string:team.cms:import-export",
        "LICENSE_NAMESPACE": "string:team.cms:license",
    },
    "soketi": {
        "SOKETI_ADAPTER_DRIVER": "redis",
        "SOKETI_ADAPTER_REDIS_PREFIX": "team.cms",
        "SOKETI_RATE_LIMITER_DRIVER": "redis",
        "SOKETI_CACHE_DRIVER": "redis",
        "SOKETI_QUEUE_DRIVER": "redis",
        "SOKETI_DB_REDIS_HOST": "redis.cms.svc",
        "SOKETI_DB_REDIS_PORT": "6380",
        "SOKETI_DB_REDIS_DB": "3",
        "SOKETI_DB_REDIS_KEY_PREFIX": "team.cms:",
        "SOKETI_DB_REDIS_USERNAME": "app",
        "SOKETI_DB_REDIS_PASSWORD": f'"{REF}"',
        "SOKETI_ADAPTER_REDIS_SUB_OPTIONS": '{"tls":{}}',
        "SOKETI_ADAPTER_REDIS_PUB_OPTIONS": '{"tls":{}}',
        "SOKETI_CACHE_REDIS_OPTIONS": '{"tls":{}}',
        "SOKETI_RATE_LIMITER_REDIS_OPTIONS": '{"tls":{}}',
        "SOKETI_QUEUE_REDIS_OPTIONS": '{"tls":{}}',
    },
    "hocuspocus": {
        "REDIS_URL": f"rediss://app:{REF}@redis.cms.svc:6380/3",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6380",
        "REDIS_DB": "3",
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD": SECRET_VALUE,
        "HOCUSPOCUS_REDIS_PREFIX": "team.cms",
    },
    "stalwart": {
        "STALWART_REDIS_URL": f"rediss://app:{REF}@redis.cms.svc:6380/3",
    },
    "generic": {
        "REDIS_URL": f"rediss://app:{REF}@redis.cms.svc:6380/3",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6380",
        "REDIS_DB": "3",
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD": SECRET_VALUE,
        "SYNCHRO_REDIS_PREFIX": "team.cms",
    },
    "centrifugo": {
        "CENTRIFUGO_ENGINE_TYPE": "redis",
        "CENTRIFUGO_ENGINE_REDIS_ADDRESS": "rediss://redis.cms.svc:6380/3",
        "CENTRIFUGO_ENGINE_REDIS_PREFIX": "team.cms",
        "CENTRIFUGO_ENGINE_REDIS_DB": "3",
        "CENTRIFUGO_ENGINE_REDIS_USER": "app",
        "CENTRIFUGO_ENGINE_REDIS_PASSWORD": SECRET_VALUE,
    },
    "laravel-reverb": {
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": "team.cms:reverb",
        "REDIS_URL": "rediss://redis.cms.svc:6380/3",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6380",
        "REDIS_DB": "3",
        "REDIS_USERNAME": "app",
        "REDIS_PASSWORD": SECRET_VALUE,
    },
}

EXPECTED_BARE: dict[str, dict[str, Any]] = {
    "directus": {
        "REDIS_ENABLED": "true",
        "REDIS": "string:redis://redis.cms.svc:6379/0",
        "REDIS_BUS_NAMESPACE": "string:team.cms:bus",
        "REDIS_LOCK_NAMESPACE": "string:team.cms:lock",
        "REDIS_COUNTERS_NAMESPACE": "string:team.cms:counters",
        "REDIS_PERMISSIONS_NAMESPACE": "string:team.cms:permissions",
        "SYNCHRONIZATION_STORE": "redis",
        "SYNCHRONIZATION_NAMESPACE": "string:team.cms:sync",
        "CACHE_STORE": "redis",
        "CACHE_NAMESPACE": "string:team.cms:cache",
        "RATE_LIMITER_STORE": "redis",
        "WEBSOCKETS_COLLAB_STORE_NAMESPACE": "string:team.cms:collab",
        "HEALTHCHECK_NAMESPACE": "string:team.cms:healthcheck",
        "IMPORT_EXPORT_NAMESPACE": "string:team.cms:import-export",
        "LICENSE_NAMESPACE": "string:team.cms:license",
    },
    "soketi": {
        "SOKETI_ADAPTER_DRIVER": "redis",
        "SOKETI_ADAPTER_REDIS_PREFIX": "team.cms",
        "SOKETI_RATE_LIMITER_DRIVER": "redis",
        "SOKETI_CACHE_DRIVER": "redis",
        "SOKETI_QUEUE_DRIVER": "redis",
        "SOKETI_DB_REDIS_HOST": "redis.cms.svc",
        "SOKETI_DB_REDIS_PORT": "6379",
        "SOKETI_DB_REDIS_DB": "0",
        "SOKETI_DB_REDIS_KEY_PREFIX": "team.cms:",
    },
    "hocuspocus": {
        "REDIS_URL": "redis://redis.cms.svc:6379/0",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6379",
        "REDIS_DB": "0",
        "REDIS_USERNAME": "",
        "REDIS_PASSWORD": "",
        "HOCUSPOCUS_REDIS_PREFIX": "team.cms",
    },
    "stalwart": {
        "STALWART_REDIS_URL": "redis://redis.cms.svc:6379/0",
    },
    "generic": {
        "REDIS_URL": "redis://redis.cms.svc:6379/0",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6379",
        "REDIS_DB": "0",
        "REDIS_USERNAME": "",
        "REDIS_PASSWORD": "",
        "SYNCHRO_REDIS_PREFIX": "team.cms",
    },
    "centrifugo": {
        "CENTRIFUGO_ENGINE_TYPE": "redis",
        "CENTRIFUGO_ENGINE_REDIS_ADDRESS": "redis://redis.cms.svc:6379/0",
        "CENTRIFUGO_ENGINE_REDIS_PREFIX": "team.cms",
        "CENTRIFUGO_ENGINE_REDIS_DB": "0",
    },
    "laravel-reverb": {
        "REVERB_SCALING_ENABLED": "true",
        "REVERB_SCALING_CHANNEL": "team.cms:reverb",
        "REDIS_URL": "redis://redis.cms.svc:6379/0",
        "REDIS_HOST": "redis.cms.svc",
        "REDIS_PORT": "6379",
        "REDIS_DB": "0",
        "REDIS_USERNAME": "",
        "REDIS_PASSWORD": "",
    },
}

EXPECTED_CHANNELS = {
    "centrifugo": ["team.cms.control"],
    "directus": ["team.cms:bus:schemaChanged"],
    "generic": [],
    "hocuspocus": [],
    "laravel-reverb": ["team.cms:reverb"],
    "soketi": ["team.cms#redis-adapter#comms#req"],
    "stalwart": ["stwt.agora"],
}


# --- the contracts -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_full_endpoint_env_is_exactly_the_contract(name: str) -> None:
    assert build(name, FULL) == EXPECTED_FULL[name]


@pytest.mark.parametrize("name", ALL)
def test_bare_endpoint_env_is_exactly_the_contract(name: str) -> None:
    assert build(name, BARE) == EXPECTED_BARE[name]


@pytest.mark.parametrize("name", ALL)
def test_probe_channels(name: str) -> None:
    assert presets.get(name).probe_channels(FULL) == EXPECTED_CHANNELS[name]


@pytest.mark.parametrize("name", ["centrifugo", "directus", "laravel-reverb", "soketi"])
def test_prefix_reaches_probe_channels_and_env(name: str) -> None:
    preset = presets.get(name)
    other = Endpoint(host="redis.cms.svc", prefix="shop.api")
    channels = preset.probe_channels(other)
    assert channels and all("shop.api" in c for c in channels)
    assert not set(channels) & set(preset.probe_channels(FULL))
    assert any("shop.api" in str(v) for v in build(name, other).values())


@pytest.mark.parametrize("name", ["hocuspocus", "generic"])
def test_prefix_reaches_apps_without_channels(name: str) -> None:
    assert "shop.api" in build(name, Endpoint(host="redis.cms.svc", prefix="shop.api")).values()


def test_soketi_quotes_values_it_would_json_parse() -> None:
    ep = Endpoint(host="redis.cms.svc", username="1234", prefix="1.5")
    env = build("soketi", ep)
    assert env["SOKETI_ADAPTER_REDIS_PREFIX"] == '"1.5"'
    assert env["SOKETI_DB_REDIS_KEY_PREFIX"] == "1.5:"
    assert env["SOKETI_DB_REDIS_USERNAME"] == '"1234"'
    assert presets.get("soketi").probe_channels(ep) == ["1.5#redis-adapter#comms#req"]


def test_directus_string_flag_protects_prefixes_that_look_like_cast_flags() -> None:
    env = build("directus", Endpoint(host="redis.cms.svc", prefix="json"))
    assert env["REDIS_BUS_NAMESPACE"] == "string:json:bus"
    channels = presets.get("directus").probe_channels(Endpoint(host="r", prefix="json"))
    assert channels == ["json:bus:schemaChanged"]


# --- passwords -----------------------------------------------------------------------------------


def _all_envs() -> list[tuple[str, Endpoint, list[dict[str, Any]]]]:
    endpoints = [FULL, BARE, Endpoint(host="r", password=SECRET), Endpoint(host="r", username="u")]
    return [(name, ep, env_for(presets.get(name), ep)) for name in ALL for ep in endpoints]


def test_no_plaintext_password_anywhere() -> None:
    for name, ep, env in _all_envs():
        for var in env:
            assert set(var) <= {"name", "value", "valueFrom"}, (name, var)
            assert ("value" in var) != ("valueFrom" in var), (name, var)
            if "valueFrom" in var:
                assert var["valueFrom"] == {"secretKeyRef": {"name": SECRET.name, "key": SECRET.key}}, (
                    name,
                    var,
                )
                continue
            value = var["value"]
            assert isinstance(value, str), (name, var)
            assert SECRET.name not in value and SECRET.key not in value, (name, var)
            assert set(re.findall(r"\$\([^)]*\)", value)) <= {REF}, (name, var)
            if "PASSWORD" in var["name"]:
                allowed = {"", REF, f'"{REF}"'} if ep.password else {""}
                assert value in allowed, (name, var)


def test_password_references_come_after_their_definition() -> None:
    for name, _, env in _all_envs():
        defined: set[str] = set()
        for var in env:
            for ref in re.findall(r"\$\(([^)]*)\)", var.get("value", "")):
                assert ref in defined, f"{name}: {var['name']} uses $({ref}) before it is defined"
            defined.add(var["name"])


@pytest.mark.parametrize("name", ALL)
def test_every_preset_authenticates_with_the_secret(name: str) -> None:
    env = presets.get(name).build_env(FULL)
    uses_ref = any(REF in v.get("value", "") for v in env)
    uses_secret = any("valueFrom" in v for v in env)
    assert uses_ref or uses_secret


@pytest.mark.parametrize("name", ALL)
def test_no_password_means_no_secret_and_no_reference(name: str) -> None:
    env = env_for(presets.get(name), BARE)
    assert all("valueFrom" not in v and "$(" not in v["value"] for v in env)


def test_password_var_is_defined_first() -> None:
    for name in ALL:
        env = env_for(presets.get(name), FULL)
        assert env[0] == {
            "name": PASSWORD_VAR,
            "valueFrom": {"secretKeyRef": {"name": SECRET.name, "key": SECRET.key}},
        }


# --- TLS and db ----------------------------------------------------------------------------------


def _urls(env: dict[str, Any]) -> list[str]:
    return [v.removeprefix("string:") for v in env.values() if isinstance(v, str) and "://" in v]


@pytest.mark.parametrize("name", ALL)
def test_tls_switches_the_scheme(name: str) -> None:
    plain_env, tls_env = build(name, Endpoint(host="r")), build(name, Endpoint(host="r", tls=True))
    assert all(u.startswith("redis://") for u in _urls(plain_env))
    assert all(u.startswith("rediss://") for u in _urls(tls_env))
    assert _urls(tls_env) or '{"tls":{}}' in tls_env.values(), f"{name} has no way to turn on TLS"
    assert '{"tls":{}}' not in plain_env.values()


@pytest.mark.parametrize("name", ALL)
def test_db_index_flows_through(name: str) -> None:
    env = build(name, Endpoint(host="r", db=7))
    assert _urls(env) or "7" in env.values()
    assert all(u.endswith(":6379/7") for u in _urls(env))
    assert "0" not in env.values()


# --- env_for -------------------------------------------------------------------------------------


def test_override_replaces_in_place_and_new_names_are_appended() -> None:
    preset = presets.get("generic")
    base_names = [v["name"] for v in env_for(preset, FULL)]
    overrides: list[dict[str, Any]] = [
        {"name": "REDIS_HOST", "value": "redis-proxy"},
        {"name": "EXTRA", "value": "1"},
        {"name": PASSWORD_VAR, "valueFrom": {"secretKeyRef": {"name": "other", "key": "pw"}}},
    ]
    env = env_for(preset, FULL, overrides)
    names = [v["name"] for v in env]
    assert names == [*base_names, "EXTRA"]
    assert env[names.index("REDIS_HOST")] == {"name": "REDIS_HOST", "value": "redis-proxy"}
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "other", "key": "pw"}
    assert env[-1] == {"name": "EXTRA", "value": "1"}


def test_a_repeated_override_name_keeps_one_entry_the_last() -> None:
    env = env_for(presets.get("stalwart"), BARE, [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}])
    assert [v for v in env if v["name"] == "X"] == [{"name": "X", "value": "2"}]


def test_env_for_does_not_share_override_objects() -> None:
    override = {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    env = env_for(presets.get("stalwart"), BARE, [override])
    env[-1]["valueFrom"]["fieldRef"]["fieldPath"] = "changed"
    assert override["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize("name", ALL)
def test_names_are_unique(name: str) -> None:
    for ep in (FULL, BARE):
        names = [v["name"] for v in env_for(presets.get(name), ep, [{"name": "REDIS_HOST", "value": "x"}])]
        assert len(names) == len(set(names))


def _fake(env: list[dict[str, Any]]) -> Preset:
    return Preset("fake", "", "", build_env=lambda ep: env, probe_channels=lambda ep: [])


def test_a_preset_emitting_a_name_twice_is_a_bug() -> None:
    with pytest.raises(ValueError, match="emits A twice"):
        env_for(_fake([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]), BARE)
    with pytest.raises(ValueError, match=f"emits {PASSWORD_VAR} twice"):
        env_for(_fake([{"name": PASSWORD_VAR, "value": "x"}]), FULL)


def test_an_override_without_a_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="without a name"):
        env_for(presets.get("generic"), BARE, [{"value": "1"}])


# --- base helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ep", "url"),
    [
        (Endpoint(host="r"), "redis://r:6379/0"),
        (Endpoint(host="r", password=SECRET), f"redis://:{REF}@r:6379/0"),
        (Endpoint(host="r", username="u"), "redis://u@r:6379/0"),
        (Endpoint(host="r", username="a b@c", password=SECRET), f"redis://a%20b%40c:{REF}@r:6379/0"),
        (Endpoint(host="fd00::1", port=7000, db=2, tls=True), "rediss://[fd00::1]:7000/2"),
    ],
)
def test_redis_url(ep: Endpoint, url: str) -> None:
    assert redis_url(ep) == url


def test_redis_url_without_credentials() -> None:
    assert redis_url(FULL, credentials=False) == "rediss://redis.cms.svc:6380/3"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "r", "port": 0},
        {"host": "r", "port": 70000},
        {"host": "r", "db": -1},
        {"host": "r", "prefix": ""},
    ],
)
def test_endpoint_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Endpoint(**kwargs)


# --- the registry --------------------------------------------------------------------------------


def test_registry_discovers_all_presets_sorted() -> None:
    assert tuple(presets.PRESETS) == ALL


def test_every_module_registers_a_preset_named_after_it() -> None:
    stems = {p.stem for p in PACKAGE_DIR.glob("*.py")} - {"__init__", "base"}
    modules = {m for m in stems if not m.startswith("_")}
    assert {m.replace("_", "-") for m in modules} == set(presets.PRESETS)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        presets.PRESETS["x"] = presets.get("generic")  # type: ignore[index]


def test_get_unknown_lists_valid_names() -> None:
    with pytest.raises(KeyError) as err:
        presets.get("nope")
    message = str(err.value)
    assert "'nope'" in message
    assert ", ".join(ALL) in message


@pytest.mark.parametrize("name", ALL)
def test_preset_metadata_is_filled_in(name: str) -> None:
    preset = presets.get(name)
    assert preset.name == name
    assert preset.summary and preset.app_versions and preset.notes
    assert "\n" not in preset.summary


def test_stalwart_notes_say_v016_is_not_automated() -> None:
    notes = presets.get("stalwart").notes
    assert "v0.16" in notes and "not automate" in notes


def test_stalwart_config_snippet_reads_what_is_injected_and_the_node_id() -> None:
    """The config in stalwart.py's docstring is the one tests/integration/test_preset_stalwart.py runs."""
    from synchro.presets import stalwart

    doc = stalwart.__doc__ or ""
    for name in build("stalwart", FULL):
        if name != PASSWORD_VAR:
            assert f'"%{{env:{name}}}%"' in doc
    assert 'node-id = "%{env:STALWART_NODE_ID}%"' in doc and 'coordinator = "redis"' in doc
    assert "fieldPath: metadata.labels['apps.kubernetes.io/pod-index']" in doc
    assert "STALWART_NODE_ID" not in build("stalwart", FULL)


def test_docs_list_every_preset() -> None:
    text = DOCS.read_text()
    for name in ALL:
        assert f"| `{name}` |" in text, f"docs/presets.md has no row for {name}"
