"""Operator replicas on the host, as the chart's Deployment runs them in pods: each its own process and identity,
all behind one Lease, authenticated as the chart's ServiceAccount (its RBAC only).

    a = Replica("a", lease, kubeconfig, namespaces=[ns]).start()
    wait_for(a.leads, "a to take the Lease")
    a.kill()   # SIGKILL: no release, the Lease must run out
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kit import ROOT, ServerProcess, free_port

LEASE_NAMESPACE = "synchro-system"  # hack/cluster.py's, where the chart's Role lets the ServiceAccount write Leases
# The tests' timings: a handover in seconds, and 4 s between a cut-off leader's exit and the earliest takeover, a
# margin a loaded machine cannot eat.
FAST = {"duration": 8.0, "renew_deadline": 4.0, "retry": 1.0}
DEFAULT = {"duration": 15.0, "renew_deadline": 10.0, "retry": 2.0}  # the chart's


def service_account_kubeconfig() -> Path:
    """hack/cluster.py's: the chart's RBAC applied, and a token of its ServiceAccount."""
    sys.path.insert(0, str(ROOT / "hack"))
    import cluster as hack_cluster  # hack/cluster.py, not the `cluster` fixture

    hack_cluster.ensure_lease_namespace()
    path: Path = hack_cluster.service_account_kubeconfig()
    return path


def through(kubeconfig: Path, server: str, path: Path) -> Path:
    """A copy of `kubeconfig` that dials `server` (say, a BlackHole's URL) instead."""
    config = json.loads(kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = server
    path.write_text(json.dumps(config))
    return path


class ReplicaExited(Exception):
    """A replica's process ended where the test needs it running: waiting on it cannot succeed."""


class Replica(ServerProcess):
    def __init__(
        self,
        identity: str,
        lease: str,
        kubeconfig: Path,
        log_dir: Path,
        namespaces: list[str] | None = None,
        timings: dict[str, float] = FAST,
    ) -> None:
        self.identity, self.lease, self.kubeconfig, self.namespaces, self.timings = (
            identity,
            lease,
            kubeconfig,
            namespaces or [],  # none: cluster-wide, as the chart's default (its RBAC has no namespace list)
            timings,
        )
        self.log = log_dir / f"operator-{identity}.log"
        self.health_port, self.metrics_port = free_port(), free_port()

    def start(self) -> Replica:
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(ROOT / "operator"),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SYNCHRO_REDIS_NETWORKS": "127.0.0.0/8",
            "SYNCHRO_METRICS_PORT": str(self.metrics_port),
            "SYNCHRO_IDENTITY": self.identity,
            "SYNCHRO_LEASE_NAME": self.lease,
            "SYNCHRO_LEASE_NAMESPACE": LEASE_NAMESPACE,
            "SYNCHRO_LEASE_DURATION_S": str(self.timings["duration"]),
            "SYNCHRO_LEASE_RENEW_DEADLINE_S": str(self.timings["renew_deadline"]),
            "SYNCHRO_LEASE_RETRY_S": str(self.timings["retry"]),
        }
        argv = [str(ROOT / ".venv" / "bin" / "python"), "-m", "synchro", "run"]
        argv += [a for ns in self.namespaces for a in ("-n", ns)]
        argv += ["--liveness", f"http://127.0.0.1:{self.health_port}/healthz"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def _get(self, path: str) -> str:
        if self.exited() is not None:
            raise ReplicaExited(f"replica {self.identity} exited with {self.exited()}:\n{self.tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{path}", timeout=2) as answer:
            text: str = answer.read().decode()
            return text

    def role(self) -> str:
        """What its /readyz says: `leader ID` or `standby ID; leader: OTHER`."""
        return self._get(f"{self.health_port}/readyz").strip()

    def leads(self) -> bool:
        return self.role() == f"leader {self.identity}"

    def leader_metric(self) -> float:
        lines = self._get(f"{self.metrics_port}/metrics").splitlines()
        return float(next(line.split()[1] for line in lines if line.startswith("synchro_leader ")))

    def kill(self) -> None:
        """SIGKILL, as a node's death or `kubectl delete pod --grace-period=0 --force` ends it: no release."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 40) -> str:
        return "".join(self.log.read_text(errors="replace").splitlines(keepends=True)[-lines:])


def lease_holder(api: Any, name: str) -> tuple[str, int]:
    """(holderIdentity, leaseTransitions) of the Lease, ("", 0) if there is none yet."""
    from kubernetes import client

    try:
        spec = client.CoordinationV1Api(api).read_namespaced_lease(name, LEASE_NAMESPACE).spec
    except client.ApiException as e:
        if e.status == 404:
            return "", 0
        raise
    return spec.holder_identity or "", spec.lease_transitions or 0
