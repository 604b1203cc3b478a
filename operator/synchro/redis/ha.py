"""Pure builders for a managed Redis of 3 or more pods (issue 15): a StatefulSet whose pods each run Redis and a
Sentinel beside it, a headless Service for their stable names, and the one client Service `<name>-redis`, which
selects only the pod the operator labelled master (redis/failover.py decides which).

Passwords live only in the Secret. The conf fragments that must hold one in clear (a replica's `masterauth`, a
Sentinel's `auth-pass`) are Secret keys too; the start scripts (in the ConfigMap) copy them into a per-pod memory
volume, because a Sentinel rewrites its config file as it learns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from synchro import api
from synchro.api import Obj
from synchro.redis import managed
from synchro.redis.failover import Pod
from synchro.redis.model import Address

SENTINEL_PORT = 26379
MASTER_NAME = "synchro"  # what the Sentinels call the master they watch
ROLE_LABEL = f"{api.GROUP}/redis-role"  # on the one pod the client Service may select
MASTER = "master"
HEADLESS_SUFFIX = "-nodes"
DOWN_AFTER_MS = 5000
FAILOVER_TIMEOUT_MS = 15000
# A master that restarted within this long counts as down (Redis 7.0), so a pod that came back empty is
# replaced by a replica that kept the data, instead of being followed by every replica.
REBOOT_DOWN_AFTER_MS = 20000

REPLICA_USER = "synchro-replica"  # the replicas' login to their master
SENTINEL_USER = "synchro-sentinel"  # the Sentinels' login to Redis and to each other
OWN_USERS = frozenset({managed.OPERATOR_USER, REPLICA_USER, SENTINEL_USER})  # never an app's: never cut
HA_PASSWORD_KEYS = {REPLICA_USER: "replica-password", SENTINEL_USER: "sentinel-password"}
REPLICATION_CONF_KEY = "replication.conf"  # masteruser/masterauth, in clear: a Secret key, never a ConfigMap's
SENTINEL_AUTH_KEY = "sentinel-auth.conf"
# Only what replication needs; and what a Sentinel runs on a Redis (the minimum Redis's Sentinel docs give).
REPLICA_RIGHTS = ("+psync", "+replconf", "+ping")
SENTINEL_OPERATOR_RIGHTS = ("&*", "+@all")  # the operator's user on a Sentinel (it has no keys)
SENTINEL_RIGHTS = (
    "&*",
    "+multi",
    "+exec",
    "+slaveof",
    "+replicaof",
    "+ping",
    "+info",
    "+role",
    "+subscribe",
    "+publish",
    "+config|rewrite",
    "+client|setname",
    "+client|kill",
    "+script|kill",
)
RUN_DIR = "/run/redis"  # the per-pod memory volume the start scripts write the live configs to
RESOLV_CONF = "/etc/resolv.conf"  # where the start scripts read the cluster's domain (its first search domain)
# The ConfigMap key naming the one-pod Redis (its IP) that a Redis with replicas grows from: the master its pods
# follow while no Sentinel names one. Empty once that Redis is gone; not part of config_version (no restart).
SEED_KEY = "seed"
SEED_REVISION = "one-pod"  # the "template" of the one-pod Redis's pod, to redis/switchover.py: never the target
POD_TEMPLATE_HASH = "pod-template-hash"  # the label a Deployment's pods carry and a StatefulSet's do not


def headless_name(cluster: str) -> str:
    return managed.name(cluster) + HEADLESS_SUFFIX


def pod_names(spec: api.SyncClusterSpec) -> list[str]:
    assert spec.managed is not None
    return [f"{managed.name(spec.name)}-{i}" for i in range(spec.managed.replicas)]


def pod_selector(spec: api.SyncClusterSpec) -> str:
    """The label selector of the StatefulSet's pods."""
    return ",".join(f"{k}={v}" for k, v in managed.labels(spec.name).items())


def pod_host(spec: api.SyncClusterSpec, pod: str, domain: str = "") -> str:
    """A pod's stable DNS name, through the headless Service (it resolves before the pod is ready); with the
    cluster's `domain` as the pods announce it (failover.World.domain), or without."""
    return f"{pod}.{headless_name(spec.name)}.{spec.namespace}.svc" + (f".{domain}" if domain else "")


def quorum(replicas: int) -> int:
    """Sentinels that must agree a master is down: a majority, so two sides of a partition never both fail over."""
    return replicas // 2 + 1


# ------------------------------------------------------------------ the Secret


def new_passwords() -> dict[str, str]:
    return {**managed.new_passwords(), **{user: managed.new_password() for user in HA_PASSWORD_KEYS}}


def secret_data(passwords: Mapping[str, str]) -> dict[str, str]:
    """The Secret's stringData (user -> password): what managed.secret_data holds for the app and operator users,
    the replication and Sentinel users beside them in auth.conf, and the two fragments that need a clear password."""
    base = {user: passwords[user] for user in managed.PASSWORD_KEYS}
    data = managed.secret_data(base)
    data[managed.SECRET_AUTH_KEY] += "\n".join(
        [
            managed.user_line(REPLICA_USER, passwords[REPLICA_USER], REPLICA_RIGHTS),
            managed.user_line(SENTINEL_USER, passwords[SENTINEL_USER], SENTINEL_RIGHTS),
        ]
    )
    data[managed.SECRET_AUTH_KEY] += "\n"
    data.update({HA_PASSWORD_KEYS[user]: passwords[user] for user in HA_PASSWORD_KEYS})
    data[REPLICATION_CONF_KEY] = f"masteruser {REPLICA_USER}\nmasterauth {passwords[REPLICA_USER]}\n"
    data[SENTINEL_AUTH_KEY] = sentinel_auth_conf(passwords)
    return data


def sentinel_auth_conf(passwords: Mapping[str, str]) -> str:
    """A Sentinel's logins (to Redis, to the other Sentinels) and its own users: none for the apps."""
    sentinel = passwords[SENTINEL_USER]
    lines = [
        f"sentinel auth-user {MASTER_NAME} {SENTINEL_USER}",
        f"sentinel auth-pass {MASTER_NAME} {sentinel}",
        f"sentinel sentinel-user {SENTINEL_USER}",
        f"sentinel sentinel-pass {sentinel}",
        "user default off resetpass",
        managed.user_line(SENTINEL_USER, sentinel, ("&*", "+@all")),
        managed.user_line(managed.OPERATOR_USER, passwords[managed.OPERATOR_USER], SENTINEL_OPERATOR_RIGHTS),
    ]
    return "\n".join(lines) + "\n"


def secret(spec: api.SyncClusterSpec, passwords: Mapping[str, str]) -> Obj:
    return {**managed.secret(spec, {}), "stringData": secret_data(passwords)}


# ------------------------------------------------------------------ configs and start scripts


def redis_conf(spec: api.SyncClusterSpec) -> str:
    """managed.redis_conf plus what a replica needs; the start script adds `replicaof`, the announced name and the
    replication login (not an `include` here: the one-pod Redis a Redis with replicas grows from reads this file
    too if it restarts meanwhile, and its pod has no replication login mounted)."""
    assert spec.managed is not None
    lines = [managed.redis_conf(spec).rstrip("\n")]
    # A full sync streams at once: Redis's default waits 5 s for more replicas, a replica out of sync meanwhile.
    lines += ["replica-read-only yes", "replica-serve-stale-data yes", "repl-diskless-sync-delay 0"]
    return "\n".join(lines) + "\n"


def sentinel_conf(spec: api.SyncClusterSpec, master: str = "@MASTER@") -> str:
    """The Sentinel's config; the start script puts the master it found in place of @MASTER@."""
    assert spec.managed is not None
    name = MASTER_NAME
    lines = [
        f"port {SENTINEL_PORT}",
        "bind 0.0.0.0",
        "protected-mode no",
        f"dir {RUN_DIR}",
        "sentinel resolve-hostnames yes",
        "sentinel announce-hostnames yes",
        f"sentinel monitor {name} {master} {api.REDIS_PORT} {quorum(spec.managed.replicas)}",
        f"sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {name} 1",
        f"sentinel master-reboot-down-after-period {name} {REBOOT_DOWN_AFTER_MS}",
    ]
    return "\n".join(lines) + "\n"


# A POSIX sh (dash) script; {placeholders} are filled by start_script. It asks the Sentinels which master they
# follow (a pod that restarts must not take back a role that moved), else the one-pod Redis it grows from (the
# seed), else pod-0 is the master. A Sentinel skips its own pod's: it is the one starting.
# Names end in the cluster's domain, the first search domain (<namespace>.svc.<domain>): a name without it that
# does not resolve yet (a pod just made) is, after the search list, also asked of the upstream resolver, and on
# the real node 4 such lookups in 150 stalled 2 s there, each putting a Sentinel in TILT mode. With the domain,
# never one in 150. `short`: the name without it, which the operator uses. A Redis whose Sentinels name the master
# that way (its pods made by an older Synchro) keeps it: a pod announced under a second name is a second replica
# to the Sentinels, and a failover then makes the replica it promotes a replica of itself (seen with processes).
_FIND_MASTER = """\
set -eu
me="$(hostname)"
short="$me.{short_suffix}"
domain="$(sed -n 's/^search[[:space:]]*{namespace}\\.svc\\.\\([^[:space:]]*\\).*/\\1/p' {resolv} | head -n 1)"
suffix="{short_suffix}${{domain:+.$domain}}"
self="$me.$suffix"
master=""
if [ -r /etc/redis/auth/sentinel-password ]; then
  REDISCLI_AUTH="$(cat /etc/redis/auth/sentinel-password)"; export REDISCLI_AUTH
fi
for i in $(seq 0 {last}); do
  peer="{sts}-$i.$suffix"
{skip_self}  found="$(timeout 3 redis-cli --no-auth-warning {user}-h "$peer" -p {sentinel_port} \\
    SENTINEL get-master-addr-by-name {master_name} 2>/dev/null | head -n 1)" || found=""
  case "$found" in ""|*ERR*|*NOAUTH*|*WRONGPASS*) ;; *) master="$found"; break ;; esac
done
[ -n "$master" ] || master="$(cat /etc/redis/start/{seed_key})"
[ -n "$master" ] || master="{sts}-0.$suffix"
case "$master" in *.svc) suffix="{short_suffix}"; self="$short" ;; esac
if [ "$master" = "$short" ]; then master="$self"; fi
"""

# Without persistence a Redis restarts empty. If the Sentinels still name it master (it came back within
# down-after) while another pod holds data, serving would hand the replicas an empty dataset to sync: exit
# instead, so the Sentinels see it down and promote a replica; the kubelet starts it again as that one's replica.
# Any peer with a replication offset counts, whichever master it follows: on the real node a replica that was not
# (or not yet) following this pod again was missed by a check for `master_host:` this pod, and the empty Redis
# served.
_REFUSE_EMPTY_MASTER = """\
if [ "$master" = "$self" ]; then
  for i in $(seq 0 {last}); do
    peer="{sts}-$i.$suffix"
    [ "$peer" = "$self" ] && continue
    info="$(timeout 3 redis-cli --no-auth-warning {user}-h "$peer" -p {port} INFO replication 2>/dev/null \\
      | tr -d '\\r')" || info=""
    offset="$(echo "$info" | sed -n 's/^master_repl_offset://p')"
    if [ "${{offset:-0}}" -gt 0 ]; then
      echo "restarted empty while $peer holds data: waiting for the Sentinels to promote a replica" >&2
      sleep {down_after_s}; exit 1
    fi
  done
fi
"""

_START_REDIS = """\
{{ cat /etc/redis/redis.conf; echo "replica-announce-ip $self"
  [ "$master" = "$self" ] || echo "replicaof $master {port}"
  {replication}}} > {run}/redis.conf
exec redis-server {run}/redis.conf
"""

# A Sentinel's id comes from its pod's name: a pod made again under that name is the same Sentinel to the others.
# With a new random id it would be one more Sentinel they know (they never forget one), and the majority a
# failover needs would grow past what the live ones can give: a failover measured at 63 s instead of 10-15 s.
_START_SENTINEL = """\
{{ sed "s/@MASTER@/$master/" /etc/redis/sentinel.conf; echo "sentinel announce-ip $self"
  echo "sentinel myid $(printf %s "$short" | sha1sum | cut -c1-40)"
  {auth}}} > {run}/sentinel.conf
exec redis-server {run}/sentinel.conf --sentinel
"""


def start_script(spec: api.SyncClusterSpec, sentinel: bool) -> str:
    assert spec.managed is not None
    auth = spec.managed.auth
    fill = {
        "short_suffix": f"{headless_name(spec.name)}.{spec.namespace}.svc",
        "namespace": spec.namespace,
        "resolv": RESOLV_CONF,
        "sts": managed.name(spec.name),
        "last": spec.managed.replicas - 1,
        "user": f"--user {SENTINEL_USER} " if auth else "",
        "sentinel_port": SENTINEL_PORT,
        "master_name": MASTER_NAME,
        "port": api.REDIS_PORT,
        "run": RUN_DIR,
        "auth": f"cat /etc/redis/auth/{SENTINEL_AUTH_KEY}; " if auth else "",
        "replication": f"cat /etc/redis/auth/{REPLICATION_CONF_KEY}; " if auth else "",
        "seed_key": SEED_KEY,
        "skip_self": '  [ "$peer" = "$self" ] && continue\n' if sentinel else "",
        "down_after_s": DOWN_AFTER_MS // 1000,
    }
    tail = _START_SENTINEL if sentinel else _START_REDIS
    if not sentinel and not spec.managed.persistence_size:
        tail = _REFUSE_EMPTY_MASTER + tail
    return "#!/bin/sh\n" + _FIND_MASTER.format(**fill) + tail.format(**fill)


def config_map(spec: api.SyncClusterSpec, seed: str = "") -> Obj:
    """The configs and start scripts; `seed` is the IP of the one-pod Redis being grown from ("": none)."""
    data = {
        "redis.conf": redis_conf(spec),
        "sentinel.conf": sentinel_conf(spec),
        "start-redis.sh": start_script(spec, sentinel=False),
        "start-sentinel.sh": start_script(spec, sentinel=True),
        SEED_KEY: seed,
    }
    return {**managed.config_map(spec), "data": data}


# ------------------------------------------------------------------ the objects


def _volumes(spec: api.SyncClusterSpec) -> tuple[list[Obj], list[Obj]]:
    """The mounts (the same in both containers) and the pod's volumes. With persistence, the data volume comes
    from the StatefulSet's volumeClaimTemplates, one claim per pod."""
    assert spec.managed is not None
    cm = managed.name(spec.name)
    mounts: list[Obj] = [
        {"name": "config", "mountPath": "/etc/redis/redis.conf", "subPath": "redis.conf"},
        {"name": "config", "mountPath": "/etc/redis/sentinel.conf", "subPath": "sentinel.conf"},
        {"name": "start", "mountPath": "/etc/redis/start", "readOnly": True},
        {"name": "run", "mountPath": RUN_DIR},
        {"name": "data", "mountPath": "/data"},
    ]
    scripts = [{"key": f"start-{c}.sh", "path": f"{c}.sh"} for c in ("redis", "sentinel")]
    scripts.append({"key": SEED_KEY, "path": SEED_KEY})
    volumes: list[Obj] = [
        {"name": "config", "configMap": {"name": cm}},
        {"name": "start", "configMap": {"name": cm, "items": scripts}},
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    if not spec.managed.persistence_size:
        volumes.append({"name": "data", "emptyDir": {}})
    if spec.managed.auth:
        mounts.append({"name": "auth", "mountPath": "/etc/redis/auth", "readOnly": True})
        keys = [managed.SECRET_AUTH_KEY, REPLICATION_CONF_KEY, SENTINEL_AUTH_KEY, HA_PASSWORD_KEYS[SENTINEL_USER]]
        items = [{"key": k, "path": k} for k in keys]
        volumes.append({"name": "auth", "secret": {"secretName": cm, "items": items}})
    return mounts, volumes


def _containers(spec: api.SyncClusterSpec, mounts: list[Obj]) -> list[Obj]:
    """Redis as managed.py runs it, started by its script; and a Sentinel beside it, from the same image. The
    Sentinel has no readiness probe: a pod is ready only when all its containers are, and a Sentinel that does not
    answer must not take the master out of the apps' Service (the operator sees it as a Sentinel that is silent)."""
    redis = managed.redis_container(spec, mounts)
    redis["command"] = ["sh", "/etc/redis/start/redis.sh"]
    sentinel = {
        **{k: v for k, v in redis.items() if k != "readinessProbe"},
        "name": "sentinel",
        "command": ["sh", "/etc/redis/start/sentinel.sh"],
        "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT}],
        "livenessProbe": {"tcpSocket": {"port": SENTINEL_PORT}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    return [redis, sentinel]


def _anti_affinity(spec: api.SyncClusterSpec) -> Obj:
    """Soft: spread the pods over nodes where there are several, run them anyway where there is one."""
    term = {"labelSelector": {"matchLabels": managed.labels(spec.name)}, "topologyKey": "kubernetes.io/hostname"}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
        }
    }


def stateful_set(spec: api.SyncClusterSpec, config_version: str) -> Obj:
    assert spec.managed is not None
    mounts, volumes = _volumes(spec)
    deployment = managed.deployment(spec, config_version)
    template = deployment["spec"]["template"]
    template["spec"].update(containers=_containers(spec, mounts), volumes=volumes, affinity=_anti_affinity(spec))
    sts_spec: Obj = {
        "replicas": spec.managed.replicas,
        "serviceName": headless_name(spec.name),
        "podManagementPolicy": "Parallel",
        # The operator deletes the pods of an old template in its own order (redis/switchover.py): the replicas
        # first, then the master after one planned failover.
        "updateStrategy": {"type": "OnDelete"},
        "selector": {"matchLabels": managed.labels(spec.name)},
        "template": template,
    }
    if spec.managed.persistence_size:
        pvc = managed.persistent_volume_claim(spec)
        assert pvc is not None
        sts_spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": pvc["spec"]}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": deployment["metadata"], "spec": sts_spec}


def service(spec: api.SyncClusterSpec) -> Obj:
    """The apps' one address, `<name>-redis`: only the pod labelled master is behind it (none: fail closed)."""
    obj = managed.service(spec)
    obj["spec"]["selector"] = {**managed.labels(spec.name), ROLE_LABEL: MASTER}
    return obj


def headless_service(spec: api.SyncClusterSpec) -> Obj:
    """Stable names for the pods, published before they are ready: replicas and Sentinels find each other by them."""
    obj = managed.service(spec)
    obj["metadata"]["name"] = headless_name(spec.name)
    obj["spec"] = {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": managed.labels(spec.name),
        "ports": [
            {"name": "redis", "port": api.REDIS_PORT, "targetPort": "redis"},
            {"name": "sentinel", "port": SENTINEL_PORT, "targetPort": "sentinel"},
        ],
    }
    return obj


def network_policy(spec: api.SyncClusterSpec) -> Obj:
    """The targets reach Redis; the operator reaches Redis and the Sentinels; the pods reach each other on both."""
    obj = managed.network_policy(spec)
    [targets_and_operator] = obj["spec"]["ingress"]
    both = [{"port": p, "protocol": "TCP"} for p in (api.REDIS_PORT, SENTINEL_PORT)]
    peers = {"podSelector": {"matchLabels": managed.labels(spec.name)}}
    operator = {"namespaceSelector": {}, "podSelector": {"matchLabels": managed.OPERATOR_POD_LABELS}}
    obj["spec"]["ingress"] = [targets_and_operator, {"ports": both, "from": [peers, operator]}]
    return obj


def pod_disruption_budget(spec: api.SyncClusterSpec) -> Obj:
    obj = managed.pod_disruption_budget(spec)
    del obj["spec"]["minAvailable"]
    obj["spec"]["maxUnavailable"] = 1
    return obj


def applied_objects(spec: api.SyncClusterSpec, config_version: str, seed: str = "") -> list[Obj]:
    """Everything but the Secret, in the order they should be applied."""
    return [
        config_map(spec, seed),
        headless_service(spec),
        service(spec),
        network_policy(spec),
        pod_disruption_budget(spec),
        stateful_set(spec, config_version),
    ]


def applied_kinds(spec: api.SyncClusterSpec) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every object applied_objects() builds, in its order."""
    return [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in applied_objects(spec, "")]


def config_version(spec: api.SyncClusterSpec) -> dict[str, str]:
    """What the pods must restart for when it changes: the ConfigMap's configs and start scripts (not the
    passwords, which a rotation sets live, nor the seed, which only a pod that finds no Sentinel reads)."""
    data = dict(config_map(spec)["data"])
    del data[SEED_KEY]
    return data


def pods(spec: api.SyncClusterSpec, listed: Sequence[Obj], reachable: Callable[[str], bool]) -> list[Pod]:
    """Every pod the StatefulSet should have, from the Redis pods listed (one missing, or without an IP yet, or at
    an IP the operator may not connect to, cannot be reached: it counts as a pod and a Sentinel that are silent)."""
    by_name = {p["metadata"]["name"]: p for p in listed}
    found = []
    for name in pod_names(spec):
        pod = by_name.get(name, {})
        meta = pod.get("metadata") or {}
        ip = (pod.get("status") or {}).get("podIP") or None
        host = ip if ip and reachable(ip) else ""
        names = {(pod_host(spec, name).lower(), api.REDIS_PORT)} | ({(ip, api.REDIS_PORT)} if ip else set())
        labelled = (meta.get("labels") or {}).get(ROLE_LABEL) == MASTER
        where = ((host, api.REDIS_PORT), (host, SENTINEL_PORT))
        revision = (meta.get("labels") or {}).get("controller-revision-hash", "")
        ready = not meta.get("deletionTimestamp") and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        found.append(Pod(name, *where, frozenset(names), ip, labelled, meta.get("uid", ""), revision, ready))
    return found


def seed_pod(spec: api.SyncClusterSpec, listed: Sequence[Obj], reachable: Callable[[str], bool]) -> Pod | None:
    """The pod of the one-pod Redis (managed.py's Deployment) that a Redis with replicas grows from: listed with
    the StatefulSet's pods (they share their labels), told apart by the label only a Deployment's pods carry. It
    runs no Sentinel. None while it has no IP the operator may reach, or is going away."""
    for obj in listed:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        labels = meta.get("labels") or {}
        ip = status.get("podIP") or None
        if POD_TEMPLATE_HASH not in labels or meta.get("deletionTimestamp") or not ip or not reachable(ip):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        where = ((ip, api.REDIS_PORT), ("", SENTINEL_PORT))
        labelled = labels.get(ROLE_LABEL) == MASTER
        names = frozenset({(ip, api.REDIS_PORT)})
        return Pod(meta["name"], *where, names, ip, labelled, meta.get("uid", ""), SEED_REVISION, ready, False)
    return None


def seed_commands(passwords: Mapping[str, str]) -> list[list[str]]:
    """What the one-pod Redis needs to be grown from, sent live (its config predates them): the replicas' and the
    Sentinels' users, and the login it follows the new master with once the Sentinels demote it."""
    replica, sentinel = passwords[REPLICA_USER], passwords[SENTINEL_USER]
    return [
        ["ACL", "SETUSER", REPLICA_USER, "on", "resetpass", managed.password_hash(replica), *REPLICA_RIGHTS],
        ["ACL", "SETUSER", SENTINEL_USER, "on", "resetpass", managed.password_hash(sentinel), *SENTINEL_RIGHTS],
        ["CONFIG", "SET", "masteruser", REPLICA_USER, "masterauth", replica],
    ]


def rotation_commands(passwords: Mapping[str, str], *, only: bool) -> tuple[list[list[str]], list[list[str]]]:
    """A password rotation's ACL SETUSER (managed.setuser: beside the old, or with `only` the one password) for
    every Redis pod (the app's and the operator's users: ACL users are not replicated), then for every Sentinel
    (the operator's user, which the Sentinels have too). The replication and Sentinel users are not rotated."""
    redis = [["ACL", "SETUSER", *managed.setuser(user, password, only=only)] for user, password in passwords.items()]
    reset = ["resetpass"] if only else []
    operator = managed.password_hash(passwords[managed.OPERATOR_USER])
    sentinel = [["ACL", "SETUSER", managed.OPERATOR_USER, "on", *reset, operator, *SENTINEL_OPERATOR_RIGHTS]]
    return redis, sentinel


def heir_commands(passwords: Mapping[str, str] | None, master: Address) -> list[list[str]]:
    """What makes the one-pod Redis a replica of `master` while a Redis with replicas moves back to it: never
    promoted by the Sentinels (replica-priority 0), logged in as the replication user when `passwords` are given."""
    login = ["masteruser", REPLICA_USER, "masterauth", passwords[REPLICA_USER]] if passwords else []
    return [["CONFIG", "SET", "replica-priority", "0", *login], ["REPLICAOF", master[0], str(master[1])]]


def monitor_commands(spec: api.SyncClusterSpec, host: str, passwords: Mapping[str, str] | None) -> list[list[str]]:
    """What a running Sentinel is sent to monitor another master, as sentinel_conf and the start script would
    have it: forget the old one, monitor `host`, the same timeouts, the same login when `passwords` are given."""
    assert spec.managed is not None
    name = MASTER_NAME
    settings = [
        "down-after-milliseconds", str(DOWN_AFTER_MS),
        "failover-timeout", str(FAILOVER_TIMEOUT_MS),
        "parallel-syncs", "1",
        "master-reboot-down-after-period", str(REBOOT_DOWN_AFTER_MS),
    ]  # fmt: skip
    if passwords:
        settings += ["auth-user", SENTINEL_USER, "auth-pass", passwords[SENTINEL_USER]]
    return [
        ["SENTINEL", "REMOVE", name],
        ["SENTINEL", "MONITOR", name, host, str(api.REDIS_PORT), str(quorum(spec.managed.replicas))],
        ["SENTINEL", "SET", name, *settings],
    ]


def label_patch(master: bool) -> Obj:
    """The merge patch that puts the master label on a pod, or takes it off."""
    return {"metadata": {"labels": {ROLE_LABEL: MASTER if master else None}}}
