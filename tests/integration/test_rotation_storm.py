"""A storm of password rotations (issue 17, item 9): a secrets manager refreshing, a script retrying. Synchro rolls a
target that already runs an injected config at most once per decide.ROLLOUT_EVERY_S, so ten rotations in five
seconds roll it at most twice, and the last rollout carries the last password."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from kit import Env, RedisServer, app, redis_cli, secret, sync_cluster

from poll import wait_for
from synchro.reconcile.decide import ROLLOUT_EVERY_S

pytestmark = pytest.mark.integration

ROTATIONS = 10
STORM_S = 5.0


def test_ten_rotations_in_five_seconds_roll_each_target_at_most_twice(env: Env, redis_server: RedisServer) -> None:
    port, password = redis_server.port, redis_server.password
    env.create(secret("redis-auth", password))
    url = f"redis://127.0.0.1:{port}/3"
    for name in ("storm-a", "storm-b"):
        env.create(app(name))
    external = {"mode": "External", "external": {"url": url, "passwordSecretRef": {"name": "redis-auth"}}}
    targets = [{"name": "storm-a", "preset": "generic"}, {"name": "storm-b", "preset": "directus"}]
    env.create(sync_cluster("storm", targets, replicas=2, redis=external))
    env.wait_condition("storm", "Ready", "True")
    before = {name: {rs.metadata.name for rs in env.replica_sets(name)} for name in ("storm-a", "storm-b")}

    started = time.monotonic()
    for i in range(ROTATIONS):
        new_password = uuid.uuid4().hex
        redis_cli(port, password, "CONFIG", "SET", "requirepass", new_password)
        password = new_password
        data = {"password": base64.b64encode(new_password.encode()).decode()}
        env.core.patch_namespaced_secret("redis-auth", env.ns, {"data": data})
        time.sleep(max(started + STORM_S * (i + 1) / ROTATIONS - time.monotonic(), 0))
    # Every rotation is seen (the version moves with each), and the last one wins once its turn comes.
    final_version = env.core.read_namespaced_secret("redis-auth", env.ns).metadata.resource_version

    def settled_on_the_last_password() -> bool:
        status = env.sc("storm")["status"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
        hashes = {t["name"]: t["configHash"] for t in status["targets"]}
        return ready and all(
            env.deployment(n).spec.template.metadata.annotations["synchro.dev/config-hash"] == hashes[n]
            and t["rolledOutHash"] == hashes[n]
            for n, t in ((t["name"], t) for t in status["targets"])
        )

    # Ready means the operator's PING passed with the password it read, and Redis only takes the last one: so the
    # config hash of that same pass, which the pods carry, is the last password's.
    wait_for(settled_on_the_last_password, "both targets rolled out on the last password", ROLLOUT_EVERY_S + 50)
    assert env.core.read_namespaced_secret("redis-auth", env.ns).metadata.resource_version == final_version
    assert redis_cli(port, password, "PING") == "PONG"  # the password the pods now get is Redis's

    for name in ("storm-a", "storm-b"):
        added = {rs.metadata.name for rs in env.replica_sets(name)} - before[name]
        assert 1 <= len(added) <= 2, f"{name}: {len(added)} rollouts for {ROTATIONS} rotations"
        pods = env.core.list_namespaced_pod(env.ns, label_selector=f"app={name}").items
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        wanted = env.deployment(name).spec.template.metadata.annotations["synchro.dev/config-hash"]
        assert live and all(p.metadata.annotations["synchro.dev/config-hash"] == wanted for p in live)
