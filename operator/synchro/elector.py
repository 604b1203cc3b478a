"""The Lease's I/O: take it before kopf starts, renew it while kopf runs, give it back on a clean exit.

The decisions (may I take it, am I still leading) are synchro.lease's; this module only reads and writes the Lease.
Every write is a PUT conditional on the resourceVersion just read, so two replicas never both take one version.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from synchro import kube, lease, metrics

log = logging.getLogger("synchro.elector")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Elector:
    def __init__(
        self,
        gateway: kube.Kube,
        namespace: str,
        name: str,
        identity: str,
        timings: lease.Timings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.namespace, self.name, self.identity = gateway, namespace, name, identity
        self.timings, self.clock = timings, clock
        self.seen: lease.Sighting | None = None
        self.renewed_at: float | None = None  # when the last successful write was sent; None: not leading
        self.holder = ""  # who leads, as last read

    @property
    def leading(self) -> bool:
        return self.renewed_at is not None and lease.still_leading(self.renewed_at, self.clock(), self.timings)

    def _get(self) -> dict[str, Any] | None:
        return self.kube.get(lease.API_VERSION, lease.KIND, self.namespace, self.name)

    def try_take(self) -> bool:
        """One attempt to take or renew the Lease (blocking). True: this replica leads until renewed_at + the
        renew deadline."""
        sent = self.clock()
        body = self._get()
        if body is None:
            spec = lease.spec_taken(None, self.identity, self.timings, utcnow())
            meta = {"name": self.name, "namespace": self.namespace}
            created = self.kube.create(
                {"apiVersion": lease.API_VERSION, "kind": lease.KIND, "metadata": meta, "spec": spec}
            )
            return self._taken(sent, created is not None)
        holder = lease.read(body)
        self.holder = holder.identity
        self.seen = lease.sight(self.seen, holder, sent)
        if not lease.may_take(self.seen, self.identity, sent):
            return False
        body["spec"] = {**body.get("spec", {}), **lease.spec_taken(holder, self.identity, self.timings, utcnow())}
        try:
            self.kube.replace(body)
        except kube.KubeError as e:
            if e.status != 409:  # someone else wrote it first: look again on the next try
                raise
            return False
        return self._taken(sent, True)

    def _taken(self, sent: float, ok: bool) -> bool:
        if ok:
            if self.renewed_at is None:
                log.info("took Lease %s/%s as %s", self.namespace, self.name, self.identity)
            self.renewed_at, self.holder = sent, self.identity
            metrics.LEADER.set(1)
        return ok

    async def acquire(self) -> None:
        """Return once this replica holds the Lease."""
        while True:
            try:
                if await asyncio.to_thread(self.try_take):
                    return
            except Exception as e:  # an unreachable API server is just another "not yet"
                log.warning("could not read or take Lease %s/%s: %s", self.namespace, self.name, e)
            await asyncio.sleep(self.timings.retry)

    async def hold(self) -> None:
        """Renew every retry period; return as soon as the renew deadline passed without a renewal, which is
        before the Lease can expire for anyone else. A renewal that hangs does not delay this."""
        renewing = asyncio.create_task(self._renew_forever())
        try:
            while self.leading and not renewing.done():
                assert self.renewed_at is not None
                left = self.renewed_at + self.timings.renew_deadline - self.clock()
                await asyncio.wait({renewing}, timeout=min(max(left, 0.01), self.timings.retry))
        finally:
            renewing.cancel()
        metrics.LEADER.set(0)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.timings.retry)
            try:
                if not await asyncio.to_thread(self.try_take):
                    log.error("Lease %s/%s is held by %s now", self.namespace, self.name, self.holder)
                    return
            except Exception as e:
                log.warning("could not renew Lease %s/%s: %s", self.namespace, self.name, e)

    def release(self) -> None:
        """Give the Lease back (blocking) if this replica still holds it, so that a standby takes it at once."""
        try:
            body = self._get()
            if body is None or lease.read(body).identity != self.identity:
                return
            body["spec"] = lease.spec_released(lease.read(body), utcnow())
            self.kube.replace(body)
            log.info("released Lease %s/%s", self.namespace, self.name)
        except Exception as e:  # the Lease then expires on its own
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, e)
        finally:
            self.renewed_at = None
            metrics.LEADER.set(0)


async def stand_by(lead: Elector) -> bool:
    """Wait for the Lease. False: SIGTERM or SIGINT came first (a standby has nothing to give back)."""
    loop = asyncio.get_running_loop()
    acquiring = asyncio.create_task(lead.acquire())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, acquiring.cancel)
    try:
        await asyncio.wait({acquiring})
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if acquiring.cancelled():
        log.info("stopped while standing by for Lease %s/%s", lead.namespace, lead.name)
        return False
    acquiring.result()
    return True


async def lead_while(lead: Elector, operator: Coroutine[Any, Any, None]) -> None:
    """Run `operator` (kopf) while renewing the Lease. A renewal missing for the renew deadline ends the process at
    once, before the Lease can expire for a standby; once `operator` returns (SIGTERM), the Lease is given back."""
    running = asyncio.create_task(operator)
    holding = asyncio.create_task(lead.hold())
    try:
        await asyncio.wait({running, holding}, return_when=asyncio.FIRST_COMPLETED)
        if holding.done() and not running.done():
            log.critical("no Lease renewal for %.0f s: exiting before it can expire", lead.timings.renew_deadline)
            logging.shutdown()
            os._exit(1)  # no cleanup: kopf must not write once another replica may lead
        running.result()
    finally:
        holding.cancel()
        await asyncio.to_thread(lead.release)
