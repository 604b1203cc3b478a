"""relists.Relists: after a 410 Gone kopf lists again, with no DELETED event for what went away meanwhile."""

from __future__ import annotations

import asyncio

from synchro.relists import Name, Relists


class FakeIndex:
    """Records what is dropped, as kopf's Index._discard would drop it."""

    def __init__(self) -> None:
        self.discarded: list[tuple[str, str, str]] = []

    def _discard(self, acckey: tuple[str, str, str]) -> None:
        self.discarded.append(acckey)


def run(events: list[tuple[str | None, str, str]]) -> tuple[FakeIndex, list[dict[Name, str]]]:
    """Feed (type, name, uid) events of one kind in namespace ns, then let any listing settle."""
    index, gone = FakeIndex(), []

    async def feed() -> None:
        async def forget(kind: str, ghosts: dict[Name, str]) -> None:
            gone.append(ghosts)

        relists = Relists(forget, quiet_s=0.01)
        for type_, name, uid in events:
            relists.saw("Deployment", type_, ("ns", name), uid, [index])
        await asyncio.gather(*relists.tasks)

    asyncio.run(feed())
    return index, gone


def test_the_first_listing_and_plain_events_forget_nothing() -> None:
    index, gone = run([(None, "a", "1"), (None, "b", "2"), ("MODIFIED", "a", "1"), ("DELETED", "b", "2")])
    assert index.discarded == [] and gone == []


def test_a_relist_drops_what_it_did_not_bring_back() -> None:
    first = [(None, "a", "1"), (None, "b", "2"), (None, "c", "3"), ("ADDED", "d", "4")]
    index, gone = run([*first, (None, "a", "1"), (None, "d", "4")])  # b and c went away while the watch was out
    assert sorted(index.discarded) == [("ns", "b", "2"), ("ns", "c", "3")]
    assert gone == [{("ns", "b"): "2", ("ns", "c"): "3"}]


def test_an_object_deleted_and_made_again_meanwhile_drops_its_old_self() -> None:
    index, _ = run([(None, "a", "1"), (None, "b", "2"), (None, "a", "1"), (None, "b", "9")])
    assert index.discarded == [("ns", "b", "2")]


def test_an_event_during_the_listing_counts_as_back() -> None:
    index, gone = run([(None, "a", "1"), (None, "b", "2"), (None, "a", "1"), ("MODIFIED", "b", "2")])
    assert index.discarded == [] and gone == []
