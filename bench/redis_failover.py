"""`make bench ONLY=redis_failover`: how long a managed Redis with replicas takes to heal after its master is
SIGKILLed, beside the floor measured in the same kill: Sentinel's own `+switch-master`.

On the real node (NODE=real): a SyncCluster with `redis.managed.replicas: 3` and a target of two pods with probe
sidecars. Each round kills the master's redis-server and times, from the kill:
- switch: the `+switch-master` message on a Sentinel of another pod (the floor: the operator only follows it);
- heal: status names the new master, RedisReady is True, and PubSubHealthy is AllPodsHealthy from a probe round
  that started after the switch.
The next round starts once every replica is in sync again. The figures go into bench/results.json under
`redis_failover` (the rest of the file is kept) and are printed.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "hack"), str(ROOT / "tests"), str(ROOT / "tests" / "integration")]

import redis  # noqa: E402
from kit import REAL_NODE_TOLERATION, Env, container_pid, real_app  # noqa: E402
from kubernetes import client, config  # noqa: E402

KILLS = int(os.environ.get("KILLS", "5"))
NAME, STS = "hb", "hb-redis"
GOAL_RATIO = 1.5  # heal within 1.5x of kill -> +switch-master (issue 15)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def wait(check: Any, what: str, timeout: float = 240, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except Exception:  # a pod or a connection in between: not yet
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(interval)


class Bench:
    def __init__(self, env: Env) -> None:
        self.env = env
        secret = env.core.read_namespaced_secret(STS, env.ns) if self.has_secret() else None
        self.password = base64.b64decode(secret.data["operator-password"]).decode() if secret else ""

    def has_secret(self) -> bool:
        try:
            self.env.core.read_namespaced_secret(STS, self.env.ns)
        except client.ApiException:
            return False
        return True

    def status(self) -> dict[str, Any]:
        return dict(self.env.sc(NAME).get("status") or {})

    def condition(self, type_: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions") or [] if c["type"] == type_), {})

    def ip(self, pod: str) -> str:
        return str(self.env.core.read_namespaced_pod(pod, self.env.ns).status.pod_ip)

    def synced(self) -> str | None:
        ok = self.condition("RedisReady").get("reason") == "Reachable"
        healthy = self.condition("PubSubHealthy").get("reason") == "AllPodsHealthy"
        return (self.status().get("redis") or {}).get("master") if ok and healthy and self.known() else None

    def known(self) -> bool:
        """Every Sentinel knows both replicas, up (else a kill leaves nothing they would promote: docs/ha.md)."""
        for i in range(3):
            with redis.Redis(host=self.ip(f"{STS}-{i}"), port=26379, username="synchro-operator",
                             password=self.password, socket_timeout=2) as s:  # fmt: skip
                replicas = s.sentinel_slaves("synchro")
            if len([r for r in replicas if not r.get("is_sdown") and not r.get("is_disconnected")]) < 2:
                return False
        return True

    def switch_listener(self, pod: str, heard: list[float]) -> threading.Thread:
        sentinel = redis.Redis(host=self.ip(pod), port=26379, username="synchro-operator", password=self.password)
        pubsub = sentinel.pubsub()
        pubsub.subscribe("+switch-master")
        pubsub.get_message(timeout=2)  # the subscribe confirmation

        def listen() -> None:  # holds the client: collected, it would close the connection under the pubsub
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not heard:
                if pubsub.get_message(timeout=1):
                    heard.append(time.monotonic())
            pubsub.close()
            sentinel.close()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        return thread

    def healed(self, old: str, after: str) -> bool:
        status = self.status()
        master = (status.get("redis") or {}).get("master")
        probed = (status.get("probe") or {}).get("lastProbeTime", "")
        return (
            master not in ("", None, old)
            and self.condition("RedisReady").get("status") == "True"
            and self.condition("PubSubHealthy").get("reason") == "AllPodsHealthy"
            and probed > after
        )

    def kill_round(self) -> tuple[float, float]:
        master = wait(self.synced, "every replica in sync")
        other = next(f"{STS}-{i}" for i in range(3) if f"{STS}-{i}" != master)
        heard: list[float] = []
        listener = self.switch_listener(other, heard)
        pid = container_pid(self.env, master, "redis", "redis-server")
        assert pid is not None, f"no redis-server in {master}"
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait(lambda: heard, "+switch-master", 120, 0.05)
        after = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        wait(lambda: self.healed(master, after), "healed", 120, 0.05)
        healed = time.monotonic() - t0
        listener.join(5)
        return heard[0] - t0, healed


def main() -> int:
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "up"], check=True, capture_output=True)
    api = config.new_client_from_config(config_file=str(ROOT / ".cluster" / "kubeconfig"))
    core = client.CoreV1Api(api)
    if not core.list_node(label_selector="synchro.dev/node=real").items:
        log("no real node: bring the cluster up with NODE=real (make cluster-up NODE=real)")
        return 1
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "start-operator"], check=True)
    ns = f"bench-ha-{uuid.uuid4().hex[:5]}"
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": "synchro.dev/node=real",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([REAL_NODE_TOLERATION]),
    }
    core.create_namespace({"metadata": {"name": ns, "annotations": annotations}})
    env = Env(api, ns)
    switch, heal = [], []
    try:
        env.create(real_app(NAME, "app", ["sleep", "infinity"]))
        spec = {
            "replicas": 2,
            "targets": [{"name": NAME, "preset": "generic"}],
            "redis": {"mode": "Managed", "managed": {"replicas": 3}},
            "probe": {"interval": "2s", "timeout": "1s"},
        }
        env.create({"apiVersion": "synchro.dev/v1alpha1", "kind": "SyncCluster", "metadata": {"name": NAME},
                    "spec": spec})  # fmt: skip
        wait(lambda: Bench(env).has_secret(), "the Secret")
        bench = Bench(env)
        for i in range(KILLS):
            s, h = bench.kill_round()
            switch.append(s)
            heal.append(h)
            log(f"kill {i + 1}: +switch-master {s:.1f} s, healed {h:.1f} s")
    finally:
        core.delete_namespace(ns)
    result = {
        "failover_heal_s": {"p50": round(statistics.median(heal), 1), "max": round(max(heal), 1)},
        "switch_master_s": {"p50": round(statistics.median(switch), 1), "max": round(max(switch), 1)},
        "failover_heal_over_switch": round(statistics.median(heal) / statistics.median(switch), 2),
        "goal": f"failover_heal_over_switch <= {GOAL_RATIO}",
        "samples": {"heal_s": [round(x, 2) for x in heal], "switch_s": [round(x, 2) for x in switch]},
        "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = ROOT / "bench" / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["redis_failover"] = result
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
