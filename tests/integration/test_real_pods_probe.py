"""End to end on the real node: a managed Redis, target pods and their synchro-probe sidecars all run as
real containers, and the operator reaches Redis through its pod address. No host stand-ins."""

from __future__ import annotations

import pytest
from kit import Env, probed_managed_cluster, real_app

from poll import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


def test_managed_redis_and_real_sidecars_go_ready(real_env: Env, real_node: str) -> None:
    env = real_env
    env.create(real_app("app", "app", ["sleep", "infinity"]))
    env.create(probed_managed_cluster("live", "app"))

    env.wait_condition("live", "RedisReady", "True", timeout=180)
    env.wait_condition("live", "Ready", "True", timeout=240)
    status = env.sc("live")["status"]
    assert status["probe"]["expected"] == 2 and status["probe"]["healthy"] == 2
    assert status["conditions"][-1]["reason"] == "Ready"
    pods = env.core.list_namespaced_pod(env.ns, label_selector="synchro.dev/cluster=live").items
    assert {p.spec.node_name for p in pods} == {real_node}
    assert all({c.name for c in p.spec.containers} == {"app", "synchro-probe"} for p in pods)
    assert all(all(cs.ready for cs in p.status.container_statuses) for p in pods)
    wait_for(
        lambda: all(len(v) == 1 for v in env.sc("live")["status"]["probe"]["hears"].values()),
        "each sidecar to hear the other",
        60,
    )


@pytest.mark.parametrize("bus", ['"${REDIS_BUS_NAMESPACE#string:}"', "directus:bus"], ids=["namespaced", "legacy"])
def test_the_apps_own_subscriptions_are_counted_and_located(real_env: Env, bus: str) -> None:
    """A stand-in Directus: each pod's app container subscribes to the bus channel the directus preset names,
    with the injected REDIS URL. The probe then sees NUMSUB reach the replica count, and CLIENT LIST finds an
    app subscription from every pod's own IP. `legacy` subscribes where Directus up to 11.16.1 does, ignoring
    REDIS_BUS_NAMESPACE: it must count as well."""
    env = real_env
    # The stand-in logs in as the injected URL's user (synchro-app) with the injected password, which it passes
    # through REDISCLI_AUTH rather than on its command line.
    subscribe = (
        'if [ -z "$REDIS" ]; then exec sleep infinity; fi; url="${REDIS#string:}"; '
        'user="${url#*://}"; user="${user%%:*}"; '
        'REDISCLI_AUTH="$SYNCHRO_REDIS_PASSWORD" exec redis-cli --user "$user" -u "redis://${url#*@}" '
        f"subscribe {bus}:schemaChanged"
    )
    env.create(real_app("cms", "directus", ["sh", "-c", subscribe]))
    env.create(probed_managed_cluster("cms", "cms", "directus"))
    env.wait_condition("cms", "PubSubHealthy", "True", "AllPodsHealthy", timeout=240)
    env.wait_condition("cms", "Ready", "True")
    probe = env.sc("cms")["status"]["probe"]
    assert (probe["expected"], probe["healthy"], probe["unhealthy"]) == (2, 2, [])
