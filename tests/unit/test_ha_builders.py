"""The builders of a managed Redis with replicas (synchro.redis.ha): the objects, and where the passwords go.
tests/unit/test_ha_processes.py runs real redis-servers and Sentinels from the configs and Secret built here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from synchro import api
from synchro.redis import ha, managed

TARGETS = [{"name": "web", "preset": "generic"}]


def spec(replicas: int = 3, **managed_fields: Any) -> api.SyncClusterSpec:
    fields = {"replicas": replicas, **managed_fields}
    return api.parse("ns", "web", {"redis": {"managed": fields}, "targets": TARGETS})


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        found.setdefault(o["kind"], []).append(o)
    return found


def test_one_pod_stays_exactly_todays_objects() -> None:
    """replicas: 1 said out loud builds what a spec without the field builds."""
    implicit = api.parse("ns", "web", {"targets": TARGETS})
    assert managed.applied_objects(spec(1), "v1") == managed.applied_objects(implicit, "v1")
    assert [o["kind"] for o in managed.applied_objects(implicit, "v1")] == [
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Deployment",
    ]


def test_three_pods_each_with_a_sentinel_behind_one_client_service_that_follows_the_master_label() -> None:
    objects = by_kind(ha.applied_objects(spec(), "v1"))
    [sts] = objects["StatefulSet"]
    assert sts["metadata"]["name"] == "web-redis" and sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "web-redis-nodes"
    pod = sts["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["redis", "sentinel"]
    assert pod["containers"][1]["command"] == ["sh", "/etc/redis/start/sentinel.sh"]
    assert "readinessProbe" in pod["containers"][0] and "readinessProbe" not in pod["containers"][1]
    [soft] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert soft["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    client, headless = sorted(objects["Service"], key=lambda s: s["metadata"]["name"])
    assert client["metadata"]["name"] == "web-redis"  # what every preset already points at
    assert client["spec"]["selector"] == {**managed.labels("web"), ha.ROLE_LABEL: ha.MASTER}
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    assert ha.ROLE_LABEL not in headless["spec"]["selector"]
    [pdb] = objects["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    [policy] = objects["NetworkPolicy"]
    peers = policy["spec"]["ingress"][1]
    assert {p["port"] for p in peers["ports"]} == {6379, 26379}
    assert {"podSelector": {"matchLabels": managed.labels("web")}} in peers["from"]
    assert "Deployment" not in objects and "PersistentVolumeClaim" not in objects


@pytest.mark.parametrize(("replicas", "quorum"), [(3, 2), (4, 3), (5, 3), (9, 5)])
def test_the_quorum_is_a_majority(replicas: int, quorum: int) -> None:
    assert f"sentinel monitor synchro @MASTER@ 6379 {quorum}\n" in ha.sentinel_conf(spec(replicas))


def test_persistence_gives_each_pod_its_claim() -> None:
    [sts] = by_kind(ha.applied_objects(spec(persistence={"enabled": True, "size": "2Gi"}), "v1"))["StatefulSet"]
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}


def test_passwords_are_in_the_secret_only() -> None:
    passwords = ha.new_passwords()
    assert set(passwords) == {"synchro-app", "synchro-operator", "synchro-replica", "synchro-sentinel"}
    rendered = json.dumps(ha.applied_objects(spec(), "v1"))
    assert not [user for user, pw in passwords.items() if pw in rendered]
    data = ha.secret(spec(), passwords)["stringData"]
    auth = data[managed.SECRET_AUTH_KEY]
    assert not [user for user, pw in passwords.items() if pw in auth]  # auth.conf keeps hashes only
    assert "user synchro-replica on #" in auth and "+psync" in auth and "+@all" not in auth.split("synchro-replica")[1]
    assert data[ha.REPLICATION_CONF_KEY] == f"masteruser synchro-replica\nmasterauth {passwords['synchro-replica']}\n"
    assert f"sentinel auth-pass synchro {passwords['synchro-sentinel']}" in data[ha.SENTINEL_AUTH_KEY]
    assert passwords["synchro-app"] not in data[ha.SENTINEL_AUTH_KEY]  # the apps never log in to a Sentinel
    # the app's and operator's keys are managed.py's, as the presets and connect.py read them
    assert data[api.PASSWORD_KEY] == passwords["synchro-app"]
    assert data[managed.OPERATOR_PASSWORD_KEY] == passwords["synchro-operator"]


def test_without_auth_no_secret_is_mounted_and_no_login_is_tried() -> None:
    [sts] = by_kind(ha.applied_objects(spec(auth=False), "v1"))["StatefulSet"]
    assert "auth" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "--user" not in ha.start_script(spec(auth=False), sentinel=True)
    assert "include" not in ha.redis_conf(spec(auth=False))


@pytest.mark.parametrize("sentinel", [False, True])
def test_the_start_scripts_are_valid_sh_naming_the_stable_hosts(sentinel: bool) -> None:
    script = ha.start_script(spec(), sentinel)
    subprocess.run(["sh", "-n"], input=script.encode(), check=True)
    assert 'short="$me.web-redis-nodes.ns.svc"' in script and 'master="web-redis-0.$suffix"' in script
    assert "for i in $(seq 0 2)" in script
    assert "{" not in script.replace("{ ", "").replace("${", "")  # every placeholder filled


def test_the_objects_are_plain_yaml() -> None:
    yaml.safe_dump(ha.applied_objects(spec(), "v1"))
    assert ha.pod_names(spec()) == ["web-redis-0", "web-redis-1", "web-redis-2"]
    assert ha.pod_host(spec(), "web-redis-1") == "web-redis-1.web-redis-nodes.ns.svc"


# ------------------------------------------------------------------ the start scripts, run with a fake redis-cli

FAKE_REDIS_CLI = """#!/bin/sh
echo "$*" >> "$FAKE/argv.log"
printf '%s' "${REDISCLI_AUTH:-}" > "$FAKE/auth.log"
while [ $# -gt 0 ]; do case "$1" in -h) peer="$2" ;; -p) port="$2" ;; esac; shift; done
[ -f "$FAKE/answers/$peer:$port" ] && cat "$FAKE/answers/$peer:$port" || exit 1
"""


def run_start(
    tmp: Path,
    me: int,
    answers: dict[int, str],
    sentinel: bool,
    infos: dict[int, str] | None = None,
    seed: str = "",
    domain: str = "",
    **fields: Any,
) -> str | None:
    """The start script of pod `me`, with its paths moved under tmp, `hostname` and `redis-cli` faked (each
    peer's Sentinel answers as `answers` says, its Redis's INFO replication as `infos` says, or is unreachable)
    and redis-server replaced by `true`; the config it wrote, or None if it exited without starting. `seed` is
    the ConfigMap's seed (the one-pod Redis being grown from). `domain`: the cluster's, in the pod's resolv.conf
    as the kubelet writes it (none: a resolv.conf without the namespace's search domain)."""
    s = spec(**fields)
    host = lambda i: ha.pod_host(s, f"web-redis-{i}") + (f".{domain}" if domain else "")  # noqa: E731
    search = f"search ns.svc.{domain} svc.{domain} {domain}\n" if domain else "search example.org\n"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "resolv.conf").write_text(search + "nameserver 10.96.0.10\noptions ndots:5\n")
    for d in ("bin", "answers", "etc/auth", "etc/start", "run"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
    (tmp / "bin" / "hostname").write_text(f"#!/bin/sh\necho web-redis-{me}\n")
    (tmp / "bin" / "redis-cli").write_text(FAKE_REDIS_CLI)
    for name in ("hostname", "redis-cli"):
        (tmp / "bin" / name).chmod(0o755)
    for i, said in answers.items():
        (tmp / "answers" / f"{host(i)}:{ha.SENTINEL_PORT}").write_text(said)
    for i, said in (infos or {}).items():
        (tmp / "answers" / f"{host(i)}:{api.REDIS_PORT}").write_text(said)
    (tmp / "etc" / "redis.conf").write_text(ha.redis_conf(s))
    (tmp / "etc" / "sentinel.conf").write_text(ha.sentinel_conf(s))
    data = ha.secret_data(ha.new_passwords())
    for key in (ha.SENTINEL_AUTH_KEY, ha.HA_PASSWORD_KEYS[ha.SENTINEL_USER], ha.REPLICATION_CONF_KEY):
        (tmp / "etc" / "auth" / key).write_text(data[key])
    (tmp / "etc" / "start" / ha.SEED_KEY).write_text(ha.config_map(s, seed)["data"][ha.SEED_KEY])
    script = ha.start_script(s, sentinel).replace("/etc/redis/", f"{tmp}/etc/").replace(ha.RUN_DIR, f"{tmp}/run")
    script = script.replace(ha.RESOLV_CONF, f"{tmp}/resolv.conf")
    script = script.replace("exec redis-server", "exec true").replace(f"sleep {ha.DOWN_AFTER_MS // 1000};", "")
    env = {"PATH": f"{tmp}/bin:/usr/bin:/bin", "FAKE": str(tmp)}
    done = subprocess.run(["sh", "-c", script], env=env, timeout=30, capture_output=True, text=True)
    written = tmp / "run" / ("sentinel.conf" if sentinel else "redis.conf")
    assert (done.returncode == 0) == written.exists(), done.stderr
    return written.read_text() if written.exists() else None


def answer(i: int) -> str:
    return f"{ha.pod_host(spec(), f'web-redis-{i}')}\n6379\n"


@pytest.mark.parametrize(
    ("me", "answers", "master"),
    [
        (0, {}, None),  # a new set: nobody answers, pod-0 is the master
        (1, {}, 0),
        (0, {1: "NOAUTH Authentication required.\n", 2: answer(1)}, 1),  # pod-0 back after a failover
        (2, {1: answer(2)}, None),  # the Sentinels name this pod
    ],
)
def test_redis_starts_as_the_replica_of_the_master_the_sentinels_name(
    tmp_path: Path, me: int, answers: dict[int, str], master: int | None
) -> None:
    conf = run_start(tmp_path, me, answers, sentinel=False)
    assert conf is not None and conf.startswith(ha.redis_conf(spec()))
    assert f"replica-announce-ip {ha.pod_host(spec(), f'web-redis-{me}')}\n" in conf
    replicaof = [line for line in conf.splitlines() if line.startswith("replicaof")]
    assert replicaof == ([] if master is None else [f"replicaof {ha.pod_host(spec(), f'web-redis-{master}')} 6379"])
    password = (tmp_path / "etc" / "auth" / "sentinel-password").read_text()
    assert (tmp_path / "auth.log").read_text() == password  # through REDISCLI_AUTH
    assert password not in (tmp_path / "argv.log").read_text()  # never on a command line


def test_a_sentinel_skips_its_own_pod_and_watches_the_master_its_peers_name(tmp_path: Path) -> None:
    conf = run_start(tmp_path, 0, {0: answer(0), 1: answer(2)}, sentinel=True)
    assert conf is not None
    assert f"sentinel monitor synchro {ha.pod_host(spec(), 'web-redis-2')} 6379 2\n" in conf
    assert f"sentinel announce-ip {ha.pod_host(spec(), 'web-redis-0')}\n" in conf
    asked = (tmp_path / "argv.log").read_text()
    assert "-h web-redis-0." not in asked and "-h web-redis-1." in asked
    assert "sentinel auth-pass synchro " in conf and "@MASTER@" not in conf


def test_with_the_cluster_domain_every_name_ends_in_it_and_a_sentinel_keeps_its_id(tmp_path: Path) -> None:
    """Names that end in the cluster's domain never reach the upstream resolver (ha._FIND_MASTER). The Sentinel's
    id still comes from the name without it: the same Sentinel to its peers as before the domain was added."""
    fqdn = lambda i: f"{ha.pod_host(spec(), f'web-redis-{i}')}.cluster.local"  # noqa: E731
    conf = run_start(tmp_path / "s", 0, {1: f"{fqdn(2)}\n6379\n"}, sentinel=True, domain="cluster.local")
    assert conf is not None
    assert f"sentinel monitor synchro {fqdn(2)} 6379 2\n" in conf and f"sentinel announce-ip {fqdn(0)}\n" in conf
    assert "-h web-redis-1.web-redis-nodes.ns.svc.cluster.local " in (tmp_path / "s" / "argv.log").read_text()
    plain = run_start(tmp_path / "p", 0, {1: answer(2)}, sentinel=True)
    assert plain is not None and f"sentinel announce-ip {ha.pod_host(spec(), 'web-redis-0')}\n" in plain
    myid = [line for line in conf.splitlines() if line.startswith("sentinel myid")]
    assert myid == [line for line in plain.splitlines() if line.startswith("sentinel myid")] and myid
    redis = run_start(tmp_path / "r", 1, {}, sentinel=False, domain="cluster.local")
    assert redis is not None and f"replica-announce-ip {fqdn(1)}\n" in redis and f"replicaof {fqdn(0)} 6379" in redis
    # Pods an older Synchro made announce the names without the domain, and keep them: a pod announced under a
    # second name would be a second replica to the Sentinels. This one is their master.
    named = run_start(tmp_path / "n", 2, {1: answer(2)}, sentinel=False, domain="cluster.local")
    assert named is not None and "replicaof" not in named
    assert f"replica-announce-ip {ha.pod_host(spec(), 'web-redis-2')}\n" in named
    older = run_start(tmp_path / "o", 1, {2: answer(0)}, sentinel=True, domain="cluster.local")
    assert older is not None and f"sentinel announce-ip {ha.pod_host(spec(), 'web-redis-1')}\n" in older
    assert f"sentinel monitor synchro {ha.pod_host(spec(), 'web-redis-0')} 6379 2\n" in older


def replication(master: int, offset: int) -> str:
    """INFO replication of a replica of pod `master`, as Redis writes it (CRLF)."""
    host = ha.pod_host(spec(), f"web-redis-{master}")
    return (
        f"# Replication\r\nrole:slave\r\nmaster_host:{host}\r\nmaster_port:6379\r\nslave_repl_offset:{offset}\r\n"
        f"master_repl_offset:{offset}\r\n"
    )


@pytest.mark.parametrize(
    ("infos", "starts"),
    [
        ({1: replication(0, 0), 2: replication(0, 0)}, True),  # a new set: nothing to lose
        ({2: replication(0, 0)}, True),  # a peer that does not answer holds nothing we know of
        ({1: replication(1, 900), 2: replication(0, 0)}, False),  # data following another pod: still not served empty
        ({1: replication(0, 0), 2: replication(0, 5120)}, False),  # our data on web-redis-2: do not serve empty
    ],
)
def test_a_master_back_empty_does_not_serve_while_another_pod_holds_data(
    tmp_path: Path, infos: dict[int, str], starts: bool
) -> None:
    """The Sentinels still name pod-0 (its Redis restarted within down-after, without persistence)."""
    conf = run_start(tmp_path, 0, {1: answer(0), 2: answer(0)}, sentinel=False, infos=infos)
    assert (conf is not None) == starts
    if conf is not None:
        assert "replicaof" not in conf


def test_with_persistence_a_restarted_master_keeps_its_data_and_serves(tmp_path: Path) -> None:
    persisted = {"persistence": {"enabled": True}}
    infos = {2: replication(0, 5120)}
    assert run_start(tmp_path, 0, {1: answer(0)}, sentinel=False, infos=infos, **persisted) is not None
    assert "INFO replication" not in ha.start_script(spec(**persisted), sentinel=False)
