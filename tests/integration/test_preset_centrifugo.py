"""The centrifugo preset with the real Centrifugo v6.9.1 server.

hack/goinstall.go_install builds it once into ~/.cache/synchro/apps/centrifugo-v6.9.1: `go install
github.com/centrifugal/centrifugo/v6@v6.9.1` from the Go module proxy or, where the proxy refuses the module
(it answered 403 when issue 19 was filed), `go build` in the snapshot `centrifugo-v6.9.1.tar.gz` under
SYNCHRO_PEERS (default ../shared/peers beside the repo), whose dependencies the proxy serves. Either way takes
about four minutes cold on two cores.

What the preset relies on, read in Centrifugo's code:
- every option is read from `CENTRIFUGO_` + its key path (internal/config/config.go, GetConfig), so
  engine.type and engine.redis.{address,prefix,db,user,password} (internal/configtypes/engine.go, redis.go);
- each node subscribes to `<prefix>.control` and its own `<prefix>.node.<id>` (centrifuge's broker_redis.go,
  runControlPubSub), so `PUBSUB NUMSUB <prefix>.control`, the preset's probe channel, counts the nodes;
- a `rediss://` address turns TLS on (centrifuge's redis_shard.go, optionsFromAddress).

Two nodes run as host processes (kwok runs no containers) fed the env resolved from the live Deployment, on a
Redis whose ACL user and password (from a Secret) they must both use. A WebSocket client speaking Centrifugo's
JSON protocol, subscribed on node A, must receive a publication made through node B's server API; the channel's
history stream must land in the injected db under the injected prefix; NUMSUB of the probe channel must follow
the node count (2, then 3). The same two nodes with the Deployment's env before injection (the memory engine)
must not pass the publication on, while B's own subscriber still gets it: the check can fail.

A second test points the SyncCluster at a TLS-only Redis: the rediss:// address alone turns TLS on (the CA is
the user's part, here SSL_CERT_FILE), and without the CA a node refuses the server's certificate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import websocket
from goinstall import go_install
from kit import (
    Env,
    RedisServer,
    TlsRedisServer,
    app,
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

# A cold build takes about four minutes on two cores, more on a busy machine.
pytestmark = [pytest.mark.integration, pytest.mark.apps, pytest.mark.timeout(1500)]

MODULE, VERSION = "github.com/centrifugal/centrifugo/v6", "v6.9.1"
API_KEY, HMAC_SECRET = "synchro-api-key", "synchro-hmac-secret"
# The user's own settings, the same on every pod (the preset does not set them): the server API's key, the
# secret that signs connection tokens, a channel clients may subscribe to, with a history kept in the engine.
APP_ENV = {
    "CENTRIFUGO_HTTP_API_KEY": API_KEY,
    "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": HMAC_SECRET,
    "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_ALLOW_SUBSCRIBE_FOR_CLIENT": "true",
    "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_SIZE": "10",
    "CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_HISTORY_TTL": "300s",
    "CENTRIFUGO_USAGE_STATS_DISABLED": "true",
}
CHANNEL = "news"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def connection_token(user: str) -> str:
    """An HS256 JWT for `user`, as the app's backend would give its clients."""
    signed = ".".join(
        _b64(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": user, "exp": int(time.time()) + 3600})
    )
    return f"{signed}.{_b64(hmac.new(HMAC_SECRET.encode(), signed.encode(), hashlib.sha256).digest())}"


class Client:
    """A WebSocket client speaking Centrifugo's JSON protocol: one command per message; the server's replies and
    pushes come one JSON object a line, several to a frame, and an empty object is a ping to answer."""

    def __init__(self, port: int) -> None:
        # No Origin header: a browser's would have to be in client.allowed_origins.
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/connection/websocket", timeout=30, suppress_origin=True
        )
        self.last_id = 0
        self.pushes: list[dict[str, Any]] = []
        self.call("connect", token=connection_token("alice"))

    def _receive(self, timeout: float) -> list[dict[str, Any]]:
        self.ws.settimeout(timeout)
        try:
            frame = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return []
        messages = [json.loads(line) for line in str(frame).splitlines() if line.strip()]
        if {} in messages:
            self.ws.send("{}")
        return [m for m in messages if m]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, method: params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for message in self._receive(deadline - time.monotonic()):
                if message.get("id") != self.last_id:
                    self.pushes.append(message)
                    continue
                assert "error" not in message, f"{method} failed: {message}"
                reply: dict[str, Any] = message[method]
                return reply
        raise AssertionError(f"no reply to {method} within 30 s")

    def publication(self, timeout: float) -> Any:
        """The data of the next publication pushed to this client, or None if none came within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            while self.pushes:
                push = self.pushes.pop(0).get("push") or {}
                if "pub" in push:
                    return push["pub"].get("data")
            if time.monotonic() >= deadline:
                return None
            self.pushes += self._receive(max(deadline - time.monotonic(), 0.01))

    def close(self) -> None:
        self.ws.close()


class Nodes:
    def __init__(self, binary: Path, tmp: Path) -> None:
        self.binary, self.tmp = binary, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.clients: list[Client] = []

    def start(self, env: Mapping[str, str]) -> int:
        port = free_port()
        folder = self.tmp / f"centrifugo-{port}"
        folder.mkdir()
        log = folder / "centrifugo.log"
        pod_local = {"CENTRIFUGO_HTTP_SERVER_ADDRESS": "127.0.0.1", "CENTRIFUGO_HTTP_SERVER_PORT": str(port)}
        proc = subprocess.Popen(
            [str(self.binary)],
            cwd=folder,  # no config.json there: the env is the whole configuration
            env={"PATH": "/usr/bin:/bin", **env, **pod_local},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)

        # Up when its server API answers; one that exits (its engine could not connect) fails the test at once.
        wait_for(lambda: proc.poll() is not None or self.api(port, "info"), f"centrifugo on {port}", 60)
        assert proc.poll() is None, f"centrifugo on {port} exited: {log.read_text(errors='replace')}"
        return port

    def refusal(self, env: Mapping[str, str]) -> str:
        """The output of a node that must exit at startup (Centrifugo stops when its engine cannot connect)."""
        folder = self.tmp / f"refused-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        pod_local = {"CENTRIFUGO_HTTP_SERVER_ADDRESS": "127.0.0.1", "CENTRIFUGO_HTTP_SERVER_PORT": str(free_port())}
        result = subprocess.run(
            [str(self.binary)],
            cwd=folder,
            env={"PATH": "/usr/bin:/bin", **env, **pod_local},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def api(self, port: int, method: str, **params: Any) -> dict[str, Any]:
        """A call to the node's HTTP server API."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/{method}",
            data=json.dumps(params).encode(),
            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "error" not in answer, f"{method} on {port} failed: {answer}"
        result: dict[str, Any] = answer["result"]
        return result

    def subscriber(self, port: int, channel: str) -> Client:
        client = Client(port)
        self.clients.append(client)
        client.call("subscribe", channel=channel)
        return client

    def delivery(self, a: int, b: int, channel: str) -> dict[str, bool]:
        """Who heard a publication made through b's server API: {"a": ..., "b": ...}. Once b's own subscriber
        has it, a's gets 10 s more (over Redis it takes milliseconds)."""
        on_a, on_b = self.subscriber(a, channel), self.subscriber(b, channel)
        data = {"text": uuid.uuid4().hex}
        self.api(b, "publish", channel=channel, data=data)
        return {"b": on_b.publication(30) == data, "a": on_a.publication(10) == data}

    def logs(self) -> str:
        return "\n".join(f"--- {p.parent.name}\n{p.read_text(errors='replace')}" for p in self.tmp.glob("*/*.log"))

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        for p in self.procs:
            p.terminate()
            p.wait(10)
        self.procs, self.clients = [], []


def build() -> Path:
    """Centrifugo, built once per version (tests/integration/prefetch.py calls it too)."""
    version_flag = f"-X {MODULE}/internal/build.Version={VERSION[1:]}"
    return go_install(MODULE, VERSION, "centrifugo", f"centrifugo-{VERSION}.tar.gz", [version_flag])


@pytest.fixture(scope="session")
def centrifugo() -> Path:
    if not shutil.which("go"):
        pytest.skip("go is needed to build Centrifugo")
    binary = build()
    version = subprocess.run([str(binary), "version"], check=True, capture_output=True, text=True).stdout
    assert version.startswith(f"Centrifugo {VERSION} "), version
    return binary


@pytest.fixture()
def nodes(centrifugo: Path, tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(centrifugo, tmp_path)
    yield n
    n.stop()


def probe_channel(prefix: str) -> str:
    [channel] = presets.get("centrifugo").probe_channels(Endpoint(host="-", prefix=prefix))
    return channel


def test_a_publication_through_node_b_reaches_a_subscriber_of_node_a_only_with_the_injected_env(
    env: Env, redis_server: RedisServer, nodes: Nodes
) -> None:
    password = managed_app_user(redis_server)
    env.create(secret("redis-auth", password))
    env.create(app("realtime", plain_env(APP_ENV), container="centrifugo"))
    before = container_env(env, "realtime", "centrifugo")
    env.create(
        sync_cluster(
            "realtime",
            [{"name": "realtime", "preset": "centrifugo"}],
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
    env.wait_condition("realtime", "ConfigInjected", "True")
    wait_for(lambda: "CENTRIFUGO_ENGINE_TYPE" in container_env(env, "realtime", "centrifugo"), "the injected env")
    injected = container_env(env, "realtime", "centrifugo")
    assert not any(name.startswith("CENTRIFUGO_ENGINE") for name in before)
    # What follows checks the injected values by their effect on the nodes, not by their text.
    prefix = f"{env.ns}.realtime"

    def numsub() -> int:
        return int(
            redis_cli(redis_server.port, redis_server.password, "PUBSUB", "NUMSUB", probe_channel(prefix)).split()[-1]
        )

    a, b = nodes.start(injected), nodes.start(injected)
    wait_for(lambda: numsub() == 2, f"two nodes subscribed to {probe_channel(prefix)}", 30)
    for node in (a, b):  # each node's server API lists both
        wait_for(lambda node=node: len(nodes.api(node, "info")["nodes"]) == 2, f"node {node} seeing two nodes", 30)
    assert nodes.delivery(a, b, CHANNEL) == {"a": True, "b": True}, nodes.logs()
    # The history lives in the engine: in the injected db, under the injected prefix, and nowhere else.
    stream = f"{prefix}.stream.{CHANNEL}"
    assert redis_cli(redis_server.port, redis_server.password, "-n", "3", "EXISTS", stream) == "1"
    assert redis_cli(redis_server.port, redis_server.password, "-n", "0", "DBSIZE") == "0"
    # The probe channel counts nodes, not a constant: a third one makes it 3.
    nodes.start(injected)
    wait_for(lambda: numsub() == 3, f"three nodes subscribed to {probe_channel(prefix)}", 30)
    nodes.stop()

    # Negative control: the same two nodes with the env the Deployment had before Synchro (the memory engine).
    c, d = nodes.start(before), nodes.start(before)
    assert nodes.delivery(c, d, CHANNEL) == {"a": False, "b": True}, nodes.logs()
    assert numsub() == 0


@pytest.fixture()
def tls_redis(tmp_path: Path) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(tmp_path / "tls").start()
    yield server
    server.stop()


def test_nodes_reach_a_tls_only_redis_through_the_injected_rediss_address(
    env: Env, tls_redis: TlsRedisServer, nodes: Nodes
) -> None:
    # Trusting a private CA is the user's part: Go reads extra roots from SSL_CERT_FILE (a mounted file in a
    # pod). TLS itself is on only because of the preset's rediss:// address.
    env.create(app("realtime", plain_env({**APP_ENV, "SSL_CERT_FILE": str(tls_redis.ca)}), container="centrifugo"))
    env.create(
        sync_cluster(
            "realtime",
            [{"name": "realtime", "preset": "centrifugo"}],
            replicas=2,
            redis=tls_external_redis(env, tls_redis, 3),
        )
    )
    env.wait_condition("realtime", "ConfigInjected", "True")
    wait_for(lambda: "CENTRIFUGO_ENGINE_TYPE" in container_env(env, "realtime", "centrifugo"), "the injected env")
    injected = container_env(env, "realtime", "centrifugo")
    assert not any(name.startswith("CENTRIFUGO_ENGINE_REDIS_TLS") for name in injected)

    a, b = nodes.start(injected), nodes.start(injected)
    channel = probe_channel(f"{env.ns}.realtime")
    # The server has no plain-text port, so a node counts here only once its TLS handshake succeeded.
    wait_for(lambda: tls_redis.cli("PUBSUB", "NUMSUB", channel).split() == [channel, "2"], "two nodes over TLS", 30)
    assert nodes.delivery(a, b, CHANNEL) == {"a": True, "b": True}, nodes.logs()
    assert tls_redis.cli("-n", "3", "EXISTS", f"{env.ns}.realtime.stream.{CHANNEL}") == "1"
    # The server's certificate is checked, not waved through: without the CA a node stops at startup.
    without_ca = {k: v for k, v in injected.items() if k != "SSL_CERT_FILE"}
    assert "x509: certificate signed by unknown authority" in nodes.refusal(without_ca)
