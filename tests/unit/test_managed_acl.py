"""The managed Redis's users (issue 17 item 14) and the rotation of their passwords (item 10): the pure part.

A real redis-server started from the very files the operator builds checks the users' rights; the table below
checks each step of a rotation, as decide reads it from the Secret alone."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from poll import wait_for
from synchro import api
from synchro.reconcile import decide
from synchro.reconcile.model import SecretStep, TargetState
from synchro.redis import managed

APP, OPERATOR = managed.APP_USER, managed.OPERATOR_USER
# Each forbidden command with arguments it accepts, so that Redis judges the right and not the arity.
FORBIDDEN = {
    "flushall": ["FLUSHALL"],
    "flushdb": ["FLUSHDB"],
    "config": ["CONFIG", "GET", "maxmemory"],
    "debug": ["DEBUG", "SLEEP", "0"],
    "shutdown": ["SHUTDOWN", "NOSAVE"],
    "monitor": ["MONITOR"],
    "acl": ["ACL", "WHOAMI"],
    "replicaof": ["REPLICAOF", "NO", "ONE"],
    "slaveof": ["SLAVEOF", "NO", "ONE"],
    "sync": ["SYNC"],
    "psync": ["PSYNC", "?", "-1"],
    "module": ["MODULE", "LIST"],
    "failover": ["FAILOVER", "ABORT"],
}


def login(port: int, username: str | None = None, password: str | None = None) -> redis.Redis:
    """A client that gives up on the first refusal (redis-py retries a failed AUTH, with backoff, by default)."""
    return redis.Redis(port=port, username=username, password=password, retry=Retry(NoBackoff(), 0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """redis-server with the managed Redis's redis.conf and the auth.conf of a Secret the operator makes."""
    spec = api.parse("ns", "web", {"targets": [{"name": "web", "preset": "generic"}]})
    passwords = managed.new_passwords()
    (tmp_path / "auth.conf").write_text(managed.secret(spec, passwords)["stringData"][managed.SECRET_AUTH_KEY])
    port = free_port()
    conf = managed.redis_conf(spec).replace("/etc/redis/auth/", f"{tmp_path}/").replace("dir /data", f"dir {tmp_path}")
    (tmp_path / "redis.conf").write_text(
        conf.replace(f"port {api.REDIS_PORT}", f"port {port}").replace("0.0.0.0", "127.0.0.1")
    )
    proc = subprocess.Popen(["redis-server", str(tmp_path / "redis.conf")], stdout=subprocess.DEVNULL)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5), "redis up", 10)
    yield port, passwords
    proc.terminate()
    proc.wait(10)


def test_the_app_user_is_refused_each_forbidden_command_and_the_default_user_is_off(
    server: tuple[int, dict[str, str]],
) -> None:
    port, passwords = server
    app = login(port, APP, passwords[APP])
    assert app.set("k", "v") and app.get("k") == b"v" and app.publish("c", "m") == 0  # what the apps do
    assert set(FORBIDDEN) == set(managed.APP_FORBIDDEN)
    operator = login(port, OPERATOR, passwords[OPERATOR])
    for command, args in FORBIDDEN.items():
        refusal = f"no permissions to run the '{command}[|']"
        assert re.search(refusal, operator.execute_command("ACL", "DRYRUN", APP, *args).decode()), command
        # Redis 7 also refuses DEBUG to every connection (enable-debug-command no): the ACL is checked above.
        with pytest.raises(redis.exceptions.ResponseError, match=refusal if command != "debug" else "not allowed"):
            app.execute_command(*args)
    assert operator.execute_command("ACL", "DRYRUN", APP, "PUBLISH", "c", "m") == b"OK"
    assert app.get("k") == b"v"  # nothing was flushed
    for default in (login(port), login(port, None, passwords[APP])):
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            default.ping()
    assert operator.execute_command("ACL", "WHOAMI") == OPERATOR.encode()
    assert passwords[APP] not in managed.auth_conf(passwords)  # the conf file keeps hashes only


def test_redis_takes_the_next_password_beside_the_old_then_refuses_the_old_and_keeps_every_key(
    server: tuple[int, dict[str, str]],
) -> None:
    port, passwords = server
    operator = login(port, OPERATOR, passwords[OPERATOR])
    login(port, APP, passwords[APP]).set("kept", "1")
    following = managed.new_passwords()
    for user in (APP, OPERATOR):  # what act does on a switch, as the operator
        operator.execute_command("ACL", "SETUSER", *managed.setuser(user, following[user], only=False))
    for password in (passwords[APP], following[APP]):
        assert login(port, APP, password).get("kept") == b"1"
    operator = login(port, OPERATOR, following[OPERATOR])
    for user in (APP, OPERATOR):  # and on the finish
        operator.execute_command("ACL", "SETUSER", *managed.setuser(user, following[user], only=True))
    for user in (APP, OPERATOR):
        with pytest.raises(redis.exceptions.AuthenticationError):
            login(port, user, passwords[user]).ping()
    assert login(port, APP, following[APP]).get("kept") == b"1"


# ------------------------------------------------------------------ the steps, read from the Secret


def secret(annotations: dict[str, str] | None = None, **keys: str) -> dict[str, Any]:
    data = {k.replace("_", "-"): base64.b64encode(v.encode()).decode() for k, v in keys.items()}
    meta = {"name": "web-redis", "uid": "s1", "resourceVersion": "7", "annotations": annotations or {}}
    return {"metadata": meta, "data": data}


CURRENT = {"password": "a1", "operator_password": "o1"}
NEXT = {"next_password": "a2", "next_operator_password": "o2"}
STAGED, ROTATED, DONE = managed.ROTATION_ANNOTATIONS


def body(request: str | None) -> dict[str, Any]:
    annotations = {api.ROTATE_PASSWORD_ANNOTATION: request} if request is not None else {}
    return {"metadata": {"name": "web", "namespace": "ns", "uid": "u1", "annotations": annotations}}


ROLLED = TargetState("Deployment", "web", complete=True)
ROLLING = TargetState("Deployment", "web", complete=False)
STEPS: dict[str, tuple[dict[str, Any] | None, str | None, bool, TargetState, str | None, str | None]] = {
    # name: (Secret, request, Redis answers, the target, the step, status phase)
    "new: create the Secret": (None, None, False, ROLLED, SecretStep.CREATE, None),
    "made before ACL users: upgrade": (secret(password="a1"), None, True, ROLLED, SecretStep.UPGRADE, None),
    "settled, never rotated": (secret(**CURRENT), None, True, ROLLED, None, None),
    "asked: stage, even while Redis is down": (secret(**CURRENT), "r1", False, ROLLED, SecretStep.STAGE, "Staged"),
    "staged: switch once Redis answers": (
        secret({STAGED: "r1"}, **CURRENT, **NEXT),
        "r1",
        True,
        ROLLED,
        SecretStep.SWITCH,
        "Staged",
    ),
    "staged, Redis down: wait": (secret({STAGED: "r1"}, **CURRENT, **NEXT), "r1", False, ROLLED, None, "Staged"),
    "switched, apps rolling: wait": (secret({ROTATED: "r1"}, **CURRENT), "r1", True, ROLLING, None, "RollingOut"),
    "switched, apps rolled: finish": (
        secret({ROTATED: "r1"}, **CURRENT),
        "r1",
        True,
        ROLLED,
        SecretStep.FINISH,
        "RollingOut",
    ),
    "finished: nothing more": (secret({ROTATED: "r1", DONE: "r1"}, **CURRENT), "r1", True, ROLLED, None, "Done"),
    "the annotation removed after: nothing": (
        secret({ROTATED: "r1", DONE: "r1"}, **CURRENT),
        None,
        True,
        ROLLED,
        None,
        "Done",
    ),
    "asked again while rolling: stage anew": (
        secret({ROTATED: "r1"}, **CURRENT),
        "r2",
        True,
        ROLLING,
        SecretStep.STAGE,
        "Staged",
    ),
}


@pytest.mark.parametrize("name", STEPS)
def test_each_step_of_a_rotation_is_read_from_the_secret_alone(name: str) -> None:
    found, request, ready, target, step, phase = STEPS[name]
    spec = api.parse("ns", "web", {"targets": [{"name": "web", "preset": "generic"}]})
    decided, status = decide.secret_step(spec, body(request), found, ready, [target])
    assert (decided.kind if decided else None, (status or {}).get("phase")) == (step, phase)
    if step == SecretStep.SWITCH:
        assert decided is not None and dict(decided.passwords) == {APP: "a2", OPERATOR: "o2"}
        assert decided.resource_version == "7" and decided.request == "r1"
    if step == SecretStep.FINISH:
        assert decided is not None and dict(decided.passwords) == {APP: "a1", OPERATOR: "o1"}


def test_a_rotation_on_a_redis_without_auth_is_refused_in_status() -> None:
    spec = api.parse(
        "ns", "web", {"targets": [{"name": "web", "preset": "generic"}], "redis": {"managed": {"auth": False}}}
    )
    step, status = decide.secret_step(spec, body("r1"), secret(**CURRENT), True, [ROLLED])
    assert step is None and status is not None and status["phase"] == "Refused"


def test_the_operator_logs_in_as_its_own_user_and_the_apps_as_the_app_user() -> None:
    spec = api.parse("ns", "web", {"targets": [{"name": "web", "preset": "generic"}]})
    creds = decide.managed_creds(spec, secret(**CURRENT))
    assert (creds.username, creds.password) == (OPERATOR, "o1")
    legacy = decide.managed_creds(spec, secret(password="a1"))  # until the upgrade step has run
    assert (legacy.username, legacy.password) == (None, "a1")
    from synchro.reconcile.model import ManagedSeen

    state = decide.managed_redis(spec, ManagedSeen(secret(**CURRENT)))
    assert state.endpoint is not None and state.endpoint.username == APP
    assert state.endpoint.password == api.SecretRef("web-redis", api.PASSWORD_KEY)


def test_the_secret_patches_of_a_rotation() -> None:
    staged = managed.stage_patch("r1", {APP: "a2", OPERATOR: "o2"})
    assert staged["stringData"] == {"next-password": "a2", "next-operator-password": "o2"}
    switched = managed.switch_patch("r1", managed.secret_data({APP: "a2", OPERATOR: "o2"}), "7")
    assert switched["metadata"]["resourceVersion"] == "7"  # a Secret changed since is not overwritten
    assert switched["data"] == {"next-password": None, "next-operator-password": None}
    assert switched["stringData"]["password"] == "a2" and switched["stringData"]["operator-password"] == "o2"
    assert managed.password_hash("a2") in switched["stringData"][managed.SECRET_AUTH_KEY]
    upgraded = managed.upgrade_patch("a1", "o1")["stringData"]
    assert upgraded["password"] == "a1" and "user default off" in upgraded[managed.SECRET_AUTH_KEY]
