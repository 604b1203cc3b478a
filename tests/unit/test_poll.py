"""The tests' one way of waiting: poll with a deadline, and stop at once when the wait cannot succeed."""

from __future__ import annotations

import pytest

from poll import wait_for


class Gone(Exception):
    pass


def test_returns_the_first_truthy_value() -> None:
    answers = iter([0, None, "", "ready"])
    assert wait_for(lambda: next(answers), "an answer", timeout=5, interval=0) == "ready"


def test_a_transient_error_is_another_not_yet_and_the_timeout_names_it() -> None:
    def check() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(AssertionError, match=r"waiting for the server; last: ConnectionError\('refused'\)"):
        wait_for(check, "the server", timeout=0.05, interval=0.01)


def test_a_fatal_error_ends_the_wait_at_once() -> None:
    calls = []

    def check() -> bool:
        calls.append(1)
        raise Gone("the process exited")

    with pytest.raises(Gone, match="the process exited"):
        wait_for(check, "the server", timeout=30, interval=0.01, fatal=(Gone,))
    assert len(calls) == 1
