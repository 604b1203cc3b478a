"""What a relist forgets to say: the objects deleted while a watch was away.

When a watch comes back with `410 Gone` (its resourceVersion compacted away, as after an apiserver restart or a long
cut), kopf lists the kind again and goes on watching. The listing brings every object that exists as an event of
type None, but nothing for the objects deleted meanwhile: their entries stay in kopf's indexes for good. A deleted
SyncCluster would keep its claims (its rival stuck in TargetConflict), a deleted Deployment would stay in the
workload cache (its SyncCluster Ready on a target that is gone), and the deleted SyncCluster's daemon would run on.

`Relists` notices a listing (an event of type None for an object it already knows: the first listing at startup
brings only new ones), waits until the listing has been quiet for `quiet_s`, then drops from the kind's indexes every
object known before that the listing did not bring back, exactly as kopf drops an object on its DELETED event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

Name = tuple[str, str]  # (namespace, name)
QUIET_S = 2.0
log = logging.getLogger("synchro.relists")


class Discarding(Protocol):
    """A kopf index. `_discard` is what kopf itself calls on DELETED (kopf is pinned: requirements-runtime.txt)."""

    def _discard(self, acckey: tuple[str, str, str]) -> Any: ...


@dataclass
class Listing:
    before: dict[Name, str]  # name -> uid of every object of the kind known when the listing began
    back: dict[Name, str] = field(default_factory=dict)  # what the listing (or any event since) brought back
    last: float = field(default_factory=time.monotonic)  # the listing's latest event

    def ghosts(self) -> dict[Name, str]:
        return {name: uid for name, uid in self.before.items() if self.back.get(name) != uid}


class Relists:
    def __init__(self, gone: Callable[[str, dict[Name, str]], Awaitable[None]], quiet_s: float = QUIET_S) -> None:
        self.gone, self.quiet_s = gone, quiet_s
        self.known: dict[str, dict[Name, str]] = {}  # kind -> name -> uid, from every event
        self.listings: dict[str, Listing] = {}  # kind -> the listing under way
        self.tasks: set[asyncio.Task[None]] = set()

    def saw(self, kind: str, type_: str | None, name: Name, uid: str, indexes: Iterable[Discarding]) -> None:
        """One watch event of `kind`, whose objects feed `indexes`."""
        known = self.known.setdefault(kind, {})
        listing = self.listings.get(kind)
        if type_ == "DELETED":
            known.pop(name, None)
            if listing is not None:
                listing.back.pop(name, None)
            return
        if type_ is None and name in known and listing is None:  # kopf lists again: a watch came back with 410
            listing = self.listings[kind] = Listing(dict(known))
            task = asyncio.create_task(self.settle(kind, listing, list(indexes)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if listing is not None:
            listing.back[name] = uid
            if type_ is None:
                listing.last = time.monotonic()
        known[name] = uid

    async def settle(self, kind: str, listing: Listing, indexes: list[Discarding]) -> None:
        while (left := listing.last + self.quiet_s - time.monotonic()) > 0:
            await asyncio.sleep(left)
        del self.listings[kind]
        ghosts = listing.ghosts()
        for (namespace, name), uid in ghosts.items():
            if self.known[kind].get((namespace, name)) == uid:
                del self.known[kind][(namespace, name)]
            for index in indexes:
                index._discard((namespace, name, uid))
        log.log(
            logging.WARNING if ghosts else logging.INFO,
            "a %s watch listed again (410 Gone): %d deleted meanwhile, forgotten",
            kind,
            len(ghosts),
        )
        if ghosts:
            await self.gone(kind, ghosts)
