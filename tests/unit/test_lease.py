"""Leader election's timing decisions (synchro.lease) on a fake clock: when a standby may take the Lease, when a
leader must give up, and the Lease specs it writes."""

from __future__ import annotations

import datetime

import pytest

from synchro import lease
from synchro.config import Config
from synchro.lease import Holder, Timings

T = Timings()  # 15 s duration, 10 s renew deadline, 2 s retry
NOW = datetime.datetime(2026, 12, 3, 16, 0, 0, 123456, tzinfo=datetime.UTC)


def holder(identity: str = "a", version: str = "1", duration: float = 15, transitions: int = 0) -> Holder:
    return Holder(identity, duration, transitions, version)


def test_a_standby_takes_a_silent_lease_only_after_a_whole_duration_on_its_own_clock() -> None:
    seen = lease.sight(None, holder(), now=1000.0)  # the holder's renewTime is never compared with this clock
    assert not lease.may_take(seen, "b", 1000.0)
    assert not lease.may_take(seen, "b", 1014.9)
    assert lease.may_take(seen, "b", 1015.0)


def test_every_renewal_restarts_the_standbys_count() -> None:
    seen = lease.sight(None, holder(version="1"), now=1000.0)
    seen = lease.sight(seen, holder(version="1"), now=1010.0)  # unchanged: the count runs on
    assert seen.since == 1000.0
    seen = lease.sight(seen, holder(version="2"), now=1012.0)  # renewed
    assert not lease.may_take(seen, "b", 1026.0)
    assert lease.may_take(seen, "b", 1027.0)


@pytest.mark.parametrize("identity", ["", "me"])
def test_a_released_lease_or_one_of_mine_is_taken_at_once(identity: str) -> None:
    assert lease.may_take(lease.sight(None, holder(identity), now=5.0), "me", 5.0)


def test_a_leader_gives_up_at_the_renew_deadline_before_the_lease_expires() -> None:
    renewed = 100.0  # when its last successful renewal was sent
    assert lease.still_leading(renewed, 109.9, T)
    assert not lease.still_leading(renewed, 110.0, T)
    # A standby that saw that renewal (after it was sent) may take over 15 s later at the earliest.
    seen = lease.sight(None, holder(), now=renewed)
    assert not lease.may_take(seen, "b", 110.0)


@pytest.mark.parametrize("duration, deadline, retry", [(10, 10, 2), (15, 16, 2), (15, 10, 10), (15, 10, 0)])
def test_timings_that_could_let_two_lead_are_refused(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="renew deadline"):
        Timings(duration, deadline, retry)


def test_taking_renewing_and_releasing_write_the_lease_fields() -> None:
    taken = lease.spec_taken(holder("a", transitions=3), "b", T, NOW)
    assert taken == {
        "holderIdentity": "b",
        "leaseDurationSeconds": 15,
        "renewTime": "2026-12-03T16:00:00.123456Z",
        "acquireTime": "2026-12-03T16:00:00.123456Z",
        "leaseTransitions": 4,
    }
    renewed = lease.spec_taken(holder("b", transitions=4), "b", T, NOW)
    assert "acquireTime" not in renewed and renewed["leaseTransitions"] == 4
    assert lease.spec_taken(None, "a", T, NOW)["leaseTransitions"] == 0
    released = lease.spec_released(holder("b", transitions=4), NOW)
    assert "holderIdentity" not in released and released["leaseTransitions"] == 4


def test_read_a_lease_body() -> None:
    body = {"metadata": {"resourceVersion": "42"}, "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}}
    assert lease.read(body) == Holder("x", 15.0, 0, "42")
    assert lease.read({"metadata": {}, "spec": {}}).identity == ""


def test_config_reads_election_settings_from_the_pod() -> None:
    config = Config.from_env({"POD_NAME": "synchro-abc", "POD_NAMESPACE": "ops", "SYNCHRO_LEASE_DURATION_S": "20"})
    assert (config.leader_election, config.identity, config.lease_namespace) == (True, "synchro-abc", "ops")
    assert config.lease == Timings(20, 10, 2)
    assert not Config.from_env({"SYNCHRO_LEADER_ELECTION": "false"}).leader_election
    with pytest.raises(ValueError, match="renew deadline"):
        Config.from_env({"SYNCHRO_LEASE_RENEW_DEADLINE_S": "30"})
