"""The controller daemon asked to stop: it ends at once, abandoning the round in progress, before kopf's
cancellation_backoff runs out (kopf would cancel it then, and log that it will escalate)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import pytest

from synchro import handlers, reconcile
from synchro.config import Config
from synchro.redis import connect

DEADLINE_S = 5.0  # generous; the daemon's cancellation_backoff, after which kopf would cancel it
BODY = {"metadata": {"namespace": "ns", "name": "web", "uid": "u1", "generation": 1}, "spec": {}}


class Stopped:
    """kopf's `stopped` as a daemon sees it: false until set, and awaitable with wait()."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> Stopped:
        await self.event.wait()
        return self


async def daemon_in_a_hung_pass(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Task[None], Stopped, kopf.Memo]:
    """The controller daemon of one SyncCluster, started and stuck in a pass that never ends (an API call or a
    Redis PING that hangs while the namespace is deleted)."""
    started = asyncio.Event()

    async def hangs(*_: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(reconcile.Reconciler, "run", hangs)
    memo = kopf.Memo(config=Config(), kube=None, redis=connect.Connections(), wakers={}, gone=set())
    stopped = Stopped()
    daemon = asyncio.create_task(
        handlers.controller(
            body=BODY,
            memo=memo,
            claims={},
            cluster_pods={},
            deployments={},
            statefulsets={},
            secret_versions={},
            logger=logging.getLogger("test"),
            stopped=stopped,
        )
    )
    await asyncio.wait_for(started.wait(), DEADLINE_S)
    return daemon, stopped, memo


def test_a_loop_asked_to_stop_abandons_its_pass_and_ends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> kopf.Memo:
        daemon, stopped, memo = await daemon_in_a_hung_pass(monkeypatch)
        assert memo.wakers  # the loop is registered while it runs
        stopped.event.set()
        ended, _ = await asyncio.wait({daemon}, timeout=DEADLINE_S)
        assert ended, f"still in its pass {DEADLINE_S:.0f} s after it was asked to stop"
        daemon.result()  # returned: not cancelled, nothing for kopf to escalate
        return memo

    memo = asyncio.run(scenario())
    assert memo.wakers == {} and memo.gone == set()


def test_a_cancel_of_the_daemon_itself_still_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> bool:
        daemon, _, memo = await daemon_in_a_hung_pass(monkeypatch)
        daemon.cancel()  # kopf's own, once cancellation_backoff ran out
        await asyncio.wait({daemon}, timeout=DEADLINE_S)
        return daemon.cancelled() and memo.wakers == {}

    assert asyncio.run(scenario())
