"""goinstall.build_lock: a fixture and the background prefetch never build the same app at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from goinstall import build_lock, build_once


def test_a_second_build_of_the_same_target_waits_for_the_first_and_another_target_does_not(tmp_path: Path) -> None:
    said: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with build_lock(tmp_path / "app-1"):
            inside.set()
            time.sleep(0.5)
            said.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(5)
    with build_lock(tmp_path / "other-1"):  # another app is not held up
        said.append("other")
    with build_lock(tmp_path / "app-1"):
        said.append("second")
    thread.join(5)
    assert said == ["other", "first done", "second"]


def test_build_once_builds_a_missing_target_once(tmp_path: Path) -> None:
    target, builds = tmp_path / "app-1", []
    done = target / "bin" / "app"

    def build() -> None:
        builds.append(1)
        done.parent.mkdir(parents=True)
        done.touch()

    build_once(target, done, build)
    build_once(target, done, build)
    assert builds == [1]
