"""Polling with a deadline: tests wait for a condition, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T],
    what: str,
    timeout: float = 60,
    interval: float = 0.2,
    fatal: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` until it returns something truthy; return that, or fail naming `what` and the last value.
    An exception of a `fatal` type is raised at once: it says the wait cannot succeed (say, the process exited)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
        except fatal:
            raise
        except Exception as e:  # a transient API error is just another "not yet"
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
