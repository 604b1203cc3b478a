"""The managed Redis's ACL users (issue 17 item 14) and `synchro.dev/rotate-password` (item 10), end to end.

kwok nodes run no Redis pod, so the test runs its process on the host the way the pod would: redis-server with the
ConfigMap's redis.conf and the Secret's auth.conf, both read from the API server, and an EndpointSlice of the
managed Service that points at it (one the EndpointSlice controller does not manage). An EndpointSlice may not name
a loopback address, so that redis-server listens on this machine's own address, which the operator may reach for
this module only (SYNCHRO_REDIS_NETWORKS). The operator finds it there as it finds a pod's address, and everything
else (users, PING, rotation, rollouts) is the operator's own doing."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kit import ROOT, Env, app, cluster_cmd, container_env, free_port, sync_cluster
from kubernetes import client
from redis.backoff import NoBackoff
from redis.retry import Retry

from poll import wait_for
from synchro import api
from synchro.redis import managed

pytestmark = pytest.mark.integration
HOST = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()[0]


@pytest.fixture(scope="module", autouse=True)
def operator_reaches_this_machine(operator: None) -> Iterator[None]:
    """The session's operator, restarted to reach this machine's own address too; as it was afterwards."""
    before = os.environ.get("SYNCHRO_REDIS_NETWORKS")
    os.environ["SYNCHRO_REDIS_NETWORKS"] = f"127.0.0.0/8,{HOST}/32"
    try:
        cluster_cmd("stop-operator")
        cluster_cmd("start-operator", "--as-service-account")
        yield
    finally:
        if before is None:
            del os.environ["SYNCHRO_REDIS_NETWORKS"]
        else:
            os.environ["SYNCHRO_REDIS_NETWORKS"] = before
        cluster_cmd("stop-operator")
        cluster_cmd("start-operator", "--as-service-account")


class HostRedis:
    """The managed Redis pod's redis-server, on the host, from the objects the operator made."""

    def __init__(self, env: Env, cluster: str, folder: Path) -> None:
        self.env, self.name, self.folder, self.port = env, managed.name(cluster), folder, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HostRedis:
        core = self.env.core
        secret = wait_for(lambda: self.secret(), f"Secret {self.name}")
        conf = wait_for(lambda: self.read(core.read_namespaced_config_map), f"ConfigMap {self.name}").data["redis.conf"]
        (self.folder / "auth.conf").write_text(base64.b64decode(secret.data[managed.SECRET_AUTH_KEY]).decode())
        conf = conf.replace("/etc/redis/auth/", f"{self.folder}/").replace("dir /data", f"dir {self.folder}")
        conf = conf.replace(f"port {api.REDIS_PORT}", f"port {self.port}").replace("0.0.0.0", HOST)
        (self.folder / "redis.conf").write_text(conf)
        self.proc = subprocess.Popen(["redis-server", str(self.folder / "redis.conf")], stdout=subprocess.DEVNULL)
        return self

    def secret(self) -> Any:
        return self.read(self.env.core.read_namespaced_secret)

    def read(self, method: Any) -> Any:
        try:
            return method(self.name, self.env.ns)
        except client.ApiException:
            return None

    def publish_address(self) -> None:
        """What the EndpointSlice controller writes for a ready pod, but for this host process."""
        body = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": f"{self.name}-host", "labels": {"kubernetes.io/service-name": self.name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [HOST], "conditions": {"ready": True}}],
            "ports": [{"name": "redis", "port": self.port, "protocol": "TCP"}],
        }
        client.DiscoveryV1Api(self.env.core.api_client).create_namespaced_endpoint_slice(self.env.ns, body)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def host_redis(env: Env, tmp_path: Path) -> Iterator[HostRedis]:
    env.create(app("chat"))
    env.create(sync_cluster("chat", [{"name": "chat", "preset": "soketi"}], replicas=1, redis={"mode": "Managed"}))
    server = HostRedis(env, "chat", tmp_path).start()
    server.publish_address()
    yield server
    server.stop()


def as_app(server: HostRedis, env: dict[str, str]) -> redis.Redis:
    user, password = (env[f"SOKETI_DB_REDIS_{k}"].strip('"') for k in ("USERNAME", "PASSWORD"))
    return login(server, user, password)


def login(server: HostRedis, username: str | None = None, password: str | None = None) -> redis.Redis:
    """A client that gives up on the first refusal (redis-py retries a failed AUTH, with backoff, by default)."""
    return redis.Redis(HOST, server.port, username=username, password=password, retry=Retry(NoBackoff(), 0))


def test_the_apps_log_in_as_a_user_without_the_dangerous_commands_and_the_default_user_is_off(
    env: Env, host_redis: HostRedis
) -> None:
    ready = env.wait_condition("chat", "RedisReady", "True")  # the operator's PING, as its own user
    assert managed.OPERATOR_USER in str(ready) or "PING answered" in ready["message"]
    env.wait_condition("chat", "Ready", "True")
    injected = container_env(env, "chat", "c0")
    assert injected["SOKETI_DB_REDIS_USERNAME"] == managed.APP_USER
    app_user = as_app(host_redis, injected)
    assert app_user.set("kept", "1")
    for command in (["FLUSHALL"], ["CONFIG", "SET", "maxmemory", "1"], ["ACL", "LIST"], ["SHUTDOWN", "NOSAVE"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app_user.execute_command(*command)
    password = injected["SOKETI_DB_REDIS_PASSWORD"].strip('"')
    for default in (login(host_redis), login(host_redis, None, password)):
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            default.set("kept", "2")
    assert app_user.get("kept") == b"1"


def test_rotate_password_rolls_the_apps_once_and_redis_refuses_the_old_one_without_a_restart(
    env: Env, host_redis: HostRedis
) -> None:
    env.wait_condition("chat", "Ready", "True")
    old = container_env(env, "chat", "c0")
    as_app(host_redis, old).set("kept", "1")
    replica_sets = {rs.metadata.name for rs in env.replica_sets("chat")}
    redis_template = env.deployment("chat-redis").spec.template.metadata.annotations

    patch = {"metadata": {"annotations": {api.ROTATE_PASSWORD_ANNOTATION: "first"}}}
    env.custom.patch_namespaced_custom_object("synchro.dev", "v1alpha1", env.ns, "syncclusters", "chat", patch)

    def rotation() -> dict[str, str]:
        return dict((env.sc("chat").get("status") or {}).get("redis", {}).get("passwordRotation") or {})

    wait_for(lambda: rotation().get("phase") == "Done", "the rotation done", 60)
    new = container_env(env, "chat", "c0")
    assert new["SOKETI_DB_REDIS_PASSWORD"] != old["SOKETI_DB_REDIS_PASSWORD"]
    with pytest.raises(redis.exceptions.AuthenticationError):  # the old password is refused
        as_app(host_redis, old).ping()
    assert as_app(host_redis, new).get("kept") == b"1"  # same process, every key kept
    assert host_redis.proc is not None and host_redis.proc.poll() is None
    assert env.deployment("chat-redis").spec.template.metadata.annotations == redis_template  # no Redis restart
    assert len({rs.metadata.name for rs in env.replica_sets("chat")} - replica_sets) == 1  # the apps rolled once
    secret = host_redis.secret()
    auth_conf = base64.b64decode(secret.data[managed.SECRET_AUTH_KEY]).decode()
    assert managed.password_hash(new["SOKETI_DB_REDIS_PASSWORD"].strip('"')) in auth_conf  # what a restart reads
    assert not any(k.startswith("next-") for k in secret.data)
    reasons = [e.reason for e in env.events("chat")]
    assert "RotatingPassword" in reasons and "PasswordRotated" in reasons

    env.wait_condition("chat", "Ready", "True")  # settled: the annotation left in place rotates nothing more
    settled = {rs.metadata.name for rs in env.replica_sets("chat")}
    env.custom.patch_namespaced_custom_object(
        "synchro.dev", "v1alpha1", env.ns, "syncclusters", "chat", {"metadata": {"labels": {"touched": "yes"}}}
    )
    wait_for(lambda: env.sc("chat")["metadata"]["labels"].get("touched") == "yes", "the edit")
    env.wait_condition("chat", "Ready", "True")
    assert {rs.metadata.name for rs in env.replica_sets("chat")} == settled
    assert as_app(host_redis, new).ping()


def rotation(env: Env, name: str) -> dict[str, str]:
    return dict((env.sc(name).get("status") or {}).get("redis", {}).get("passwordRotation") or {})


def test_a_rotation_staged_while_redis_is_down_survives_an_operator_restart_and_ends_once_redis_answers(
    env: Env, host_redis: HostRedis
) -> None:
    env.wait_condition("chat", "Ready", "True")
    old = container_env(env, "chat", "c0")
    host_redis.stop()
    asked = subprocess.run(  # the CLI verb: it sets the annotation to the time now
        [str(ROOT / "hack" / "kubectl-synchro"), "rotate-password", "chat", "-n", env.ns],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(ROOT / ".cluster" / "kubeconfig")},
    )
    assert asked.returncode == 0, asked.stderr
    wait_for(lambda: rotation(env, "chat").get("phase") == "Staged", "the rotation staged")
    staged = host_redis.secret()
    assert "next-password" in staged.data and "next-operator-password" in staged.data
    cluster_cmd("stop-operator")  # killed between two steps: the next one knows where it was from the Secret
    cluster_cmd("start-operator", "--as-service-account")
    host_redis.start()  # the pod again, with the Secret's auth.conf: still the old passwords only
    wait_for(lambda: rotation(env, "chat").get("phase") == "Done", "the rotation done", 60)
    new = container_env(env, "chat", "c0")
    assert new["SOKETI_DB_REDIS_PASSWORD"] != old["SOKETI_DB_REDIS_PASSWORD"]
    assert host_redis.secret().data["password"] != staged.data["password"]
    with pytest.raises(redis.exceptions.AuthenticationError):
        as_app(host_redis, old).ping()
    assert as_app(host_redis, new).ping()


def test_a_secret_made_before_acl_users_keeps_the_apps_password_for_the_app_user(env: Env, tmp_path: Path) -> None:
    password = "legacy0password0of0an0earlier0synchro"
    legacy = {  # what the previous Synchro created: one password, for the default user
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "old-redis"},
        "stringData": {api.PASSWORD_KEY: password, managed.SECRET_AUTH_KEY: f"requirepass {password}\n"},
    }
    env.core.create_namespaced_secret(env.ns, legacy)
    env.create(app("old"))
    env.create(sync_cluster("old", [{"name": "old", "preset": "soketi"}], replicas=1, redis={"mode": "Managed"}))
    server = HostRedis(env, "old", tmp_path)
    wait_for(lambda: managed.OPERATOR_PASSWORD_KEY in (server.secret().data or {}), "the Secret moved to ACL users")
    moved = server.secret()
    assert base64.b64decode(moved.data[api.PASSWORD_KEY]).decode() == password  # the apps' password is kept
    assert "user default off" in base64.b64decode(moved.data[managed.SECRET_AUTH_KEY]).decode()
    wait_for(lambda: "AclUsers" in [e.reason for e in env.events("old")], "the AclUsers event")
    server.start()  # the Redis pod restarted by its new Deployment, reading the moved Secret
    server.publish_address()
    try:
        env.wait_condition("old", "Ready", "True")
        injected = container_env(env, "old", "c0")
        assert as_app(server, injected).ping() and injected["SOKETI_DB_REDIS_PASSWORD"].strip('"') == password
    finally:
        server.stop()
