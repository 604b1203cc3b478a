"""Shared helpers for the operator's integration tests: object builders and a namespace-bound client."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from goinstall import build_once, fresh_partial
from kubernetes import client
from podenv import resolve_env, secret_reader

from poll import wait_for
from synchro.redis import managed

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "synchro.dev", "v1alpha1", "syncclusters"
KUBECTL = str(ROOT / ".cluster" / "bin" / "kubectl")
# The cluster's own redis-server (hack/cluster.py moves it with SYNCHRO_PORT_OFFSET, like every port).
LOCAL_REDIS_PORT = 6379 + int(os.environ.get("SYNCHRO_PORT_OFFSET", "0"))
LOCAL_REDIS = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
CACHE = Path(os.environ.get("SYNCHRO_CACHE", Path.home() / ".cache" / "synchro"))  # app installs, npm's cache


# ---------------------------------------------------------------- fixtures and helpers


def cluster_cmd(*args: str) -> None:
    subprocess.run(["python3", str(ROOT / "hack" / "cluster.py"), *args], check=True, capture_output=True)


def host_operator_running() -> bool:
    """Whether hack/cluster.py's operator (on the host, cluster-wide) runs."""
    status = subprocess.run(["python3", str(ROOT / "hack" / "cluster.py"), "status"], capture_output=True, text=True)
    return any(line.startswith("operator") and "running" in line for line in status.stdout.splitlines())


def sync_cluster(name: str, targets: list[dict[str, Any]], replicas: int = 2, **spec: Any) -> dict[str, Any]:
    spec.setdefault("redis", {"mode": "External", "external": {"url": LOCAL_REDIS}})
    spec.setdefault("probe", {"sidecar": False})  # kwok runs no sidecar; the probe has tests of its own
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncCluster",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "targets": targets, **spec},
    }


def probed_managed_cluster(name: str, target: str, preset: str = "generic") -> dict[str, Any]:
    """The real node's end-to-end shape: one target at 2 replicas, a managed Redis, and the probe's sidecars asking
    every 2 s (timeout 1 s)."""
    return sync_cluster(
        name,
        [{"name": target, "preset": preset}],
        replicas=2,
        redis={"mode": "Managed"},
        probe={"interval": "2s", "timeout": "1s"},
    )


def app(
    name: str,
    env: list[dict[str, str]] | None = None,
    containers: int = 1,
    replicas: int = 1,
    container: str | None = None,
) -> dict[str, Any]:
    """A Deployment of `containers` containers c0, c1, ... (or one named `container`), each with `env`."""
    names = [container] if container else [f"c{i}" for i in range(containers)]
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": n, "image": "example/app", "env": env or []} for n in names]},
            },
        },
    }


def real_app(name: str, container: str, command: list[str]) -> dict[str, Any]:
    """A one-replica Deployment for the real node: the test image running `command`."""
    deployment = app(name, container=container)
    deployment["spec"]["template"]["spec"] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {"name": container, "image": "synchro.local/test:1", "imagePullPolicy": "IfNotPresent", "command": command}
        ],
    }
    return deployment


def plain_env(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in values.items()]


class Env:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def create(self, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment":
            self.apps.create_namespaced_deployment(self.ns, obj)
        elif obj["kind"] == "StatefulSet":
            self.apps.create_namespaced_stateful_set(self.ns, obj)
        elif obj["kind"] == "Secret":
            self.core.create_namespaced_secret(self.ns, obj)
        else:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, obj)

    def sc(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
        return result

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        for c in (self.sc(name).get("status") or {}).get("conditions") or []:
            if c["type"] == type_:
                return dict(c)
        return None

    def wait_condition(
        self, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            c = self.condition(name, type_)
            if c and c["status"] == status and (reason is None or c["reason"] == reason):
                return c
            return None

        return wait_for(check, f"{name} {type_}={status} {reason or ''}", timeout)

    def deployment(self, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, self.ns)

    def env_of(self, name: str, container: int = 0) -> dict[str, Any]:
        c = self.deployment(name).spec.template.spec.containers[container]
        return {e.name: e for e in c.env or []}

    def replica_sets(self, app_label: str) -> list[Any]:
        return list(self.apps.list_namespaced_replica_set(self.ns, label_selector=f"app={app_label}").items)

    def events(self, name: str) -> list[Any]:
        return [e for e in self.core.list_namespaced_event(self.ns).items if e.involved_object.name == name]


def free_port() -> int:
    """A port to listen on later, picked below the kernel's ephemeral range (32768 and up here) and the NodePorts:
    a port the kernel handed out meanwhile as the local end of an outgoing connection (the black hole's pumps, a
    test's clients) cannot take it. A listener once failed with EADDRINUSE when port 0 picked from that range."""
    for _ in range(200):
        port = random.randrange(20000, 30000)  # not NodePorts (30000-32767) either
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise OSError("no free port between 20000 and 29999")


REAL_NODE_TOLERATION = {"key": "synchro.dev/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}


@contextmanager
def fresh_namespace(
    api: client.ApiClient, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> Iterator[str]:
    """A namespace of the test's own, deleted afterwards without waiting."""
    core = client.CoreV1Api(api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    labels = {"synchro.dev/test": "1", **(labels or {})}
    core.create_namespace({"metadata": {"name": name, "labels": labels, "annotations": annotations or {}}})
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as e:
        if e.status != 404:  # a test may have deleted it itself
            raise


class ServerProcess:
    """A server process of the test's own: `start` sets `proc`, `stop` ends it (and may be called again)."""

    proc: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class RedisServer(ServerProcess):
    """A real redis-server of the test's own, with a password, on a free loopback port; it can be stopped and
    started again on the same port."""

    def __init__(self) -> None:
        self.port, self.password = free_port(), uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=0.5), "redis up", 10)
        return self


class TlsRedisServer(ServerProcess):
    """A redis-server of the test's own that speaks only TLS, on a free loopback port, with a certificate for
    127.0.0.1 signed by a CA made for it (`ca`, a PEM file in `folder`)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.ca = folder, free_port(), folder / "ca.crt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TlsRedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        key = "-newkey rsa:2048 -nodes -days 2"
        for args in (
            f"req -x509 {key} -subj /CN=synchro-test-ca -keyout ca.key -out ca.crt",
            f"req {key} -subj /CN=127.0.0.1 -keyout redis.key -out redis.csr",
            "x509 -req -days 2 -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile san.ext -out redis.crt",
        ):
            subprocess.run(["openssl", *args.split()], cwd=self.folder, check=True, capture_output=True)
        # --port 0: no plain-text port; clients need no certificate of their own
        options = "--port 0 --bind 127.0.0.1 --tls-auth-clients no --tls-cert-file redis.crt --tls-key-file redis.key"
        options += " --tls-ca-cert-file ca.crt"
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--tls-port",
                str(self.port),
                "--save",
                "",
                *options.split(),
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.cli("PING") == "PONG", "TLS redis up", 10)
        return self

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "--tls", "--cacert", str(self.ca), "-p", str(self.port), *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()


def redis_cli(port: int, password: str, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "-a", password, "--no-auth-warning", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def managed_app_user(server: RedisServer) -> str:
    """The managed Redis's app user (synchro.redis.managed: its name and rights) on `server`, with a password of its
    own: a real-app test runs the app with exactly the rights it has on a managed Redis, and the app gets in only if
    both the injected user and password reach it. Returns the password."""
    password = uuid.uuid4().hex
    rule = managed.setuser(managed.APP_USER, password, only=True)
    assert redis_cli(server.port, server.password, "ACL", "SETUSER", *rule) == "OK"
    return password


def secret(name: str, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


def container_env(env: Env, deployment: str, container: str) -> dict[str, str]:
    """A container's env as the kubelet would resolve it for a pod of the live Deployment."""
    template = env.core.api_client.sanitize_for_serialization(env.deployment(deployment).spec.template)
    pod: dict[str, Any] = {"metadata": {"name": f"{deployment}-0", "namespace": env.ns}, "spec": template["spec"]}
    return resolve_env(pod, container, secret_reader(env.core, env.ns))


def pod_env(env: Env, pod: str, container: str) -> dict[str, str]:
    """A container's env as the kubelet resolves it for one live pod (its own name and labels included)."""
    obj: dict[str, Any] = env.core.api_client.sanitize_for_serialization(env.core.read_namespaced_pod(pod, env.ns))
    return resolve_env(obj, container, secret_reader(env.core, env.ns))


def tls_external_redis(env: Env, server: TlsRedisServer, db: int) -> dict[str, Any]:
    """spec.redis for `server`, with its CA in the Secret `redis-ca` of the test's namespace."""
    env.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-ca"},
            "stringData": {"ca.crt": server.ca.read_text()},
        }
    )
    url = f"rediss://127.0.0.1:{server.port}/{db}"
    return {"mode": "External", "external": {"url": url, "tls": {"caSecretRef": {"name": "redis-ca", "key": "ca.crt"}}}}


def cached_install(app: Path, install: Callable[[Path], None]) -> Path:
    """apps/<name>'s package.json and lock, installed by `install(folder)` into
    ~/.cache/synchro/apps/<name>-<lock hash>, once per lock. A half-done install is never used: it is built
    in a `.partial-<pid>` folder, and those left by dead processes are removed."""
    lock = (app / "package-lock.json").read_bytes()
    target = CACHE / "apps" / f"{app.name}-{hashlib.sha256(lock).hexdigest()[:16]}"
    build_once(target, target / ".installed", lambda: _npm_install(app, install, target))
    return target


def _npm_install(app: Path, install: Callable[[Path], None], target: Path) -> None:
    partial = fresh_partial(target)
    partial.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(app / name, partial / name)
    install(partial)
    (partial / ".installed").touch()
    shutil.rmtree(target, ignore_errors=True)  # under build_lock: nobody else installs it meanwhile
    partial.rename(target)


def cargo_install(crate: str, version: str, binary: str, features: list[str]) -> Path:
    """`cargo install <crate> =<version>` (debug profile, the crate's own Cargo.lock, only the given features)
    into ~/.cache/synchro/apps/<crate>-<version>, once per version; returns the binary. Only crates.io is used.
    A half-done build is never used: it is installed into a `.partial-<pid>` folder and renamed when complete;
    those left by dead processes are removed. The cargo target dir is kept (~/.cache/synchro/cargo-target/), so
    an interrupted build resumes instead of starting over."""
    target = CACHE / "apps" / f"{crate}-{version}"
    build_once(target, target / "bin" / binary, lambda: _cargo_build(crate, version, features, target))
    return target / "bin" / binary


def _cargo_build(crate: str, version: str, features: list[str], target: Path) -> None:
    partial = fresh_partial(target)
    env = {
        **os.environ,
        "CARGO_TARGET_DIR": str(CACHE / "cargo-target" / f"{crate}-{version}"),
        "CARGO_PROFILE_DEV_DEBUG": "0",
        "CARGO_INCREMENTAL": "0",
    }
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")  # rustup's, if not on PATH
    subprocess.run(
        [
            cargo,
            "install",
            crate,
            "--version",
            f"={version}",
            "--locked",
            "--debug",
            "--no-default-features",
            "--features",
            ",".join(features),
            "--root",
            str(partial),
            "-j",
            str(min(os.cpu_count() or 1, 4)),
        ],
        env=env,
        check=True,
    )
    shutil.rmtree(target, ignore_errors=True)  # under build_lock: nobody else builds it meanwhile
    partial.rename(target)


def container_pid(env: Env, pod: str, container: str, command: str) -> int | None:
    """The host PID of `command` (a word of its command line) in the running `container` of `pod`: the process
    in that container's cgroup, named by the container ID in the pod's status. (The environment would not do:
    redis-server writes its process title over it.)"""
    found = [
        c
        for c in env.core.read_namespaced_pod(pod, env.ns).status.container_statuses or []
        if c.name == container and c.state.running and c.container_id
    ]
    if not found:
        return None
    container_id = found[0].container_id.rpartition("://")[2]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (
                container_id in (proc / "cgroup").read_text()
                and command.encode() in (proc / "cmdline").read_bytes().replace(b"\0", b" ").split()
            ):
                return int(proc.name)
        except OSError:
            continue  # gone meanwhile
    return None


class HocuspocusReplicas:
    """Hocuspocus replicas (apps/hocuspocus) as host processes, each fed an env as a pod would get it."""

    def __init__(self, app: Path, tmp: Path) -> None:
        self.app, self.tmp, self.procs = app, tmp, []  # type: list[subprocess.Popen[bytes]]

    def start(self, env: Mapping[str, str]) -> int:
        port = free_port()
        log = (self.tmp / f"hocuspocus-{port}.log").open("wb")
        proc = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=self.app,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5), f"hocuspocus on {port}", 20)
        return port

    def synchronized(self, a: int, b: int, doc: str) -> bool:
        result = subprocess.run(
            ["node", "check.mjs", str(a), str(b), doc], cwd=self.app, capture_output=True, text=True, timeout=60
        )
        return result.returncode == 0

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(10)
