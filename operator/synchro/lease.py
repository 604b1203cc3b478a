"""Leader election over a coordination.k8s.io/v1 Lease: the timing decisions and the Lease's spec, pure.

No two replicas' clocks are ever compared. A standby measures a holder's silence on its own clock: it notes when
it first saw the Lease's current version and may take the Lease once a whole duration passed with no renewal. A
leader counts from the moment it sent its last successful renewal and gives up (the process exits) once the renew
deadline passed without another, which is before any standby may take the Lease: renew deadline < duration.
A released Lease (no holder) or one that names this replica is taken at once.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

API_VERSION, KIND = "coordination.k8s.io/v1", "Lease"


@dataclass(frozen=True)
class Timings:
    duration: float = 15.0  # how long a Lease is valid after its last renewal
    renew_deadline: float = 10.0  # a leader that could not renew for this long exits
    retry: float = 2.0  # how often a leader renews and a standby looks

    def __post_init__(self) -> None:
        if not 0 < self.retry < self.renew_deadline < self.duration:
            raise ValueError(
                f"lease timings need 0 < retry ({self.retry}) < renew deadline ({self.renew_deadline}) "
                f"< duration ({self.duration}): a leader must give up before a standby may take over"
            )


@dataclass(frozen=True)
class Holder:
    """What a Lease says: who holds it, for how long, and how many handovers it has seen."""

    identity: str  # "" once released
    duration: float
    transitions: int
    version: str  # the Lease's resourceVersion: any renewal changes it


def read(body: Mapping[str, Any]) -> Holder:
    spec = body.get("spec") or {}
    return Holder(
        identity=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        version=str((body.get("metadata") or {}).get("resourceVersion", "")),
    )


@dataclass(frozen=True)
class Sighting:
    """A Lease version and when this replica first saw it, by its own monotonic clock."""

    holder: Holder
    since: float


def sight(previous: Sighting | None, holder: Holder, now: float) -> Sighting:
    if previous is not None and previous.holder.version == holder.version:
        return previous
    return Sighting(holder, now)


def may_take(seen: Sighting, me: str, now: float) -> bool:
    holder = seen.holder
    return holder.identity in ("", me) or now >= seen.since + holder.duration


def still_leading(renewed_at: float, now: float, timings: Timings) -> bool:
    """`renewed_at`: when the last successful renewal was sent (not answered): the Lease runs from then at the
    latest, so a leader that stops here stops before any standby's clock can run out."""
    return now - renewed_at < timings.renew_deadline


def micro_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec_taken(previous: Holder | None, me: str, timings: Timings, now: datetime.datetime) -> dict[str, Any]:
    """The spec that takes the Lease or renews it. A new holder counts one more transition."""
    handover = previous is None or previous.identity != me
    transitions = 0 if previous is None else previous.transitions + (1 if handover else 0)
    spec: dict[str, Any] = {
        "holderIdentity": me,
        "leaseDurationSeconds": max(1, round(timings.duration)),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions,
    }
    if handover:
        spec["acquireTime"] = micro_time(now)
    return spec


def spec_released(previous: Holder, now: datetime.datetime) -> dict[str, Any]:
    """Given back on a clean exit: no holder, so the next replica takes it at once."""
    return {"leaseDurationSeconds": 1, "renewTime": micro_time(now), "leaseTransitions": previous.transitions}
