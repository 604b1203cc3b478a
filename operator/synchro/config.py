"""The operator's settings, read once from the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from synchro.lease import Timings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Config:
    # Where the operator may open Redis connections; empty means anywhere. A sandboxed or
    # egress-restricted environment lists its reachable networks (the local kwok cluster: loopback only).
    redis_networks: tuple[Network, ...] = ()
    probe_image: str = "synchro.local/operator:0.1.0"  # the image of the synchro-probe sidecar
    metrics_port: int = 9090  # /metrics; 0 turns it off
    api_threads: int = 32  # concurrent blocking Kubernetes API calls
    # Leader election: only the replica that holds the Lease runs kopf. Off, this process reconciles at once.
    leader_election: bool = True
    lease_name: str = "synchro"
    lease_namespace: str = ""  # empty: the pod's namespace (POD_NAMESPACE), else the one the CLI picks
    identity: str = ""  # empty: the pod's name (POD_NAME), else hostname-pid
    lease: Timings = field(default_factory=Timings)
    # Test-only, off by default: in this namespace, the operator stops itself (SIGSTOP) right after a write that
    # injects a target still held at one replica, so a test can SIGKILL it between the inject and the scale.
    halt_after_inject: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Config:
        raw = environ.get("SYNCHRO_REDIS_NETWORKS", "")
        return cls(
            redis_networks=tuple(ipaddress.ip_network(n.strip()) for n in raw.split(",") if n.strip()),
            probe_image=environ.get("SYNCHRO_PROBE_IMAGE", cls.probe_image),
            metrics_port=int(environ.get("SYNCHRO_METRICS_PORT", cls.metrics_port)),
            api_threads=int(environ.get("SYNCHRO_API_THREADS", cls.api_threads)),
            leader_election=environ.get("SYNCHRO_LEADER_ELECTION", "true").lower() not in ("false", "0", "no", "off"),
            lease_name=environ.get("SYNCHRO_LEASE_NAME", cls.lease_name),
            lease_namespace=environ.get("SYNCHRO_LEASE_NAMESPACE") or environ.get("POD_NAMESPACE", ""),
            identity=environ.get("SYNCHRO_IDENTITY") or environ.get("POD_NAME", ""),
            lease=Timings(
                duration=float(environ.get("SYNCHRO_LEASE_DURATION_S", Timings.duration)),
                renew_deadline=float(environ.get("SYNCHRO_LEASE_RENEW_DEADLINE_S", Timings.renew_deadline)),
                retry=float(environ.get("SYNCHRO_LEASE_RETRY_S", Timings.retry)),
            ),
            halt_after_inject=environ.get("SYNCHRO_TEST_HALT_AFTER_INJECT", ""),
        )

    def may_connect(self, address: str) -> bool:
        if not self.redis_networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address == "localhost" and self.may_connect("127.0.0.1")
        return any(ip in n for n in self.redis_networks)
