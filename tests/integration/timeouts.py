"""Every fault test's time bounds, in one table: each is a deadline for `wait_for` (or how long a fault lasts),
never a timing assertion; the measured times go in docs/reliability.md.

Any entry can be overridden for a slower machine with SYNCHRO_TIMEOUT_<NAME>, e.g. SYNCHRO_TIMEOUT_READY=120.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Timeouts:
    ready: float = 60  # a SyncCluster goes Ready on kwok
    api_back: float = 60  # kube-apiserver answers /readyz again after a restart of it or of etcd
    etcd_down: float = 20  # how long etcd stays stopped (issue 17 item 2): a duration, not a deadline
    scale_after_recovery: float = 10  # a `kubectl scale` made after etcd came back is applied (item 2)
    blackhole: float = 90  # how long the operator's API connections are black-holed (item 3): a duration
    change_after_blackhole: float = 30  # a change made during the block is handled after it is lifted (item 3)
    halted: float = 60  # the operator stops itself at the test hook, after the inject write (item 5)
    scaled_after_restart: float = 60  # after the SIGKILL and a restart, the target runs its replicas (item 5)
    gone_settled: float = 90  # after a 410 Gone and a relist, the next passes decide without the deleted objects
    real_ready: float = 240  # a Managed SyncCluster with real pods (Redis, targets, sidecars) goes PubSubHealthy
    release_held: float = 60  # the namespace, deleted with no operator running, is held by the finalizer (item 6)
    release_gone: float = 60  # after `synchro release`, the namespace is gone (item 6)
    ha_switch: float = 60  # after a fault of the master, a majority of the Sentinels names another pod (issue 15)
    ha_heal: float = 90  # after a fault of the master, probes, routing and the fence all say healed (issue 15)
    ha_update: float = 180  # a new Redis pod template: all three pods made again, one at a time (issue 15)
    burst_ready: float = 240  # a burst of SyncClusters, created across an apiserver restart, all go Ready (item 1)


def load(environ: os._Environ[str] | dict[str, str] = os.environ) -> Timeouts:
    overrides = {
        f.name: float(environ[key])
        for f in dataclasses.fields(Timeouts)
        if (key := f"SYNCHRO_TIMEOUT_{f.name.upper()}") in environ
    }
    return Timeouts(**overrides)


TIMEOUTS = load()
