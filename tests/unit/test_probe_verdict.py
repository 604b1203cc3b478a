"""The probe's pure parts: the verdict from what was seen, CLIENT LIST parsing, pod records, the status page."""

from __future__ import annotations

import asyncio
import datetime

from synchro import statusview
from synchro.probe import checker, verdict
from synchro.probe.verdict import Observation, Pod

PODS = [Pod("a", ip="10.0.0.1"), Pod("b", ip="10.0.0.2"), Pod("c", ip="10.0.0.3")]
ALL_PONG = {"a": 0.001, "b": 0.002, "c": 0.003}


def test_all_answering_is_healthy_with_rtts() -> None:
    v = verdict.judge(PODS, Observation(pongs=ALL_PONG, views={"a": {"b": 1.0, "c": 1.0}}))
    assert (v.ok, v.reason, v.healthy, v.unhealthy) == (True, "AllPodsHealthy", ("a", "b", "c"), ())
    assert v.hears == {"a": ("b", "c"), "b": (), "c": ()}
    status = v.status("t")
    assert status["rttMillis"] == {"p50": 2.0, "p99": 3.0} and status["expected"] == 3


def test_a_silent_pod_is_named() -> None:
    v = verdict.judge(PODS, Observation(pongs={"a": 0.001, "c": 0.001}))
    assert (v.ok, v.reason, v.unhealthy) == (False, "PodsUnreachable", (("b", "NoReply"),))
    assert "b (NoReply)" in v.message


def test_a_stale_pod_is_named_even_when_it_answers() -> None:
    pods = [Pod("a"), Pod("b", stale=True)]
    v = verdict.judge(pods, Observation(pongs={"a": 0.001, "b": 0.001}))
    assert v.unhealthy == (("b", "StaleConfig"),)


def test_a_pod_alive_on_another_redis_is_split_brain_with_groups() -> None:
    v = verdict.judge(PODS, Observation(pongs={"a": 0.001, "b": 0.001}, elsewhere={"c": "10.9.9.9:6379/0"}))
    assert (v.reason, v.groups, v.unhealthy) == ("SplitBrain", (("a", "b"), ("c",)), (("c", "Isolated"),))
    assert "a b | c" in v.message


def test_redis_down_marks_everyone() -> None:
    v = verdict.judge(PODS, Observation(redis_error="Connection refused"))
    assert (v.reason, len(v.unhealthy), v.healthy) == ("RedisUnavailable", 3, ())


def test_too_few_app_subscribers_is_reported() -> None:
    seen = Observation(pongs=ALL_PONG, subscribers={"x:bus": 2}, expected_subscribers={"x:bus": 3})
    v = verdict.judge(PODS, seen)
    assert v.reason == "PodsUnreachable" and "x:bus has 2 subscriber(s), expected 3" in v.message


def test_client_list_names_the_pod_whose_app_does_not_subscribe() -> None:
    clients = [
        {"addr": "10.0.0.1:5000", "name": "", "sub": "1", "psub": "0"},
        {"addr": "10.0.0.2:5001", "name": "", "sub": "0", "psub": "1"},
        {"addr": "10.0.0.3:5002", "name": "synchro-probe", "sub": "1", "psub": "0"},  # only the agent
    ]
    ips = checker.app_subscriber_ips(clients)
    assert ips == frozenset({"10.0.0.1", "10.0.0.2"})
    v = verdict.judge(PODS, Observation(pongs=ALL_PONG, app_subscriber_ips=ips))
    assert v.unhealthy == (("c", "AppNotSubscribed"),)
    # Not checked (external Redis): nobody is blamed for it.
    assert verdict.judge(PODS, Observation(pongs=ALL_PONG)).ok


def test_pod_record_reads_the_sidecar_env_and_readiness() -> None:
    body = {
        "metadata": {"name": "p", "annotations": {"synchro.dev/config-hash": "h"}},
        "spec": {
            "containers": [
                {"name": "app"},
                {
                    "name": "synchro-probe",
                    "env": [
                        {
                            "name": "SYNCHRO_REDIS_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}},
                        },
                        {"name": "SYNCHRO_PROBE_URL", "value": "redis://:$(SYNCHRO_REDIS_PASSWORD)@h:6379/0"},
                        {"name": "SYNCHRO_PROBE_PREFIX", "value": "ns.c"},
                    ],
                },
            ]
        },
        "status": {"podIP": "10.0.0.9", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    record = checker.pod_record(body)
    assert record == checker.PodRecord(
        "p", True, "h", "10.0.0.9", "redis://:$(SYNCHRO_REDIS_PASSWORD)@h:6379/0", "ns.c", ("s", "password")
    )
    body["metadata"]["deletionTimestamp"] = "now"
    assert not checker.pod_record(body).ready


def test_a_sidecar_that_just_restarted_is_judged_only_after_its_grace() -> None:
    """The kubelet restarts a killed sidecar and the pod shows Ready before the new agent has subscribed."""
    body = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "synchro-probe"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "state": {"running": {"startedAt": "2026-11-23T10:00:00Z"}}},
                {"name": "synchro-probe", "state": {"running": {"startedAt": "2026-11-23T12:00:00Z"}}},
            ],
        },
    }
    record = checker.pod_record(body)
    assert record.probe_started == "2026-11-23T12:00:00Z"
    at = lambda s: datetime.datetime(2026, 11, 23, 12, 0, s, tzinfo=datetime.UTC)  # noqa: E731
    assert not record.settled(at(3))
    assert record.settled(at(int(checker.STARTUP_GRACE_S)))
    assert checker.PodRecord("q", True, None, None, None, None, None).settled(at(0))  # no sidecar status: judged
    assert not checker.PodRecord("q", False, None, None, None, None, None).settled(at(59))


def test_status_page_draws_the_matrix() -> None:
    v = verdict.judge(PODS[:2], Observation(pongs={"a": 0.001}, views={"a": {"b": 1.0}, "b": {}}))
    page = statusview.render(
        {
            "metadata": {"namespace": "ns", "name": "c"},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "PodsUnreachable", "message": "b"}],
                "probe": v.status("t"),
            },
        }
    )
    lines = page.splitlines()
    assert any(line.startswith("a ") and line.rstrip().endswith("0 ok") and " x " in line for line in lines)
    assert any(line.startswith("b ") and line.rstrip().endswith("1 NoReply") for line in lines)


def test_an_app_release_that_ignores_its_namespace_is_counted_on_its_legacy_channel() -> None:
    """Directus up to 11.16.1 subscribes to directus:bus:* whatever REDIS_BUS_NAMESPACE says."""
    from synchro import presets
    from synchro.presets.base import Endpoint

    ep = Endpoint(host="r", prefix="ns.cms")
    directus = presets.get("directus")
    [channel] = directus.probe_channels(ep)
    assert directus.legacy_channels(ep) == {channel: "directus:bus:schemaChanged"}
    assert presets.get("soketi").legacy_channels(ep) == {}

    class Redis:
        async def pubsub_numsub(self, *channels: str) -> list[tuple[bytes, int]]:
            counts = {"directus:bus:schemaChanged": 2, "other": 1}
            return [(c.encode(), counts.get(c, 0)) for c in channels]

    legacy = directus.legacy_channels(ep)
    assert asyncio.run(checker.count_subscribers(Redis(), [channel, "other"], legacy)) == {channel: 2, "other": 1}
    assert asyncio.run(checker.count_subscribers(Redis(), [channel], {})) == {channel: 0}
    assert checker.fold_legacy({channel: 3, "directus:bus:schemaChanged": 1}, [channel], legacy) == {channel: 3}
