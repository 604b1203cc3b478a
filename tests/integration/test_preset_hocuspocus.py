"""The hocuspocus preset with the real @hocuspocus/server 3.4.4 and @hocuspocus/extension-redis 3.4.4.

Two replicas run as processes fed the env resolved from the live Deployment, exactly as the kubelet would
give it to the containers. A Y.js update sent to replica A must reach a client of replica B; the same two
replicas without the injected env must not synchronize, which proves the check can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import (
    Env,
    HocuspocusReplicas,
    RedisServer,
    app,
    container_env,
    managed_app_user,
    plain_env,
    secret,
    sync_cluster,
)

from poll import wait_for
from synchro.redis.managed import APP_USER

pytestmark = [pytest.mark.integration, pytest.mark.apps]


@pytest.fixture()
def replicas(hocuspocus_app: Path, tmp_path: Path) -> Iterator[HocuspocusReplicas]:
    r = HocuspocusReplicas(hocuspocus_app, tmp_path)
    yield r
    r.stop()


def test_replicas_synchronize_through_the_injected_redis_and_not_without_it(
    env: Env, replicas: HocuspocusReplicas, redis_server: RedisServer
) -> None:
    password = managed_app_user(redis_server)
    env.create(secret("redis-auth", password))
    env.create(app("collab", plain_env({"NODE_ENV": "production"}), container="hocuspocus"))
    before = container_env(env, "collab", "hocuspocus")
    env.create(
        sync_cluster(
            "collab",
            [{"name": "collab", "preset": "hocuspocus"}],
            replicas=2,
            redis={
                "mode": "External",
                "external": {
                    "url": f"redis://{APP_USER}@127.0.0.1:{redis_server.port}/5",
                    "passwordSecretRef": {"name": "redis-auth"},
                },
            },
        )
    )
    env.wait_condition("collab", "ConfigInjected", "True")
    wait_for(lambda: "REDIS_HOST" in container_env(env, "collab", "hocuspocus"), "the injected env")
    injected = container_env(env, "collab", "hocuspocus")
    assert injected["HOCUSPOCUS_REDIS_PREFIX"] == f"{env.ns}.collab"

    a, b = replicas.start(injected), replicas.start(injected)
    assert replicas.synchronized(a, b, "doc-with-redis"), "replicas with the injected env did not synchronize"

    c, d = replicas.start(before), replicas.start(before)
    assert not replicas.synchronized(c, d, "doc-without-redis"), "replicas without Redis synchronized anyway"
