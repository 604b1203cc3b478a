"""The failover core and its I/O (synchro.redis.failover, synchro.redis.nodes) against real processes, no cluster.

Three redis-servers and three Sentinels on free loopback ports, each started from the very configs and Secret
that synchro.redis.ha builds (ACL users for the apps, the operator, replication and the Sentinels; the default
user off). The Kubernetes side is played by the test: a set of labelled pods, and an EndpointSlice that lists the
labelled pods from the pass after a label moved (as the endpoints controller would).

"Stragglers" are app connections that land on a non-master after the switch: a reconnect that kube-proxy still
sent to the old pod, or a connection kept to a pod that left the Service. Sentinel's own reconfiguration kills
the clients of the nodes it reconfigures, but not these: each test first checks they are still there (so the
final check fails without the fence), then that the fence closed them and nothing else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from poll import wait_for
from synchro import api
from synchro.conditions import Condition
from synchro.reconcile import act
from synchro.reconcile.model import Reach, RedisState, SecretStep
from synchro.redis import failover, ha, listen, managed, nodes, shrink, switchover
from synchro.redis.model import Credentials

APP, OPERATOR = managed.APP_USER, managed.OPERATOR_USER
OWN = frozenset({OPERATOR, ha.REPLICA_USER, ha.SENTINEL_USER})
SWITCH_DEADLINE_S = 30  # down-after 5 s, then Sentinel's election and promotion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resp(*args: str) -> bytes:
    return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)


def on_loopback(conf: str, folder: Path, port: int) -> str:
    """A Redis config as synchro builds it, made to run here: its files in `folder`, on a loopback port."""
    return (
        conf.replace("/etc/redis/auth/", f"{folder}/")
        .replace("dir /data", f"dir {folder}")
        .replace(f"port {api.REDIS_PORT}", f"port {port}")
        .replace("bind 0.0.0.0", "bind 127.0.0.1")
    )


class App:
    """An app's connection, as a raw socket: logged in as the app user, named, optionally subscribed."""

    def __init__(self, port: int, password: str, name: str, subscribe: bool = False) -> None:
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        commands = [("AUTH", APP, password), ("CLIENT", "SETNAME", name)]
        for command in commands + ([("SUBSCRIBE", "app-channel")] if subscribe else []):
            self.sock.sendall(resp(*command))
            assert self.sock.recv(4096)[:1] in (b"+", b"*"), command

    def closed(self) -> bool:
        """The server closed it: a read finds the end of the stream (nothing is published to it here)."""
        self.sock.settimeout(0.2)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True


class Replicas:
    """The processes, and the Kubernetes side the operator would read and write: labels and the EndpointSlice."""

    def __init__(self, tmp: Path, sentinels: bool = True) -> None:
        """`sentinels`: start them now, once both replicas are linked (else start_sentinels, later). A Sentinel
        learns the replicas from the master's INFO, at once on connecting and then every 10 s: started before the
        replicas link, it would know them only 10 s later (measured: the fixture took 11 s instead of 3)."""
        self.spec = api.parse(
            "ns", "web", {"redis": {"managed": {"replicas": 3}}, "targets": [{"name": "w", "preset": "generic"}]}
        )
        self.passwords = ha.new_passwords()
        data = ha.secret_data(self.passwords)
        for key in (managed.SECRET_AUTH_KEY, ha.REPLICATION_CONF_KEY):
            (tmp / key).write_text(data[key])
        self.ports = [free_port() for _ in range(3)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.names = [f"web-redis-{i}" for i in range(3)]
        self.redis = [self.start_redis(tmp, i) for i in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []
        if sentinels:
            self.linked()
            self.start_sentinels(tmp)
        self.creds = Credentials(OPERATOR, self.passwords[OPERATOR], 0, False)
        self.labelled: set[str] = set()
        self.routed: frozenset[str] = frozenset()  # what the EndpointSlice lists: the IPs labelled a pass ago
        self.silence = failover.Silence()
        self.status: dict[str, Any] = {}

    def monitor(self, port: int) -> list[list[str]]:
        """ha.monitor_commands for the Redis on `port` (the test's ports, not 6379)."""
        commands = ha.monitor_commands(self.spec, "127.0.0.1", self.passwords)
        return [[*c[:4], str(port), *c[5:]] if c[1] == "MONITOR" else c for c in commands]

    def start_redis(self, tmp: Path, i: int) -> subprocess.Popen[bytes]:
        conf = on_loopback(ha.redis_conf(self.spec), tmp, self.ports[i])
        conf += f"dbfilename node-{i}.rdb\n" + (f"replicaof 127.0.0.1 {self.ports[0]}\n" if i else "")
        conf += (tmp / ha.REPLICATION_CONF_KEY).read_text()  # what the start script appends
        (tmp / f"redis-{i}.conf").write_text(conf)
        log = (tmp / f"redis-{i}.log").open("w")
        return subprocess.Popen(["redis-server", str(tmp / f"redis-{i}.conf")], stdout=log, stderr=log)

    def start_sentinels(self, tmp: Path) -> None:
        auth = ha.secret_data(self.passwords)[ha.SENTINEL_AUTH_KEY]
        self.sentinels = [self.start_sentinel(tmp, i, auth) for i in range(3)]

    def start_sentinel(self, tmp: Path, i: int, auth: str) -> subprocess.Popen[bytes]:
        quorum = ha.quorum(3)
        conf = (
            ha.sentinel_conf(self.spec, "127.0.0.1")
            .replace(f"port {ha.SENTINEL_PORT}", f"port {self.sentinel_ports[i]}")
            .replace("bind 0.0.0.0", "bind 127.0.0.1")
            .replace(f"dir {ha.RUN_DIR}", f"dir {tmp}")
            .replace(f"127.0.0.1 {api.REDIS_PORT} {quorum}", f"127.0.0.1 {self.ports[0]} {quorum}")
        )
        path = tmp / f"sentinel-{i}.conf"  # a Sentinel rewrites its config: a file of its own
        path.write_text(conf + auth)
        log = (tmp / f"sentinel-{i}.log").open("w")
        return subprocess.Popen(["redis-server", str(path), "--sentinel"], stdout=log, stderr=log)

    def stop(self) -> None:
        for proc in self.redis + self.sentinels:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.redis + self.sentinels:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    # ------------------------------------------------------------ what the operator sees and does

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, username=OPERATOR, password=self.passwords[OPERATOR], socket_timeout=2)

    def pod(self, i: int) -> str:
        return self.names[i]

    def ip(self, pod: str) -> str:
        return f"10.0.0.{self.names.index(pod)}"

    def pods(self) -> list[nodes.Pod]:
        return [
            nodes.Pod(
                name,
                ("127.0.0.1", self.ports[i]),
                ("127.0.0.1", self.sentinel_ports[i]),
                frozenset({("127.0.0.1", self.ports[i])}),
                self.ip(name),
                name in self.labelled,
            )
            for i, name in enumerate(self.names)
        ]

    def step(self) -> tuple[failover.Verdict, int]:
        """One pass: observe, decide, then act as part 2's act will (labels in order, the fence)."""

        async def run() -> tuple[failover.Verdict, int]:
            before = {k: self.status[k] for k in ("previous_master", "last_failover") if k in self.status}
            world = await nodes.look(self.pods(), self.creds, OWN, self.routed, self.silence, now="now", **before)
            verdict = failover.decide(world)
            self.routed = frozenset(self.ip(pod) for pod in self.labelled)  # the last pass's labels, now routed
            for move in verdict.labels:
                (self.labelled.add if move.master else self.labelled.discard)(move.pod)
            cut = await nodes.fence(verdict, self.pods(), self.creds)
            self.status = {"previous_master": verdict.master or "", "last_failover": verdict.status.get("lastFailover")}
            return verdict, cut

        return asyncio.run(run())

    def settle(self, what: str, timeout: float = 30) -> tuple[failover.Verdict, set[tuple[str, int]]]:
        """Passes until one has nothing left to move or wait for; the connections cut on the way, as (pod, id),
        each checked closed by Redis (CLIENT KILL answered 1)."""
        cut: set[tuple[str, int]] = set()

        def settled() -> failover.Verdict | None:
            verdict, killed = self.step()
            ids = {(c.pod, i) for c in verdict.cuts for i in c.ids}
            assert killed == len(ids)
            cut.update(ids)
            return verdict if verdict.serving and not verdict.labels and not verdict.cuts else None

        return wait_for(settled, what, timeout, interval=0.3), cut

    def app_ids(self, port: int) -> tuple[int, ...]:
        listing = tuple(failover.client_from(fields) for fields in self.client(port).client_list())
        return failover.app_clients(listing, OWN)

    def ids(self, port: int) -> dict[str, int]:
        """Connection name -> id."""
        return {c["name"]: int(c["id"]) for c in self.client(port).client_list() if c["name"]}

    def sentinel_users(self, port: int) -> set[str]:
        """The Sentinels (by the run id in their connection names) that hold connections to this Redis."""
        names = [c["name"] for c in self.client(port).client_list() if c["user"] == ha.SENTINEL_USER]
        return {name.split("-")[1] for name in names if name.startswith(failover.SENTINEL_NAME_PREFIX)}

    def denied(self, port: int) -> list[tuple[str, str]]:
        """ACL LOG: (user, what) of each refusal."""
        return [(e["username"], e["object"]) for e in self.client(port).acl_log()]

    def watch_switch(self) -> redis.client.PubSub:
        events = self.client(self.sentinel_ports[1]).pubsub()
        events.subscribe("+switch-master")
        events.get_message(timeout=2)  # the subscribe confirmation
        return events

    def switched_to(self, events: redis.client.PubSub) -> str:
        """The pod Sentinel's +switch-master names: `<name> <old host> <old port> <new host> <new port>`."""

        def heard() -> str | None:
            message = events.get_message(timeout=0.5)
            return message["data"].decode() if message and message["type"] == "message" else None

        new_port = int(wait_for(heard, "Sentinel's +switch-master", SWITCH_DEADLINE_S, interval=0).split()[4])
        return self.names[self.ports.index(new_port)]

    def linked(self) -> None:
        """Both replicas linked to their master."""
        for port in self.ports[1:]:
            wait_for(lambda p=port: self.client(p).execute_command("ROLE")[3] == b"connected", "replica linked", 20)

    def ready(self) -> None:
        """Both replicas synced, and every Sentinel knows the two replicas and the two other Sentinels."""
        self.linked()
        for port in self.sentinel_ports:

            def known(p: int = port) -> bool:
                info = self.client(p).sentinel_master(ha.MASTER_NAME)
                return info["num-slaves"] == 2 and info["num-other-sentinels"] == 2

            wait_for(known, "every Sentinel to know its peers", 20)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    found = Replicas(tmp_path)
    try:
        found.ready()
        verdict, _ = found.settle("the first master labelled")
        assert verdict.master == "web-redis-0" and found.labelled == {"web-redis-0"}
        yield found
    finally:
        found.stop()


def test_sigkill_of_the_master_moves_the_label_to_sentinels_choice_and_cuts_the_stragglers(replicas: Replicas) -> None:
    r = replicas
    pw = r.passwords[APP]
    before = [App(r.ports[i], pw, f"before-{i}-{kind}", kind == "sub") for i in (0, 1) for kind in ("cmd", "sub")]
    events = r.watch_switch()
    killed_at = time.monotonic()
    r.redis[0].send_signal(signal.SIGKILL)
    chosen = r.switched_to(events)
    switched_at = time.monotonic()
    other = next(p for p in r.names[1:] if p != chosen)
    at = {name: r.ports[r.names.index(name)] for name in r.names}
    # Reconnects that still reached the other replica, and the apps that found the new master.
    stragglers = [App(at[other], pw, f"straggler-{kind}", kind == "sub") for kind in ("cmd", "sub")]
    keepers = [App(at[chosen], pw, f"keeper-{kind}", kind == "sub") for kind in ("cmd", "sub")]
    assert not any(a.closed() for a in stragglers + keepers)  # Sentinel cut none of them: that is the fence's job
    assert len(r.app_ids(at[other])) == 2
    straggler_ids = {(other, r.ids(at[other])[a.name]) for a in stragglers}

    verdict, cut = r.settle("the label on the new master and the stragglers cut")
    fenced_s = time.monotonic() - switched_at
    print(f"SIGKILL: +switch-master after {switched_at - killed_at:.1f}s, the passes settled {fenced_s:.1f}s later")

    assert verdict.master == chosen and r.labelled == {chosen}
    assert cut == straggler_ids, "the fence cut the stragglers and nothing else"
    assert all(a.closed() for a in stragglers) and not any(a.closed() for a in keepers)
    assert r.app_ids(at[other]) == ()
    # Replication and the Sentinels carry on: the other replica follows the new master, and all three Sentinels
    # still hold connections to both nodes and answer.
    role = r.client(at[other]).role()
    assert (role[0], int(role[2]), role[3]) == (b"slave", at[chosen], b"connected")
    for name in (chosen, other):
        assert len(r.sentinel_users(at[name])) == 3, name
        assert r.denied(at[name]) == [], "Sentinel's failover ran a command its ACL user may not"
    assert all(a.closed() for a in before)  # gone with the master, or cut by Sentinel's reconfiguration
    assert verdict.reason == "Degraded"  # the old master is gone
    assert verdict.status["lastFailover"]["from"] == "web-redis-0"
    assert verdict.status["lastFailover"]["to"] == chosen
    assert verdict.status["sentinels"] == {"ready": 3, "quorum": 2}
    assert [n["role"] for n in verdict.status["nodes"]].count("master") == 1


def test_a_master_frozen_then_thawed_comes_back_a_replica_and_its_apps_are_cut(replicas: Replicas) -> None:
    r = replicas
    frozen = [App(r.ports[0], r.passwords[APP], f"frozen-{kind}", kind == "sub") for kind in ("cmd", "sub")]
    events = r.watch_switch()
    r.redis[0].send_signal(signal.SIGSTOP)
    chosen = r.switched_to(events)

    verdict, _ = r.settle("the label on the new master while the old one is frozen")
    assert verdict.master == chosen and r.labelled == {chosen}
    assert verdict.status["nodes"][0]["role"] == "unknown" and verdict.delete == ()

    r.redis[0].send_signal(signal.SIGCONT)
    thawed_at = time.monotonic()
    assert not any(a.closed() for a in frozen)  # nobody cut them yet: Sentinel converts it ~8 s after it answers
    verdict, cut = r.step()
    print(f"SIGSTOP: the thawed master's apps cut {time.monotonic() - thawed_at:.2f}s after SIGCONT")
    assert verdict.master == chosen
    assert cut == 2, "the fence, not Sentinel, cut the thawed master's apps"  # a client gone already counts 0
    wait_for(lambda: all(a.closed() for a in frozen), "the frozen master's apps closed", 5)

    def back_as_replica() -> bool:
        role = r.client(r.ports[0]).execute_command("ROLE")
        return role[0] == b"slave" and int(role[2]) == r.ports[r.names.index(chosen)] and role[3] == b"connected"

    wait_for(back_as_replica, "the old master to come back as a replica of the new one", 30)
    verdict = wait_for(lambda: (v := r.step()[0]).reason is None and v, "every replica in sync", 20)
    assert r.labelled == {chosen} and r.app_ids(r.ports[0]) == ()
    assert verdict.status["sentinels"] == {"ready": 3, "quorum": 2}


def test_the_built_users_are_enough_for_replication_and_sentinel_and_no_password_is_on_a_command_line(
    replicas: Replicas,
) -> None:
    """Replication and the Sentinels' monitoring ran without one ACL refusal; the apps have no login on a Sentinel;
    the passwords reach the processes through files only (on a pod: the Secret's mount and a memory volume)."""
    r = replicas
    assert [r.denied(port) for port in r.ports] == [[], [], []]
    for user in (APP, None):
        sentinel = redis.Redis(port=r.sentinel_ports[0], username=user, password=r.passwords[APP])
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            sentinel.ping()
    for proc in replicas.redis + replicas.sentinels:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert not [user for user, pw in replicas.passwords.items() if pw in cmdline]
    assert os.path.exists(replicas.redis[0].args[1])


def test_a_replica_labelled_by_hand_loses_the_label_then_the_apps_it_drew(replicas: Replicas) -> None:
    r = replicas
    pw = r.passwords[APP]
    keepers = [App(r.ports[0], pw, f"keeper-{kind}", kind == "sub") for kind in ("cmd", "sub")]
    r.labelled.add("web-redis-2")  # kubectl label pod web-redis-2 synchro.dev/redis-role=master
    r.routed = frozenset({r.ip("web-redis-0"), r.ip("web-redis-2")})  # the Service now sends apps to both
    drawn = [App(r.ports[2], pw, f"drawn-{kind}", kind == "sub") for kind in ("cmd", "sub")]
    drawn_ids = {("web-redis-2", r.ids(r.ports[2])[a.name]) for a in drawn}

    verdict, cut = r.step()
    assert verdict.labels == (failover.Label("web-redis-2", False),) and verdict.wait_for_endpoints
    assert cut == 0  # not while the Service may still send a reconnect there
    verdict, cut_ids = r.settle("the hand-made label gone and the drawn apps cut")

    assert verdict.master == "web-redis-0" and r.labelled == {"web-redis-0"}
    assert cut_ids == drawn_ids and all(a.closed() for a in drawn)
    assert not any(a.closed() for a in keepers)
    assert "lastFailover" not in verdict.status  # the master never changed


def test_without_a_sentinel_majority_no_pod_keeps_the_label(replicas: Replicas) -> None:
    """Fail closed: with two of three Sentinels gone, the master is healthy but cannot be confirmed."""
    r = replicas
    for sentinel in r.sentinels[1:]:
        sentinel.send_signal(signal.SIGKILL)
    verdict, cut = r.step()
    assert verdict.master is None and verdict.reason == "NoQuorum"
    assert verdict.labels == (failover.Label("web-redis-0", False),) and r.labelled == set()
    assert cut == 0 and verdict.delete == ()
    assert verdict.status["sentinels"] == {"ready": 1, "quorum": 2}


def test_a_pod_without_a_sentinel_is_asked_its_role_and_not_counted_among_the_sentinels(replicas: Replicas) -> None:
    """Growing from one pod, its pod is one more node running no Sentinel: a majority stays one of the three."""
    r = replicas
    extra = nodes.Pod("seed", ("127.0.0.1", r.ports[1]), ("", ha.SENTINEL_PORT), frozenset(), "10.0.0.9", False,
                      revision=ha.SEED_REVISION, has_sentinel=False)  # fmt: skip
    world = asyncio.run(nodes.look([*r.pods(), extra], r.creds, OWN, r.routed, r.silence, now="now"))
    assert len(world.sentinels) == 3 and len(world.nodes) == 4
    assert world.nodes[-1].role is not None and world.nodes[-1].role.role == "slave"
    assert failover.decide(world).status["sentinels"] == {"ready": 3, "quorum": 2}


def logs_in(port: int, user: str, password: str) -> bool:
    """AUTH on a raw socket: +OK or an error, at once (redis-py retries a refused login as a connection error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(resp("AUTH", user, password))
        return sock.recv(4096).startswith(b"+OK")


def test_a_rotation_reaches_every_pod_and_sentinel_and_replication_and_failover_survive_it(
    replicas: Replicas, tmp_path: Path
) -> None:
    """A password rotation of a Redis with replicas, made by act.rotation_patch as the operator makes it: SWITCH
    adds the new passwords on every Redis and the operator's on every Sentinel, FINISH leaves only them. A replica
    and a Sentinel restarted from the Secret it patched take the new ones and rejoin (the replication and Sentinel
    users kept), and the Sentinels still fail over, logged in as before."""
    r = replicas
    old = {user: r.passwords[user] for user in managed.PASSWORD_KEYS}
    new = managed.new_passwords()
    kept = {user: r.passwords[user] for user in ha.HA_PASSWORD_KEYS}
    reach = Reach(tuple(("127.0.0.1", p) for p in r.ports), tuple(("127.0.0.1", p) for p in r.sentinel_ports), kept)

    def made(kind: str, login: dict[str, str]) -> dict[str, Any]:
        creds = Credentials(OPERATOR, login[OPERATOR], 0, False)
        state = RedisState(Condition("RedisReady", True, "Reachable", ""), creds=creds)
        step = SecretStep(kind, "r1", new, "5", reach)
        return asyncio.run(act.rotation_patch(None, step, state))  # type: ignore[arg-type]  # no one-pod Redis here

    patch = made(SecretStep.SWITCH, old)
    for port in r.ports:
        assert all(logs_in(port, user, pw[user]) for pw in (old, new) for user in (APP, OPERATOR))
    for port in r.sentinel_ports:
        assert logs_in(port, OPERATOR, old[OPERATOR]) and logs_in(port, OPERATOR, new[OPERATOR])
        assert not logs_in(port, APP, new[APP])  # the apps still have no login on a Sentinel
    data = patch["stringData"]
    assert data[api.PASSWORD_KEY] == new[APP] and data[ha.HA_PASSWORD_KEYS[ha.REPLICA_USER]] == kept[ha.REPLICA_USER]

    made(SecretStep.FINISH, new)
    r.passwords.update(new)
    r.creds = Credentials(OPERATOR, new[OPERATOR], 0, False)
    for port in r.ports:
        assert not logs_in(port, APP, old[APP]) and not logs_in(port, OPERATOR, old[OPERATOR])
        assert logs_in(port, APP, new[APP]) and logs_in(port, OPERATOR, new[OPERATOR])
    for port in r.sentinel_ports:
        assert not logs_in(port, OPERATOR, old[OPERATOR]) and logs_in(port, OPERATOR, new[OPERATOR])

    # Restarted from the patched Secret: a replica relinks, a Sentinel knows its peers again.
    for key in (managed.SECRET_AUTH_KEY, ha.REPLICATION_CONF_KEY):
        (tmp_path / key).write_text(data[key])
    for procs in (r.redis, r.sentinels):
        procs[2].terminate()
        procs[2].wait(10)
    r.redis[2] = r.start_redis(tmp_path, 2)
    r.linked()  # before the Sentinel, which then learns both replicas from its first INFO (else 10 s later)
    r.sentinels[2] = r.start_sentinel(tmp_path, 2, data[ha.SENTINEL_AUTH_KEY])
    r.ready()
    assert logs_in(r.ports[2], APP, new[APP]) and not logs_in(r.ports[2], APP, old[APP])
    replication = [d for port in r.ports for d in r.denied(port) if d[0] in (ha.REPLICA_USER, ha.SENTINEL_USER)]
    assert replication == []

    events = r.watch_switch()
    r.redis[0].send_signal(signal.SIGKILL)
    chosen = r.switched_to(events)
    verdict, _ = r.settle("the master after the rotation", SWITCH_DEADLINE_S)
    assert verdict.master == chosen != "web-redis-0" and r.labelled == {chosen}


def test_a_sentinel_in_tilt_mode_is_seen_and_not_the_one_asked_to_fail_over(replicas: Replicas) -> None:
    """A Sentinel stopped for 3 s enters TILT mode when it runs again (its timer sees the clock jump), as the real
    node's did after blocking name lookups. It takes SENTINEL FAILOVER but carries it out only when it leaves TILT,
    30 s later (docs/ha.md): asked alone, nothing moves within 8 s. look sees it, switchover asks only the others,
    and the master moves at once."""
    r = replicas
    r.sentinels[0].send_signal(signal.SIGSTOP)
    time.sleep(3)
    r.sentinels[0].send_signal(signal.SIGCONT)

    def seen() -> failover.World | None:
        world = asyncio.run(nodes.look(r.pods(), r.creds, OWN, r.routed, r.silence, now="now"))
        return world if world.tilted == (True, False, False) else None

    world = wait_for(seen, "the stopped Sentinel in TILT mode, the others not", 10)
    events = r.watch_switch()
    assert asyncio.run(nodes.ask_failover(r.pods()[:1], r.creds)) == r.names[0]  # taken...
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:  # ...and not carried out
        message = events.get_message(timeout=0.5)
        assert message is None or message["type"] != "message", message
    assert r.client(r.ports[0]).execute_command("ROLE")[0] == b"master"
    pods = r.pods()
    revisions = [dataclasses.replace(p, revision="old" if i == 0 else "new", ready=True) for i, p in enumerate(pods)]
    step = switchover.step("new", revisions, failover.decide(world), True, None, failover.tilted_pods(world))
    assert step is not None and step.failover and step.ask == tuple(r.names[1:])
    started = time.monotonic()
    assert asyncio.run(nodes.ask_failover([p for p in pods if p.name in step.ask], r.creds)) == r.names[1]
    chosen = r.switched_to(events)
    assert chosen != r.names[0] and time.monotonic() - started < 8, time.monotonic() - started


def start_heir(r: Replicas, tmp: Path) -> int:
    """The one-pod Redis moved back to: started empty with the replicas' config, without their login. Its port."""
    port = free_port()
    conf = (tmp / "redis-0.conf").read_text().replace(f"port {r.ports[0]}", f"port {port}")
    conf = "".join(line for line in conf.splitlines(True) if not line.startswith(("masteruser", "masterauth")))
    (tmp / "heir.conf").write_text(conf.replace("dbfilename node-0.rdb", "dbfilename heir.rdb"))  # no login
    log = (tmp / "heir.log").open("w")
    r.redis.append(subprocess.Popen(["redis-server", str(tmp / "heir.conf")], stdout=log, stderr=log))
    wait_for(lambda: r.client(port).ping(), "the heir up", 10)
    return port


def heir_in_sync(r: Replicas, tmp: Path) -> tuple[int, tuple[str, int], tuple[str, int]]:
    """The heir started, 1000 keys written on the master, the heir made its replica by ha.heir_commands and in
    sync: its port, the master's address and its own."""
    port = start_heir(r, tmp)
    master, heir = ("127.0.0.1", r.ports[0]), ("127.0.0.1", port)
    r.client(r.ports[0]).mset({f"k{i}": i for i in range(1000)})
    asyncio.run(nodes.send(heir, r.creds, ha.heir_commands(r.passwords, master)))
    wait_for(lambda: r.client(port).execute_command("ROLE")[3] == b"connected", "the heir in sync", 20)
    return port, master, heir


def test_the_one_pod_redis_copies_the_master_then_takes_over_with_every_key_and_keeps_it(
    replicas: Replicas, tmp_path: Path
) -> None:
    """Moving back to one pod (redis/shrink.py) with real processes: the heir, started empty with the replicas'
    config, is made a replica by ha.heir_commands, then nodes.take_over switches to it while writes are paused.
    It holds every key, the old master refuses writes as its replica, and no Sentinel turns it back."""
    r = replicas
    port, master, heir = heir_in_sync(r, tmp_path)
    assert r.client(port).config_get("replica-priority") == {"replica-priority": "0"}  # never a Sentinel's choice
    r.client(r.ports[0]).set("last", "written just before")
    sentinels = [("127.0.0.1", p) for p in r.sentinel_ports]
    assert asyncio.run(nodes.take_over(master, heir, sentinels, r.creds, r.monitor(master[1]))) is None
    assert r.client(port).execute_command("ROLE")[0] == b"master"
    assert r.client(port).dbsize() == 1001 and r.client(port).get("last") == b"written just before"
    assert r.client(r.ports[0]).execute_command("ROLE")[:3] == [b"slave", b"127.0.0.1", port]
    with pytest.raises(redis.ReadOnlyError):
        r.client(r.ports[0]).set("late", "refused")
    assert all(r.client(p).sentinel_masters() == {} for p in r.sentinel_ports)
    # A Sentinel that still monitored the master would turn the promoted heir back into a replica within ~8 s
    # (docs/ha.md): it stays the master, polled for 10 s.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert r.client(port).execute_command("ROLE")[0] == b"master"
        time.sleep(0.5)


def test_a_switch_back_to_one_pod_cut_short_after_the_promotion_is_made_again_and_keeps_the_late_writes(
    replicas: Replicas, tmp_path: Path
) -> None:
    """nodes.take_over stopped (the operator killed) after SENTINEL REMOVE and the heir's REPLICAOF NO ONE, before
    the old master's demotion: two masters, no Sentinel monitoring. The apps write on to the labelled old master
    once its pause ends. The next passes, from real answers: the old master keeps its label, the heir copies it
    again, the switch is made again, and the heir holds the writes made after the cut."""
    r = replicas
    port, master, heir = heir_in_sync(r, tmp_path)
    heir_pod = failover.Pod("heir", heir, ("", 0), frozenset({heir}), "10.0.0.9", has_sentinel=False)
    for p in r.sentinel_ports:  # take_over's first half, by hand
        r.client(p).execute_command("SENTINEL", "REMOVE", ha.MASTER_NAME)
    r.client(port).execute_command("REPLICAOF", "NO", "ONE")
    r.client(r.ports[0]).set("late", "written after the cut")  # the apps, on the old master still labelled

    def shrink_pass() -> tuple[failover.Verdict, shrink.Step]:
        world = asyncio.run(nodes.look([*r.pods(), heir_pod], r.creds, OWN, r.routed, r.silence, now="now",
                                       previous_master=r.names[0]))  # fmt: skip
        verdict = failover.decide(world)
        return verdict, shrink.step(world, "heir", verdict, "web-redis")

    verdict, step = shrink_pass()
    assert verdict.master == r.names[0] and verdict.labels == (), verdict.message  # its label stays
    assert (step.kind, step.master) == (shrink.FOLLOW, r.names[0]), step.message
    asyncio.run(nodes.send(heir, r.creds, ha.heir_commands(r.passwords, master)))
    wait_for(lambda: shrink_pass()[1].kind == shrink.SWITCH, "the heir in sync again, the switch due", 20)
    sentinels = [("127.0.0.1", p) for p in r.sentinel_ports]
    assert asyncio.run(nodes.take_over(master, heir, sentinels, r.creds, r.monitor(master[1]))) is None
    assert r.client(port).execute_command("ROLE")[0] == b"master"
    assert r.client(port).dbsize() == 1001 and r.client(port).get("late") == b"written after the cut"
    assert r.client(r.ports[0]).execute_command("ROLE")[:3] == [b"slave", b"127.0.0.1", port]


def test_a_sentinel_silent_at_the_switch_back_to_one_pod_stops_it_and_the_others_monitor_the_master_again(
    replicas: Replicas, tmp_path: Path
) -> None:
    """A Sentinel that stops answering between the pass that found every one answering and the switch misses
    SENTINEL REMOVE: it would still monitor the old master, and could turn the promoted heir back into a replica.
    nodes.take_over then promotes nothing, the master takes writes again, and the Sentinels that removed it
    monitor it again. Once that one answers, the switch is made."""
    r = replicas
    port, master, heir = heir_in_sync(r, tmp_path)
    sentinels = [("127.0.0.1", p) for p in r.sentinel_ports]
    r.sentinels[2].send_signal(signal.SIGSTOP)
    try:
        why = asyncio.run(nodes.take_over(master, heir, sentinels, r.creds, r.monitor(master[1])))
        assert why is not None and "1 of 3 Sentinels did not answer SENTINEL REMOVE" in why
        assert r.client(port).execute_command("ROLE")[0] == b"slave"  # not promoted
        r.client(r.ports[0]).set("after", "the switch put off")  # not paused any more, still the master
        for p in r.sentinel_ports[:2]:
            assert r.client(p).sentinel_get_master_addr_by_name(ha.MASTER_NAME) == (b"127.0.0.1", master[1])
    finally:
        r.sentinels[2].send_signal(signal.SIGCONT)
    wait_for(lambda: r.client(port).get("after") == b"the switch put off", "the heir in sync again", 10)
    assert asyncio.run(nodes.take_over(master, heir, sentinels, r.creds, r.monitor(master[1]))) is None
    assert r.client(port).execute_command("ROLE")[0] == b"master" and r.client(port).dbsize() == 1001
    assert all(r.client(p).sentinel_masters() == {} for p in r.sentinel_ports)


class Grown(Replicas):
    """Growing from one pod: the seed, a redis-server with the one-pod Redis's config and users (no replication or
    Sentinel user), holding keys; then three replicas of it and three Sentinels monitoring it, as the StatefulSet's
    start scripts make them when the ConfigMap names the seed."""

    def __init__(self, tmp: Path) -> None:  # Replicas' start replaced, not extended
        self.spec = api.parse(
            "ns", "web", {"redis": {"managed": {"replicas": 3}}, "targets": [{"name": "w", "preset": "generic"}]}
        )
        self.passwords = ha.new_passwords()
        self.creds = Credentials(OPERATOR, self.passwords[OPERATOR], 0, False)
        self.seed_dir = tmp / "seed"
        self.seed_dir.mkdir()
        one_pod = managed.secret_data({u: self.passwords[u] for u in managed.PASSWORD_KEYS})
        (self.seed_dir / managed.SECRET_AUTH_KEY).write_text(one_pod[managed.SECRET_AUTH_KEY])
        self.seed_port = free_port()
        (self.seed_dir / "redis.conf").write_text(
            on_loopback(managed.redis_conf(self.spec), self.seed_dir, self.seed_port)
        )
        log = (self.seed_dir / "redis.log").open("w")
        self.redis = [subprocess.Popen(["redis-server", str(self.seed_dir / "redis.conf")], stdout=log, stderr=log)]
        self.sentinels = []
        wait_for(lambda: self.client(self.seed_port).ping(), "the seed up", 10)
        self.client(self.seed_port).mset({f"k{i}": i for i in range(1000)})
        commands = ha.seed_commands(self.passwords)
        asyncio.run(nodes.send(("127.0.0.1", self.seed_port), self.creds, commands))
        data = ha.secret_data(self.passwords)
        for key in (managed.SECRET_AUTH_KEY, ha.REPLICATION_CONF_KEY):
            (tmp / key).write_text(data[key])
        self.ports = [self.seed_port] + [free_port() for _ in range(3)]  # start_redis(i) follows ports[0]
        self.sentinel_ports = [self.seed_port] + [free_port() for _ in range(3)]  # start_sentinel monitors ports[0]
        self.names = ["seed", *(f"web-redis-{i}" for i in range(3))]
        self.redis += [self.start_redis(tmp, i) for i in (1, 2, 3)]
        self.sentinels = [self.start_sentinel(tmp, i, data[ha.SENTINEL_AUTH_KEY]) for i in (1, 2, 3)]


def test_a_seed_given_the_replication_users_live_is_copied_then_failed_over_and_follows_the_new_master(
    tmp_path: Path,
) -> None:
    """ha.seed_commands are all the one-pod Redis needs: its replicas log in and copy every key, its Sentinels log
    in and find all three, and after SENTINEL FAILOVER it follows the new master with the login it was sent."""
    g = Grown(tmp_path)
    try:
        for port in g.ports[1:]:
            wait_for(lambda p=port: g.client(p).execute_command("ROLE")[3] == b"connected", "replica linked", 20)
            assert g.client(port).dbsize() == 1000
        for port in g.sentinel_ports[1:]:
            info = lambda p=port: g.client(p).sentinel_master(ha.MASTER_NAME)  # noqa: E731
            wait_for(lambda i=info: i()["num-slaves"] == 3 and i()["num-other-sentinels"] == 2, "Sentinels know", 20)
        assert g.client(g.sentinel_ports[1]).sentinel_failover(ha.MASTER_NAME)

        def follows() -> bool:
            role = g.client(g.seed_port).execute_command("ROLE")
            return role[0] == b"slave" and role[3] == b"connected"

        wait_for(follows, "the seed a linked replica of the promoted pod", 30)
        promoted = next(p for p in g.ports[1:] if g.client(p).execute_command("ROLE")[0] == b"master")
        assert g.client(promoted).dbsize() == 1000
        assert g.denied(g.seed_port) == []  # no login refused on the way
    finally:
        g.stop()


def test_the_switch_listener_hears_each_sentinel_announce_the_new_master(replicas: Replicas) -> None:
    """redis/listen.py against real Sentinels: subscribed to all three, it hears +switch-master from each after
    SENTINEL FAILOVER (so the pass a later one wakes finds the majority); the same set keeps its tasks; stop ends
    them."""
    r = replicas
    sentinels = [("127.0.0.1", p) for p in r.sentinel_ports]

    def subscribed(port: int) -> bool:
        return any(int(c.get("sub", 0)) for c in r.client(port).client_list())

    async def run() -> list[str]:
        heard: list[str] = []
        listener = listen.SwitchListener(lambda: heard.append("switch"), logging.getLogger("test"))
        listener.follow(sentinels, r.creds)
        tasks = list(listener.tasks)
        listener.follow(list(reversed(sentinels)), r.creds)
        assert listener.tasks == tasks and len(tasks) == 3
        deadline = time.monotonic() + 10
        while not all(subscribed(p) for p in r.sentinel_ports):
            assert time.monotonic() < deadline, "the listener did not subscribe to every Sentinel"
            await asyncio.sleep(0.05)
        assert r.client(r.sentinel_ports[0]).sentinel_failover(ha.MASTER_NAME)
        deadline = time.monotonic() + SWITCH_DEADLINE_S
        while len(heard) < 3:
            assert time.monotonic() < deadline, f"heard {len(heard)} +switch-master of 3"
            await asyncio.sleep(0.05)
        listener.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert listener.tasks == [] and all(t.cancelled() for t in tasks)
        return heard

    assert asyncio.run(run()) == ["switch"] * 3


def test_a_master_lost_before_the_sentinels_listed_a_replica_is_replaced_by_the_operator(tmp_path: Path) -> None:
    """The stuck state of docs/ha.md, made on demand: the master is SIGKILLed before any Sentinel reached it (they
    start after), so they list no replica and could never fail over. failover.rescue names the replica with the
    most data; nodes.rescue promotes it and points the other replica and the Sentinels at it; the next passes
    confirm and label it, with every key."""
    r = Replicas(tmp_path, sentinels=False)
    try:
        r.linked()
        r.client(r.ports[0]).mset({f"k{i}": i for i in range(1000)})
        assert r.client(r.ports[0]).wait(2, 2000) == 2
        # web-redis-2 falls behind: made to follow an address nobody listens on (it keeps its data) while one more
        # key is written. The one with the most data must win, and it is the first of the two (a tie goes to the
        # last).
        r.client(r.ports[2]).execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        r.client(r.ports[0]).set("only-on-1", "1")
        assert r.client(r.ports[0]).wait(1, 2000) == 1
        r.redis[0].send_signal(signal.SIGKILL)
        r.redis[0].wait(10)
        r.start_sentinels(tmp_path)
        sentinels = [("127.0.0.1", p) for p in r.sentinel_ports]
        wait_for(lambda: all(r.client(p).ping() for p in r.sentinel_ports), "the Sentinels up", 10)

        def stuck() -> failover.World:
            world = asyncio.run(nodes.look(r.pods(), r.creds, OWN, r.routed, r.silence, now="now"))
            assert failover.rescue(world, after_s=60) is None  # not before the master was silent that long
            return world

        world = stuck()
        assert world.listed_replicas == (0, 0, 0) and failover.decide(world).master is None
        found = failover.rescue(world, after_s=0)
        assert found is not None and found.replicas == tuple(r.names[1:])
        ahead = r.ports[1]
        ports = [r.ports[r.names.index(n)] for n in found.replicas]
        monitor = [r.monitor(port) for port in ports]
        best = asyncio.run(nodes.rescue([("127.0.0.1", p) for p in ports], monitor, sentinels, r.creds))
        assert best is not None and ports[best] == ahead
        verdict, _ = r.settle("the promoted replica confirmed and labelled")
        assert verdict.master == r.names[1] and r.labelled == {r.names[1]}
        assert r.client(ahead).dbsize() == 1001
        wait_for(lambda: r.client(r.ports[2]).execute_command("ROLE")[3] == b"connected", "the other follows it", 20)
        assert r.client(r.ports[2]).get("only-on-1") == b"1"  # and copied what it had missed
    finally:
        r.stop()
