"""What the probe agents and the operator say to each other through the app's Redis. One source for both sides.

Channels and keys live under the SyncCluster's prefix, so several clusters can share one Redis:
  <prefix>:synchro:probe        the operator's pings and every agent's heartbeats
  <prefix>:synchro:pong         agents' answers to pings
  <prefix>:synchro:view:<pod>   a hash, peer -> unix time last heard, written by that pod's agent
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

CONTAINER = "synchro-probe"
VIEW_TTL_INTERVALS = 3  # a view older than this many probe intervals has expired
CLIENT_NAME = "synchro-probe"  # CLIENT SETNAME of every agent connection, so CLIENT LIST tells it from the app
ALIVE_FIELD = "_alive"  # in a view: when its agent last wrote it (so a view exists even with no peers heard)

# The agent's environment, written by the operator into the sidecar (synchro.probe.sidecar) and read back by the
# agent (synchro.probe.agent) and by the operator from live pods (synchro.probe.checker). The password comes in
# the presets' own variable, synchro.presets.PASSWORD_VAR, which SYNCHRO_PROBE_URL references.
URL_VAR = "SYNCHRO_PROBE_URL"
PREFIX_VAR = "SYNCHRO_PROBE_PREFIX"
INTERVAL_VAR = "SYNCHRO_PROBE_INTERVAL"
POD_VAR = "POD_NAME"
DEFAULT_INTERVAL_S = 10.0


def probe_channel(prefix: str) -> str:
    return f"{prefix}:synchro:probe"


def pong_channel(prefix: str) -> str:
    return f"{prefix}:synchro:pong"


def view_key(prefix: str, pod: str) -> str:
    return f"{prefix}:synchro:view:{pod}"


@dataclass(frozen=True)
class Message:
    kind: str  # "ping", "pong" or "heartbeat"
    sender: str  # a pod name, or "operator"
    id: str = ""  # a ping's id, echoed by its pongs
    sent: float = 0.0  # the ping's send time (the operator's clock), echoed by its pongs

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Message | None:
        try:
            data: dict[str, Any] = json.loads(raw)
            return cls(
                kind=str(data["kind"]),
                sender=str(data["sender"]),
                id=str(data.get("id", "")),
                sent=float(data.get("sent", 0.0)),
            )
        except (ValueError, KeyError, TypeError):
            return None
