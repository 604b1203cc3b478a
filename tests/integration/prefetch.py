"""Build the apps the integration tests run, into ~/.cache/synchro, ahead of the tests that need them.

On a cold machine these builds (Stalwart's cargo build, two Directus installs with their native modules,
Centrifugo, soketi) took about 20 of `make test`'s 73 minutes, each inside the fixture of the test that needs it,
while the other core was mostly idle. `make test` starts this script in the background, niced, right after the
virtualenv is made, so that they run beside the Go builds and the first tests. Each build holds a lock
(goinstall.build_lock): a fixture that gets there first builds it, one that gets there second waits and finds it
built. Warm, every build is found done at once.

Each app is tried on its own: one that fails here is left to its test, which fails with the reason.
Usage: tests/integration/prefetch.py   (output: one line per app with its time)
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent / "operator"), str(HERE.parent.parent / "hack")]

import test_preset_centrifugo  # noqa: E402
import test_preset_directus  # noqa: E402
import test_preset_soketi  # noqa: E402
import test_preset_stalwart  # noqa: E402


def builds() -> list[tuple[str, str, Callable[[], object]]]:
    """(name, the tool it needs, the build), in the order the tests need them."""
    found: list[tuple[str, str, Callable[[], object]]] = [("centrifugo", "go", test_preset_centrifugo.build)]
    for release in test_preset_directus.RELEASES:
        found.append((f"directus-{release.version}", "npm", lambda r=release: test_preset_directus.install(r)))
    found.append(("soketi", "npm", lambda: test_preset_soketi.install(test_preset_soketi.APP)))
    found.append(("stalwart", "cargo", test_preset_stalwart.build))
    return found


def main() -> int:
    for name, tool, build in builds():
        if not shutil.which(tool) and not (tool == "cargo" and (Path.home() / ".cargo" / "bin" / "cargo").exists()):
            print(f"{name}: skipped, no {tool} on the PATH (its test says so)", flush=True)
            continue
        started = time.monotonic()
        try:
            build()
        except Exception:  # one app's failure is its test's to report
            print(f"{name}: failed after {time.monotonic() - started:.0f} s (its test builds it again):", flush=True)
            traceback.print_exc(limit=3, file=sys.stdout)
            continue
        print(f"{name}: ready after {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
