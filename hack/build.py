#!/usr/bin/env python3
"""Build the local cluster's binaries from the Go module proxy, cached by version.

Every component is built through a small wrapper module that requires the
upstream module at a pinned version. That sidesteps `go install pkg@v`, which
refuses modules whose go.mod carries replace directives (kubernetes, etcd).

Binaries land in ~/.cache/synchro/bin/<component>-<version>/ and are linked
from .cluster/bin/. A component whose cache directory is complete is not
rebuilt.

Peers that `make bench` compares Synchro with (Reloader) are built by hack/goinstall.py instead: `go install`
from the proxy, or `go build` in a snapshot from ../shared/peers where the proxy refuses the module. They are
cached in ~/.cache/synchro/apps/<name>-<version>/ and linked from .cluster/bin/ too, but only when named.

Usage: hack/build.py [component or peer ...]   (default: every component, no peer)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from goinstall import go_install

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SYNCHRO_CACHE", Path.home() / ".cache" / "synchro"))
LINKS = ROOT / ".cluster" / "bin"


def read_versions() -> dict[str, str]:
    versions = {}
    for line in (ROOT / "hack" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key] = value
    return versions


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    version: str
    packages: dict[str, str]  # binary name -> package path
    ldflags: tuple[str, ...] = ()
    staging_replaces: bool = False  # k8s.io/kubernetes style ./staging replaces
    extra_requires: dict[str, str] = field(default_factory=dict)


def kube_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


def components() -> list[Component]:
    v = read_versions()
    kube = v["KUBERNETES_VERSION"]
    kube_cmds = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
        "kubelet",
        "kube-proxy",
    ]
    return [
        Component(
            name="kubernetes",
            module="k8s.io/kubernetes",
            version=kube,
            packages={c: f"k8s.io/kubernetes/cmd/{c}" for c in kube_cmds},
            ldflags=kube_ldflags(kube),
            staging_replaces=True,
        ),
        Component(
            name="etcd",
            module="go.etcd.io/etcd/server/v3",
            version=v["ETCD_VERSION"],
            packages={"etcd": "go.etcd.io/etcd/server/v3"},
        ),
        Component(
            name="kwok",
            module="sigs.k8s.io/kwok",
            version=v["KWOK_VERSION"],
            packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
            ldflags=(f"-X sigs.k8s.io/kwok/pkg/consts.Version={v['KWOK_VERSION']}",),
        ),
        Component(
            name="helm",
            module="helm.sh/helm/v3",
            version=v["HELM_VERSION"],
            packages={"helm": "helm.sh/helm/v3/cmd/helm"},
            ldflags=(f"-X helm.sh/helm/v3/internal/version.version={v['HELM_VERSION']}",),
        ),
        Component(  # cluster DNS for the real node (hack/realnode.py); the main package is the module root
            name="coredns",
            module="github.com/coredns/coredns",
            version=v["COREDNS_VERSION"],
            packages={"coredns": "github.com/coredns/coredns"},
            ldflags=("-X github.com/coredns/coredns/coremain.GitCommit=" + v["COREDNS_VERSION"],),
        ),
    ]


def go(*args: str, cwd: Path | None = None, capture: bool = False) -> str:
    env = dict(os.environ, GOFLAGS="-buildvcs=false", CGO_ENABLED="0")
    result = subprocess.run(
        ["go", *args],
        cwd=cwd,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def staging_replaces(module: str, version: str) -> dict[str, str]:
    """Map each `./staging` replace of the module's own go.mod to its published tag."""
    info = json.loads(go("mod", "download", "-json", f"{module}@{version}", capture=True))
    gomod = Path(info["GoMod"]).read_text()
    staging_version = "v0." + version.lstrip("v").split(".", 1)[1]
    replaces = {}
    for line in gomod.splitlines():
        parts = line.replace("replace", "").split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            replaces[parts[0]] = staging_version
    if not replaces:
        raise SystemExit(f"no ./staging replaces found in {module}@{version} go.mod")
    return replaces


def wrapper_gomod(c: Component) -> str:
    lines = [f"module synchro.local/build/{c.name}", "", "go 1.24", "", f"require {c.module} {c.version}"]
    for mod, ver in c.extra_requires.items():
        lines.append(f"require {mod} {ver}")
    if c.staging_replaces:
        lines.append("")
        for mod, ver in sorted(staging_replaces(c.module, c.version).items()):
            lines.append(f"replace {mod} => {mod} {ver}")
    return "\n".join(lines) + "\n"


def bin_dir(c: Component) -> Path:
    return CACHE / "bin" / f"{c.name}-{c.version}"


def is_built(c: Component) -> bool:
    return all((bin_dir(c) / b).is_file() for b in c.packages)


def build(c: Component) -> None:
    work = CACHE / "build" / f"{c.name}-{c.version}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(wrapper_gomod(c))
    out = bin_dir(c)
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"building {c.name} {c.version}: {' '.join(c.packages)}", flush=True)
    # One package: name the file. Several: go names each after its import path's last element.
    single = len(c.packages) == 1
    target = str(tmp / next(iter(c.packages))) if single else str(tmp) + "/"
    go(
        "build",
        "-mod=mod",
        "-trimpath",
        "-ldflags",
        " ".join(("-s", "-w", *c.ldflags)),
        "-o",
        target,
        *c.packages.values(),
        cwd=work,
    )
    for binary, pkg in c.packages.items():
        if not (tmp / binary).exists():
            raise SystemExit(f"{c.name}: go build made no {binary} from {pkg}")
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    tmp.rename(out)
    print(f"built {c.name} in {time.monotonic() - started:.0f}s", flush=True)


def link(c: Component) -> None:
    LINKS.mkdir(parents=True, exist_ok=True)
    for binary in c.packages:
        target = LINKS / binary
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(bin_dir(c) / binary)


def peers() -> dict[str, tuple[str, str, str]]:
    """Name -> (module, version, snapshot in PEERS) of the programs only the bench runs."""
    v = read_versions()["RELOADER_VERSION"]
    return {"reloader": ("github.com/stakater/Reloader", v, f"reloader-{v}.tar.gz")}


def build_peer(name: str) -> None:
    module, version, snapshot = peers()[name]
    started = time.monotonic()
    binary = go_install(module, version, name, snapshot)
    print(f"{name} {version}: {binary} ({time.monotonic() - started:.0f} s)", flush=True)
    LINKS.mkdir(parents=True, exist_ok=True)
    (LINKS / name).unlink(missing_ok=True)
    (LINKS / name).symlink_to(binary)


def main(argv: list[str]) -> int:
    wanted = set(argv)
    unknown = wanted - {c.name for c in components()} - set(peers())
    if unknown:
        raise SystemExit(f"build.py: no component or peer named {', '.join(sorted(unknown))}")
    for name in sorted(wanted & set(peers())):
        build_peer(name)
    wanted -= set(peers())
    if argv and not wanted:
        return 0
    for c in components():
        if wanted and c.name not in wanted:
            continue
        if not is_built(c):
            build(c)
        link(c)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
