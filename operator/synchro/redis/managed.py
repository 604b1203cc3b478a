"""Pure builders for the Redis that Synchro runs for a SyncCluster. Each object is owned by the SyncCluster."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from synchro import api
from synchro.api import Obj

SECRET_AUTH_KEY = "auth.conf"  # a redis.conf fragment with the ACL users; never put in the ConfigMap
OPERATOR_PASSWORD_KEY = "operator-password"
APP_USER = "synchro-app"  # what the apps (and their synchro-probe sidecars) log in as
OPERATOR_USER = "synchro-operator"  # the operator's PING, probe and password rotation
# What the app user may not run: no wiping, reconfiguring, stopping, spying on or re-pointing the Redis, and no
# user management. SLAVEOF is REPLICAOF's old name; SYNC/PSYNC would stream every write, like MONITOR.
APP_FORBIDDEN = (
    "flushall",
    "flushdb",
    "config",
    "debug",
    "shutdown",
    "monitor",
    "acl",
    "replicaof",
    "slaveof",
    "sync",
    "psync",
    "module",
    "failover",
)
# The Secret's keys by user: the current password, and the next one while a rotation is staged.
PASSWORD_KEYS = {APP_USER: api.PASSWORD_KEY, OPERATOR_USER: OPERATOR_PASSWORD_KEY}
NEXT_KEYS = {APP_USER: "next-password", OPERATOR_USER: "next-operator-password"}
# On the Secret: the rotate-password request its current passwords answer, and the one finished (old refused).
STAGED_ANNOTATION = f"{api.GROUP}/rotation-staged"  # the request whose next passwords are staged
ROTATED_FOR_ANNOTATION = f"{api.GROUP}/rotated-for"
ROTATION_DONE_ANNOTATION = f"{api.GROUP}/rotation-done"
ROTATION_ANNOTATIONS = (STAGED_ANNOTATION, ROTATED_FOR_ANNOTATION, ROTATION_DONE_ANNOTATION)
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "synchro-operator"}


def name(cluster: str) -> str:
    return f"{cluster}-redis"


def labels(cluster: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "synchro-redis",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/managed-by": "synchro",
    }


def owner_of(labels: dict[str, str] | None) -> str | None:
    """The SyncCluster a managed Redis object belongs to, read back from the labels `labels()` gave it."""
    labels = labels or {}
    if labels.get("app.kubernetes.io/name") != "synchro-redis":
        return None
    return labels.get("app.kubernetes.io/instance")


def _meta(spec: api.SyncClusterSpec) -> Obj:
    return {"name": name(spec.name), "namespace": spec.namespace, "labels": labels(spec.name)}


def new_password() -> str:
    return secrets.token_hex(24)


def rights(user: str) -> list[str]:
    """The user's ACL rules but for its passwords: every key and channel; the app user without APP_FORBIDDEN."""
    rules = ["~*", "&*", "+@all"]
    return rules + [f"-{command}" for command in APP_FORBIDDEN] if user == APP_USER else rules


def password_hash(password: str) -> str:
    """The form the config keeps a password in (`#<sha256>`), so the conf file itself holds none."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def user_line(user: str, password: str, rules: Sequence[str]) -> str:
    """One `user` line of a Redis config: the user on, with its password's hash and its rules."""
    return " ".join(["user", user, "on", password_hash(password), *rules])


def auth_conf(passwords: Mapping[str, str]) -> str:
    """The `user` lines Redis reads at start (user -> password): the default user off, each of ours on."""
    lines = ["user default off resetpass"]
    lines += [user_line(user, passwords[user], rights(user)) for user in passwords]
    return "\n".join(lines) + "\n"


def secret_data(passwords: Mapping[str, str]) -> dict[str, str]:
    """The Secret's stringData for these passwords (user -> password)."""
    keys = {PASSWORD_KEYS[user]: password for user, password in passwords.items()}
    return {**keys, SECRET_AUTH_KEY: auth_conf(passwords)}


def new_passwords() -> dict[str, str]:
    return {user: new_password() for user in PASSWORD_KEYS}


def secret(spec: api.SyncClusterSpec, passwords: Mapping[str, str]) -> Obj:
    """Created once, never re-applied: the generated passwords must survive operator restarts. Only a
    rotation (or the move of a Secret made before ACL users, `upgraded_data`) changes them."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(spec),
        "type": "Opaque",
        "stringData": secret_data(passwords),
    }


def upgrade_patch(app_password: str, operator_password: str) -> Obj:
    """A Secret made before ACL users: the apps keep their password, now the app user's; the operator gets one."""
    return {"stringData": secret_data({APP_USER: app_password, OPERATOR_USER: operator_password})}


def stage_patch(request: str, following: Mapping[str, str]) -> Obj:
    """Rotation, first write: the next passwords, which nothing uses yet."""
    keys = {NEXT_KEYS[user]: password for user, password in following.items()}
    return {"metadata": {"annotations": {STAGED_ANNOTATION: request}}, "stringData": keys}


def switch_patch(request: str, data: Mapping[str, str], resource_version: str) -> Obj:
    """Rotation, second write (Redis already takes the next passwords): they become the current ones. `data`:
    secret_data of them (ha.secret_data with replicas, which keeps the replication and Sentinel users)."""
    return {
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": {STAGED_ANNOTATION: None, ROTATED_FOR_ANNOTATION: request},
        },
        "data": {key: None for key in NEXT_KEYS.values()},
        "stringData": dict(data),
    }


def finish_patch(request: str, resource_version: str) -> Obj:
    """Rotation, last write (Redis refuses the old passwords now)."""
    return {"metadata": {"resourceVersion": resource_version, "annotations": {ROTATION_DONE_ANNOTATION: request}}}


def setuser(user: str, password: str, *, only: bool) -> list[str]:
    """`ACL SETUSER` arguments that add this password to the user (both work meanwhile), or with `only`, make it
    the user's one password: the one the Secret holds, whatever Redis had."""
    return [user, "on", *(["resetpass"] if only else []), password_hash(password), *rights(user)]


def redis_conf(spec: api.SyncClusterSpec) -> str:
    assert spec.managed is not None
    lines = [
        f"port {api.REDIS_PORT}",
        "bind 0.0.0.0",
        "protected-mode no",
        "dir /data",
        "appendonly yes" if spec.managed.persistence_size else "appendonly no",
        'save ""' if not spec.managed.persistence_size else "save 300 10",
    ]
    if spec.managed.auth:
        lines.append("include /etc/redis/auth/auth.conf")
    return "\n".join(lines) + "\n"


def config_map(spec: api.SyncClusterSpec) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(spec), "data": {"redis.conf": redis_conf(spec)}}


def _volumes(spec: api.SyncClusterSpec) -> tuple[list[Obj], list[Obj]]:
    """The Redis container's mounts and the pod's volumes: its config, its data, and the password's conf fragment."""
    managed = spec.managed
    assert managed is not None
    mounts: list[Obj] = [
        {"name": "config", "mountPath": "/etc/redis/redis.conf", "subPath": "redis.conf"},
        {"name": "data", "mountPath": "/data"},
    ]
    data = {"persistentVolumeClaim": {"claimName": name(spec.name)}} if managed.persistence_size else {"emptyDir": {}}
    volumes: list[Obj] = [{"name": "config", "configMap": {"name": name(spec.name)}}, {"name": "data", **data}]
    if managed.auth:
        mounts.append({"name": "auth", "mountPath": "/etc/redis/auth", "readOnly": True})
        items = [{"key": SECRET_AUTH_KEY, "path": SECRET_AUTH_KEY}]
        volumes.append({"name": "auth", "secret": {"secretName": name(spec.name), "items": items}})
    return mounts, volumes


def redis_container(spec: api.SyncClusterSpec, mounts: list[Obj]) -> Obj:
    managed = spec.managed
    assert managed is not None
    # Ready once it answers; with the default user off the answer is NOAUTH. Without a password the probe never
    # lags a rotation (the kubelet refreshes a mounted Secret a minute late).
    ping = ["sh", "-c", "redis-cli ping | grep -qE 'PONG|NOAUTH'"]
    return {
        "name": "redis",
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server", "/etc/redis/redis.conf"],
        "ports": [{"name": "redis", "containerPort": api.REDIS_PORT}],
        "readinessProbe": {"exec": {"command": ping}, "periodSeconds": 2, "timeoutSeconds": 2},
        "livenessProbe": {"tcpSocket": {"port": api.REDIS_PORT}, "periodSeconds": 10},
        "resources": dict(managed.resources),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def deployment(spec: api.SyncClusterSpec, config_version: str) -> Obj:
    mounts, volumes = _volumes(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(spec),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels(spec.name)},
            "template": {
                "metadata": {"labels": labels(spec.name), "annotations": {api.CONFIG_HASH_ANNOTATION: config_version}},
                "spec": {
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "fsGroup": 999,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [redis_container(spec, mounts)],
                    "volumes": volumes,
                },
            },
        },
    }


def service(spec: api.SyncClusterSpec) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec),
        "spec": {
            "selector": labels(spec.name),
            "ports": [{"name": "redis", "port": api.REDIS_PORT, "targetPort": "redis"}],
        },
    }


def network_policy(spec: api.SyncClusterSpec) -> Obj:
    """Only the target pods (which carry the cluster label) and the operator reach Redis."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(spec),
        "spec": {
            "podSelector": {"matchLabels": labels(spec.name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "ports": [{"port": api.REDIS_PORT, "protocol": "TCP"}],
                    "from": [
                        {"podSelector": {"matchLabels": {api.CLUSTER_LABEL: spec.name}}},
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": OPERATOR_POD_LABELS}},
                    ],
                }
            ],
        },
    }


def pod_disruption_budget(spec: api.SyncClusterSpec) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(spec),
        "spec": {
            "minAvailable": 1,
            "selector": {"matchLabels": labels(spec.name)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def persistent_volume_claim(spec: api.SyncClusterSpec) -> Obj | None:
    managed = spec.managed
    if managed is None or not managed.persistence_size:
        return None
    pvc_spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": managed.persistence_size}}}
    if managed.storage_class:
        pvc_spec["storageClassName"] = managed.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(spec), "spec": pvc_spec}


def applied_objects(spec: api.SyncClusterSpec, config_version: str) -> list[Obj]:
    """Everything but the Secret, in the order they should be applied."""
    objects = [
        config_map(spec),
        persistent_volume_claim(spec),
        service(spec),
        network_policy(spec),
        pod_disruption_budget(spec),
        deployment(spec, config_version),
    ]
    return [o for o in objects if o is not None]


def applied_kinds(spec: api.SyncClusterSpec) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of every object applied_objects() builds, in its order."""
    return [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in applied_objects(spec, "")]


def available(deployment: Obj | None) -> bool:
    """The Redis Deployment has a pod that passed its readiness probe (redis-cli PING)."""
    return bool(((deployment or {}).get("status") or {}).get("availableReplicas"))
