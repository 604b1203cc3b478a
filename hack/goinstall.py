"""Programs built from the Go module proxy, cached by version under ~/.cache/synchro/apps.

Used by hack/build.py (the peers `make bench` compares against, such as Reloader) and by the integration tests'
kit (apps such as Centrifugo). Where the proxy refuses a module, its source is a `git archive` snapshot in PEERS.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SYNCHRO_CACHE", Path.home() / ".cache" / "synchro"))
# `git archive` snapshots of modules the Go module proxy refuses (relative paths are from the repo root; in CI the
# clone has a copy of shared/ beside it).
PEERS = ROOT / os.environ.get("SYNCHRO_PEERS", "../shared/peers")


def fresh_partial(target: Path) -> Path:
    """An empty `<target>.partial-<pid>` folder to build into, after removing those left by dead processes."""
    for stale in target.parent.glob(f"{target.name}.partial-*"):
        if not Path("/proc", stale.name.rsplit("-", 1)[1]).exists():
            shutil.rmtree(stale, ignore_errors=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


@contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """One build of `target` at a time, across processes (a test's fixture and tests/integration/prefetch.py,
    which builds the apps in the background): the second waits for the first, then finds the build done."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_once(target: Path, done: Path, build: Callable[[], None]) -> None:
    """Run `build` unless `done` exists, under target's build_lock: a build another process finished while this
    one waited is not made again."""
    if done.exists():
        return
    with build_lock(target):
        if not done.exists():
            build()


def proxy_only_go_env(**extra: str) -> dict[str, str]:
    """Go's environment with `direct` dropped from GOPROXY: modules come from the proxy (or the module cache),
    never straight from their VCS host."""
    configured = subprocess.run(["go", "env", "GOPROXY"], check=True, capture_output=True, text=True).stdout
    proxies = [p for p in configured.strip().replace("|", ",").split(",") if p and p != "direct"]
    return {**os.environ, "GOPROXY": ",".join(proxies) or "off", "GOFLAGS": "-buildvcs=false", **extra}


def go_install(module: str, version: str, binary: str, snapshot: str, ldflags: Sequence[str] = ()) -> Path:
    """`go install <module>@<version>` from the Go module proxy into ~/.cache/synchro/apps/<binary>-<version>/bin,
    once per version; returns the binary. Where the proxy refuses the module (it answers 403 for some), the
    source is `snapshot`, a `git archive` tarball in PEERS, unpacked and built there with `go build`; its
    dependencies still come from the proxy. `source` beside bin/ says which way it was built and how long it
    took. A half-done build is never used: it is installed into a `.partial-<pid>` folder and renamed when
    complete; those left by dead processes are removed."""
    target = CACHE / "apps" / f"{binary}-{version}"
    build_once(target, target / "bin" / binary, lambda: _go_build(module, version, binary, snapshot, ldflags, target))
    return target / "bin" / binary


def _go_build(module: str, version: str, binary: str, snapshot: str, ldflags: Sequence[str], target: Path) -> None:
    partial = fresh_partial(target)
    (partial / "bin").mkdir(parents=True)
    env = proxy_only_go_env(CGO_ENABLED="0", GOBIN=str(partial / "bin"))
    flags = ["-trimpath", "-ldflags", " ".join(("-s", "-w", *ldflags))]
    started = time.monotonic()
    proxy = subprocess.run(["go", "install", *flags, f"{module}@{version}"], env=env, capture_output=True, text=True)
    if proxy.returncode == 0:
        source = f"{module}@{version} from the Go module proxy ({env['GOPROXY']})"
    else:
        refusal = (proxy.stderr.strip().splitlines() or ["no output"])[-1]
        tarball = PEERS / snapshot
        if not tarball.exists():
            raise RuntimeError(f"go install {module}@{version} failed ({refusal}) and {tarball} does not exist")
        (partial / "src").mkdir()
        subprocess.run(["tar", "-xzf", str(tarball), "-C", str(partial / "src")], check=True)
        [folder] = (partial / "src").iterdir()
        subprocess.run(
            ["go", "build", *flags, "-o", str(partial / "bin" / binary), "."], cwd=folder, env=env, check=True
        )
        shutil.rmtree(partial / "src")
        source = f"{tarball.resolve()} with go build; go install {module}@{version} failed: {refusal}"
    (partial / "source").write_text(f"{source}\nbuilt in {time.monotonic() - started:.0f} s\n")
    shutil.rmtree(target, ignore_errors=True)  # under build_lock: nobody else builds it meanwhile
    partial.rename(target)
