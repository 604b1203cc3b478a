"""The stalwart preset with a real Stalwart server: stalwart-lite 0.16.0 from crates.io.

No Stalwart Labs build is in a registry reachable here. stalwart-lite is a third-party fork packaged as one crate
(binary `stalwart`) that tracks upstream v0.15.6 with the TOML configuration. It drops the webadmin bundle, and its
HTTP router has no /jmap route (crates/http/src/request.rs), so the client here speaks IMAP. It is built once
with cargo (kit.cargo_install: debug profile, features redis + sqlite + enterprise) and cached under
~/.cache/synchro/apps/stalwart-lite-0.16.0. A cold build takes about 16 minutes on two cores (15.5 measured),
with a 2.2 GB target dir kept under ~/.cache/synchro/cargo-target/: a repeated build takes seconds, an
interrupted one resumes.

The target is a StatefulSet of two pods with the override the docs recommend: STALWART_NODE_ID from the
pod-index label (0 and 1). Two nodes run as host processes (kwok runs no containers) fed the env resolved from
the two live pods, with the config.toml of the preset's docs (a Redis store whose urls is
`%{env:STALWART_REDIS_URL}%`, `storage.lookup` and `cluster.coordinator` on it, `cluster.node-id =
"%{env:STALWART_NODE_ID}%"`) and one shared SQLite file for data, blobs, search and the directory. The Redis
is password-protected, so `$(SYNCHRO_REDIS_PASSWORD)` in the URL is exercised too.

The effect is IMAP IDLE: a client idling on node B's INBOX hears a message APPENDed through node A. B's IDLE
waits only on B's push manager (crates/imap/src/op/idle.rs), which hears of A's change only through the
`stwt.agora` broadcast (crates/services/src/broadcast/). The same nodes fail to synchronize
 - with the same node-id on both (each drops the other's broadcast as its own), which also proves the
   `%{env:STALWART_NODE_ID}%` macro reaches the integer node-id, and
 - with the app's config without Synchro (no Redis store, no coordinator): B's client still hears B's own
   APPEND, so the check can fail for the right reason only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kit import (
    Env,
    RedisServer,
    cargo_install,
    free_port,
    managed_app_user,
    pod_env,
    redis_cli,
    secret,
    sync_cluster,
)

from poll import wait_for
from synchro.redis.managed import APP_USER

# A cold build compiles ~600 crates: about 16 minutes on two cores.
pytestmark = [pytest.mark.integration, pytest.mark.apps, pytest.mark.timeout(2400)]

VERSION = "0.16.0"
USER, PASSWORD = "alice", "alice-secret"
ADMIN = ("admin", "synchro-admin-secret")

# What the preset's docs tell the user to put in config.toml (operator/synchro/presets/stalwart.py); its
# `[storage] lookup = "redis"` goes into the app's own [storage] table (TOML allows only one).
SYNCHRO_TOML = """
[store."redis"]
type = "redis"
redis-type = "single"
urls = "%{env:STALWART_REDIS_URL}%"
timeout = "10s"

[cluster]
coordinator = "redis"
node-id = "%{env:STALWART_NODE_ID}%"
"""

# The app's own config, the same on every node; without Synchro's part its in-memory store is SQLite too.
APP_TOML = """
[server]
hostname = "mail.synchro.test"

[server.listener."http"]
bind = ["127.0.0.1:{http}"]
protocol = "http"

[server.listener."imap"]
bind = ["127.0.0.1:{imap}"]
protocol = "imap"

[storage]
data = "sqlite"
blob = "sqlite"
fts = "sqlite"
directory = "internal"
lookup = "{lookup}"

[store."sqlite"]
type = "sqlite"
path = "{db}"

[directory."internal"]
type = "internal"
store = "sqlite"

[imap.auth]
allow-plain-text = true

[spam-filter]
# No download of the spam rules from the internet: an empty local file (a logged error, not fatal).
resource = "file://{empty}"

[authentication.fallback-admin]
user = "{admin}"
secret = "{secret}"

[tracer."stdout"]
type = "stdout"
level = "info"
ansi = false
enable = true
"""


def config(folder: Path, db: Path, http: int, imap: int, synchro: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "empty.toml").touch()
    text = APP_TOML.format(
        http=http,
        imap=imap,
        db=db,
        empty=folder / "empty.toml",
        admin=ADMIN[0],
        secret=ADMIN[1],
        lookup="redis" if synchro else "sqlite",
    )
    if synchro:
        text += SYNCHRO_TOML
    path = folder / "config.toml"
    path.write_text(text)
    return path


class Imap:
    """A plain IMAP client on loopback: enough for LOGIN, SELECT, APPEND and IDLE."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.tag = 0
        assert self.file.readline().startswith(b"* OK")

    def command(self, line: str, literal: bytes | None = None) -> list[bytes]:
        self.tag += 1
        tag = f"t{self.tag}".encode()
        if literal is None:
            self.sock.sendall(tag + b" " + line.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + line.encode() + b" {%d}\r\n" % len(literal))
            assert self.file.readline().startswith(b"+"), "no continuation for the literal"
            self.sock.sendall(literal + b"\r\n")
        lines = []
        while not (line_ := self.file.readline()).startswith(tag):
            assert line_, "the IMAP server closed the connection"
            lines.append(line_)
        assert line_.startswith(tag + b" OK"), f"{line} failed: {line_!r}"
        return lines

    def idle(self) -> None:
        self.sock.sendall(b"idle IDLE\r\n")
        assert self.file.readline().startswith(b"+"), "IDLE not accepted"

    def heard(self, timeout: float) -> bytes | None:
        """The next untagged line while idling, or None if none came within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.file.readline() or None
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(60)

    def close(self) -> None:
        self.sock.close()


def message() -> bytes:
    return (f"From: bob@synchro.test\r\nTo: {USER}@synchro.test\r\nSubject: {uuid.uuid4()}\r\n\r\nhello\r\n").encode()


class Nodes:
    def __init__(self, binary: Path, tmp: Path) -> None:
        self.binary, self.tmp = binary, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.clients: list[Imap] = []

    def start(self, env: Mapping[str, str], db: Path, synchro: bool) -> tuple[int, int]:
        http, imap = free_port(), free_port()
        folder = self.tmp / f"node-{imap}"
        path = config(folder, db, http, imap, synchro)
        log = (folder / "stalwart.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                [str(self.binary), "--config", str(path)],
                cwd=folder,
                env={"PATH": "/usr/bin:/bin", **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(lambda: socket.create_connection(("127.0.0.1", imap), timeout=0.5), f"stalwart IMAP on {imap}", 120)
        wait_for(lambda: socket.create_connection(("127.0.0.1", http), timeout=0.5), f"stalwart HTTP on {http}", 60)
        return http, imap

    def client(self, port: int) -> Imap:
        self.clients.append(Imap(port))
        self.clients[-1].command(f"LOGIN {USER} {PASSWORD}")
        return self.clients[-1]

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        for p in self.procs:
            p.terminate()
            p.wait(30)
        self.procs, self.clients = [], []


def create_user(http: int) -> None:
    """The user, through node A's management API, into the shared directory."""
    for body in (
        '{"type":"domain","name":"synchro.test"}',
        f'{{"type":"individual","name":"{USER}","secrets":["{PASSWORD}"],'
        f'"emails":["{USER}@synchro.test"],"roles":["user"]}}',
    ):
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail-with-body",
                "-u",
                ":".join(ADMIN),
                "-X",
                "POST",
                f"http://127.0.0.1:{http}/api/principal",
                "-d",
                body,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0 and '"data"' in out.stdout, f"creating a principal failed: {out.stdout}"


def b_hears_a(nodes: Nodes, a: tuple[int, int], b: tuple[int, int], timeout: float) -> bytes | None:
    """APPEND a message through node A while a client idles on node B's INBOX; what B's client heard."""
    listener = nodes.client(b[1])
    listener.command("SELECT INBOX")
    listener.idle()
    nodes.client(a[1]).command("APPEND INBOX", message())
    return listener.heard(timeout)


def b_hears_itself(nodes: Nodes, b: tuple[int, int]) -> bytes | None:
    listener = nodes.client(b[1])
    listener.command("SELECT INBOX")
    listener.idle()
    nodes.client(b[1]).command("APPEND INBOX", message())
    return listener.heard(60)


def numsub(redis: RedisServer, channel: str) -> int:
    return int(redis_cli(redis.port, redis.password, "PUBSUB", "NUMSUB", channel).splitlines()[1])


@pytest.fixture(scope="session")
def stalwart() -> Path:
    if not shutil.which("cargo"):
        pytest.skip("cargo is needed to build stalwart-lite")
    if not shutil.which("curl"):
        pytest.skip("curl is needed for Stalwart's management API")
    return build()


def build() -> Path:
    """stalwart-lite, built once per version (tests/integration/prefetch.py calls it too)."""
    return cargo_install("stalwart-lite", VERSION, "stalwart", ["redis", "sqlite", "enterprise"])


@pytest.fixture()
def nodes(stalwart: Path, tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(stalwart, tmp_path)
    yield n
    n.stop()


def test_nodes_synchronize_through_the_injected_redis_and_not_without_it(
    env: Env, nodes: Nodes, redis_server: RedisServer, tmp_path: Path
) -> None:
    password = managed_app_user(redis_server)
    env.create(secret("redis-auth", password))
    env.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "mail"},
            "spec": {
                "replicas": 2,
                "serviceName": "mail",
                "selector": {"matchLabels": {"app": "mail"}},
                "template": {
                    "metadata": {"labels": {"app": "mail"}},
                    "spec": {
                        "containers": [
                            {"name": "stalwart", "image": "example/stalwart", "env": [{"name": "TZ", "value": "UTC"}]}
                        ]
                    },
                },
            },
        }
    )
    before = [wait_for(lambda i=i: pod_env(env, f"mail-{i}", "stalwart"), f"pod mail-{i}") for i in (0, 1)]
    # The docs' recipe: STALWART_NODE_ID is the user's, one per pod, from the StatefulSet pod index.
    node_id = {
        "name": "STALWART_NODE_ID",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}},
    }
    env.create(
        sync_cluster(
            "mail",
            [{"kind": "StatefulSet", "name": "mail", "preset": "stalwart", "env": [node_id]}],
            replicas=2,
            redis={
                "mode": "External",
                "external": {
                    "url": f"redis://{APP_USER}@127.0.0.1:{redis_server.port}/4",
                    "passwordSecretRef": {"name": "redis-auth"},
                },
            },
        )
    )
    env.wait_condition("mail", "ConfigInjected", "True")
    # The live pods, once the StatefulSet has rolled them with the injected env.
    injected = [
        wait_for(
            lambda i=i: (e := pod_env(env, f"mail-{i}", "stalwart")).get("STALWART_NODE_ID") and e,
            f"pod mail-{i} with the injected env",
            120,
        )
        for i in (0, 1)
    ]
    for i, pod in enumerate(injected):
        assert pod["STALWART_REDIS_URL"] == f"redis://{APP_USER}:{password}@127.0.0.1:{redis_server.port}/4"
        assert pod["STALWART_NODE_ID"] == str(i)
        assert "STALWART_REDIS_URL" not in before[i]

    db = tmp_path / "with-redis.sqlite3"
    a = nodes.start(injected[0], db, synchro=True)
    b = nodes.start(injected[1], db, synchro=True)
    create_user(a[0])
    wait_for(lambda: numsub(redis_server, "stwt.agora") == 2, "both nodes subscribed to stwt.agora", 60)
    heard = b_hears_a(nodes, a, b, 60)
    assert heard and (b"MESSAGES 1" in heard or b"1 EXISTS" in heard), (
        f"node B's IDLE client did not hear the message appended through node A: {heard!r}"
    )
    nodes.stop()

    # The same injected env, but pod 0's node-id on both: each drops the other's broadcast as its own.
    db = tmp_path / "same-node-id.sqlite3"
    a = nodes.start(injected[0], db, synchro=True)
    b = nodes.start({**injected[1], "STALWART_NODE_ID": injected[0]["STALWART_NODE_ID"]}, db, synchro=True)
    create_user(a[0])
    wait_for(lambda: numsub(redis_server, "stwt.agora") == 2, "both nodes subscribed to stwt.agora", 60)
    assert b_hears_a(nodes, a, b, 15) is None, "nodes with the same node-id synchronized anyway"
    assert b_hears_itself(nodes, b), "node B's IDLE client did not hear B's own APPEND"
    nodes.stop()

    # The app without Synchro: the pods' env before injection, the same shared database, no Redis store and no
    # coordinator in the config.
    db = tmp_path / "without-redis.sqlite3"
    a = nodes.start(before[0], db, synchro=False)
    b = nodes.start(before[1], db, synchro=False)
    create_user(a[0])
    assert numsub(redis_server, "stwt.agora") == 0
    assert b_hears_a(nodes, a, b, 15) is None, "nodes without the coordinator synchronized anyway"
    assert b_hears_itself(nodes, b), "node B's IDLE client did not hear B's own APPEND"
