#!/usr/bin/env python3
"""Build the real node's container images locally, without a registry, and import them into containerd.

    hack/images.py build [name ...]                  build (or reuse) OCI archives; print their paths
    hack/images.py import --address SOCK [name ...]  build, then `ctr -n k8s.io images import` what is missing

Images are OCI layouts written with umoci over a Debian root filesystem (debootstrap --variant=minbase
from Debian's archive), saved as OCI archives under ~/.cache/synchro/images/<name>-<hash>.tar, where
<hash> covers everything the image is made of (package lists, files, config). An unchanged image is
never rebuilt. Every image is referenced by name with imagePullPolicy IfNotPresent; nothing is pulled.

The operator image is the one users get: the repository's Dockerfile, built by `buildah bud` (no daemon)
over the `python` base image below, passed in as the Dockerfile's BASE build argument. pip in the build
reaches the package index the way the host's pip does: the host's pip configuration is mounted at build
time, never copied into the image or the repository.

Needs root (debootstrap, chroot, file ownership), umoci, debootstrap, gcc (the pause binary) and buildah.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SYNCHRO_CACHE", Path.home() / ".cache" / "synchro"))
IMAGES = CACHE / "images"
SUITE = "bookworm"


def apt_sources() -> dict[str, str]:
    """Suite -> archive URI, as this machine's apt is configured (deb822 .sources, then sources.list): the
    images come from the same Debian archive the host installs its packages from."""
    found: dict[str, str] = {}
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != "#")
            if fields.get("Types", "").strip() == "deb" and "URIs" in fields:
                for suite in fields.get("Suites", "").split():
                    found.setdefault(suite, fields["URIs"].split()[0])
    sources_list = Path("/etc/apt/sources.list")
    for line in sources_list.read_text().splitlines() if sources_list.exists() else []:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb":
            found.setdefault(parts[2], parts[1])
    return found


def mirror(suite: str) -> str:
    uri = os.environ.get("SYNCHRO_DEBIAN_MIRROR") if suite == SUITE else None
    uri = uri or apt_sources().get(suite)
    if not uri:
        raise SystemExit(f"no Debian archive for {suite} in this machine's apt sources: set SYNCHRO_DEBIAN_MIRROR")
    return uri


FORMAT = "3"  # bump to rebuild every image after changing how images are assembled

PAUSE_C = r"""
/* The pod sandbox's init: hold the namespaces, reap orphans, exit on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = quit;
    sigaction(SIGINT, &sa, 0);
    sigaction(SIGTERM, &sa, 0);
    sa.sa_handler = reap;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, 0);
    for (;;) pause();
}
"""

REDIS_CONF = """\
# synchro.local/redis default config; the operator mounts its own over this file.
bind 0.0.0.0
protected-mode no
port 6379
daemonize no
supervised no
logfile ""
dir /data
save ""
appendonly no
"""

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Image:
    ref: str  # e.g. synchro.local/redis:7
    packages: tuple[str, ...] = ()  # Debian packages over the minbase root filesystem; none: a scratch image
    config: dict[str, str] = field(default_factory=dict)  # umoci config flags, without the --config. prefix
    env: tuple[str, ...] = ()
    inputs: Callable[[], list[str]] = lambda: []  # strings whose change must rebuild the image
    customize: Callable[[Path], None] = lambda rootfs: None  # adds the image's own files to rootfs

    @property
    def name(self) -> str:
        return self.ref.split("/")[-1].split(":")[0]

    def key(self) -> str:
        h = hashlib.sha256()
        for part in (
            FORMAT,
            SUITE,
            mirror(SUITE),
            self.ref,
            *self.packages,
            json.dumps(self.config, sort_keys=True),
            *self.env,
            *self.inputs(),
            self.prepared_key(),
        ):
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:16]

    def prepared_key(self) -> str:
        h = hashlib.sha256()
        for part in (FORMAT, SUITE, mirror(SUITE), *self.packages):
            h.update(part.encode() + b"\0")
        return h.hexdigest()[:16]

    def archive(self) -> Path:
        return IMAGES / f"{self.name}-{self.key()}.tar"


def run(*argv: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], check=True, text=True, **kw)  # type: ignore[call-overload]


# ---------------------------------------------------------------- image contents


def pause_files(rootfs: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "pause.c"
        src.write_text(PAUSE_C)
        run("gcc", "-static", "-Os", "-s", "-o", rootfs / "pause", src)


def coredns_binary() -> Path:
    sys.path.insert(0, str(ROOT / "hack"))
    import build

    c = next(c for c in build.components() if c.name == "coredns")
    if not build.is_built(c):
        build.build(c)
    return build.bin_dir(c) / "coredns"


def coredns_version() -> str:
    sys.path.insert(0, str(ROOT / "hack"))
    import build

    return build.read_versions()["COREDNS_VERSION"]


def coredns_files(rootfs: Path) -> None:
    shutil.copy2(coredns_binary(), rootfs / "coredns")


def redis_files(rootfs: Path) -> None:
    # The operator runs `redis-server /etc/redis/redis.conf` as uid 999 with a read-only root: give the
    # redis user uid/gid 999 (re-owning what the package made), and keep state under /data.
    old: dict[str, int] = {}
    for db in ("passwd", "group"):
        path = rootfs / "etc" / db
        lines = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "redis":
                old[db] = int(fields[2])
                fields[2] = "999"
                if db == "passwd":
                    fields[3] = "999"
            lines.append(":".join(fields))
        path.write_text("\n".join(lines) + "\n")
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for entry in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            st = os.lstat(entry)
            if st.st_uid == old.get("passwd") or st.st_gid == old.get("group"):
                uid = 999 if st.st_uid == old.get("passwd") else st.st_uid
                gid = 999 if st.st_gid == old.get("group") else st.st_gid
                os.lchown(entry, uid, gid)
    conf = rootfs / "etc" / "redis" / "redis.conf"
    conf.write_text(REDIS_CONF)
    conf.chmod(0o644)
    for d in ("data", "var/lib/redis", "var/log/redis", "run/redis"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
        os.chown(rootfs / d, 999, 999)
    (rootfs / "data").chmod(0o775)


def operator_version() -> str:
    for line in (ROOT / "operator" / "synchro" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip("\"'")
    raise SystemExit("no __version__ in operator/synchro/__init__.py")


# The Dockerfile's base: Debian's Python (bookworm: 3.11, as the Dockerfile's default upstream base).
PYTHON = Image(
    ref="synchro.local/python:3.11-bookworm",
    packages=("python3", "python3-venv", "python-is-python3"),
    config={"cmd": "python3"},
    env=(PATH_ENV,),
)


def images() -> dict[str, Image | dockerfile.DockerfileImage]:
    return {
        i.name: i
        for i in (
            Image(
                ref="synchro.local/pause:3.10",
                config={"entrypoint": "/pause", "user": "65535:65535"},
                inputs=lambda: [PAUSE_C],
                customize=pause_files,
            ),
            Image(
                ref=f"synchro.local/coredns:{coredns_version()}",
                config={"entrypoint": "/coredns"},
                inputs=lambda: [hashlib.sha256(coredns_binary().read_bytes()).hexdigest()],
                customize=coredns_files,
            ),
            Image(
                ref="synchro.local/redis:7",
                packages=("redis-server",),
                config={
                    "cmd": "redis-server\n/etc/redis/redis.conf",
                    "user": "999:999",
                    "workingdir": "/data",
                    "exposedports": "6379/tcp",
                },
                env=(PATH_ENV,),
                inputs=lambda: [REDIS_CONF],
                customize=redis_files,
            ),
            Image(
                ref="synchro.local/test:1",
                packages=("redis-tools", "curl", "dnsutils", "iproute2"),
                config={"cmd": "/bin/sh"},
                env=(PATH_ENV,),
            ),
            PYTHON,
            dockerfile.DockerfileImage(
                f"synchro.local/operator:{operator_version()}", PYTHON.key, lambda: build_image(PYTHON), CACHE
            ),
        )
    }


# ---------------------------------------------------------------- root filesystems


def base_rootfs() -> Path:
    """A debootstrap'ed minbase Debian, cached; images copy it."""
    key = hashlib.sha256(f"{FORMAT}\0{SUITE}\0{mirror(SUITE)}".encode()).hexdigest()[:16]
    base = IMAGES / f"rootfs-{SUITE}-{key}"
    if (base / ".complete").exists():
        return base
    partial = base.with_name(base.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    started = time.monotonic()
    archive = mirror(SUITE)
    print(f"debootstrap {SUITE} (minbase) from {archive}", flush=True)
    run("debootstrap", "--variant=minbase", SUITE, partial, archive, stdout=subprocess.DEVNULL)
    security = apt_sources().get(f"{SUITE}-security")
    (partial / "etc" / "apt" / "sources.list").write_text(
        f"deb {archive} {SUITE} main\ndeb {archive} {SUITE}-updates main\n"
        + (f"deb {security} {SUITE}-security main\n" if security else "")
    )
    # Never start services from maintainer scripts; keep images small.
    policy = partial / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (partial / "etc" / "apt" / "apt.conf.d" / "90synchro").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
    )
    (partial / "etc" / "dpkg" / "dpkg.cfg.d" / "90synchro").write_text(
        "path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n"
    )
    chroot(partial, "apt-get update -qq")
    clean_rootfs(partial, keep_lists=True)
    (partial / ".complete").write_text("")
    partial.rename(base)
    print(f"debootstrap done in {time.monotonic() - started:.0f}s", flush=True)
    return base


def chroot(rootfs: Path, script: str) -> None:
    """Run a shell script in rootfs with /proc and the host's resolv.conf, undoing both afterwards."""
    resolv = rootfs / "etc" / "resolv.conf"
    saved = resolv.read_bytes() if resolv.is_file() and not resolv.is_symlink() else None
    resolv.unlink(missing_ok=True)
    shutil.copy2("/etc/resolv.conf", resolv)
    run("mount", "-t", "proc", "proc", rootfs / "proc")
    try:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LC_ALL": "C",
            "HOME": "/root",
        }
        run("chroot", rootfs, "/bin/sh", "-ec", script, env=env)
    finally:
        run("umount", rootfs / "proc")
        resolv.unlink(missing_ok=True)
        if saved is not None:
            resolv.write_bytes(saved)


def clean_rootfs(rootfs: Path, keep_lists: bool = False) -> None:
    for pattern in (
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/log/*.log",
        "var/log/apt/*",
        "tmp/*",
        "root/.cache",
    ):
        for p in rootfs.glob(pattern):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if not keep_lists:
        for p in (rootfs / "var" / "lib" / "apt" / "lists").glob("*"):
            if p.is_file():
                p.unlink()


# ---------------------------------------------------------------- OCI assembly


def prepared_rootfs(img: Image, base: Path) -> Path:
    """The base with the image's packages installed, cached by what goes into it."""
    prepared = IMAGES / f"rootfs-{img.name}-{img.prepared_key()}"
    if (prepared / ".complete").exists():
        return prepared
    partial = prepared.with_name(prepared.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    run("cp", "-a", base, partial)
    (partial / ".complete").unlink()
    chroot(partial, "apt-get update -qq && apt-get install -y -qq " + " ".join(img.packages) + " >/dev/null")
    clean_rootfs(partial)
    (partial / ".complete").write_text("")
    partial.rename(prepared)
    for stale in IMAGES.glob(f"rootfs-{img.name}-*"):  # one prepared rootfs per image is enough
        if stale != prepared:
            shutil.rmtree(stale)
    return prepared


def umoci(*args: str | Path) -> None:
    run("umoci", *args, stdout=subprocess.DEVNULL)


def build_image(img: Image | dockerfile.DockerfileImage) -> Path:
    out = img.archive()
    if out.exists():
        return out
    IMAGES.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"building {img.ref}", flush=True)
    with tempfile.TemporaryDirectory(dir=IMAGES) as tmp:
        layout = Path(tmp) / "oci"
        if isinstance(img, dockerfile.DockerfileImage):
            img.build(layout)
        else:
            assemble(img, layout, Path(tmp) / "bundle")
        # Name the image for containerd, and say which platform the manifest is for.
        index_path = layout / "index.json"
        index = json.loads(index_path.read_text())
        for m in index["manifests"]:
            m.setdefault("annotations", {})["io.containerd.image.name"] = img.ref
            m["annotations"]["org.opencontainers.image.ref.name"] = img.ref
            m["platform"] = {"architecture": "amd64", "os": "linux"}
        index_path.write_text(json.dumps(index))
        partial = out.with_name(out.name + ".partial")
        run("tar", "-C", layout, "-cf", partial, "oci-layout", "index.json", "blobs")
        partial.rename(out)
    for stale in IMAGES.glob(f"{img.name}-*.tar"):  # keep the newest archive of each image
        if stale != out:
            stale.unlink()
    print(f"built {img.ref} in {time.monotonic() - started:.0f}s -> {out}", flush=True)
    return out


def assemble(img: Image, layout: Path, bundle: Path) -> None:
    """The image as an OCI layout, with umoci: the shared Debian base, the packages, the image's own files."""
    base = base_rootfs() if img.packages else None
    tag = f"{layout}:{img.name}"
    umoci("init", "--layout", layout)
    umoci("new", "--image", tag)
    umoci("unpack", "--image", tag, bundle)
    rootfs = bundle / "rootfs"
    if base is not None:  # layer 1: the shared Debian base; layer 2: its packages (cached)
        prepared = prepared_rootfs(img, base)
        run("cp", "-a", f"{base}/.", rootfs)
        (rootfs / ".complete").unlink()
        umoci("repack", "--refresh-bundle", "--image", tag, bundle)
        shutil.rmtree(rootfs)
        run("cp", "-a", prepared, rootfs)
        (rootfs / ".complete").unlink()
        umoci("repack", "--refresh-bundle", "--image", tag, bundle)
    img.customize(rootfs)  # last layer: the image's own files
    umoci("repack", "--image", tag, bundle)
    flags: list[str] = [
        "config",
        "--image",
        tag,
        "--os",
        "linux",
        "--architecture",
        "amd64",
        "--author",
        "synchro hack/images.py",
        "--clear=config.env",
    ]
    for k, v in img.config.items():
        for item in v.split("\n"):
            flags += [f"--config.{k}", item]
    for e in img.env:
        flags += ["--config.env", e]
    if "cmd" not in img.config:
        flags.append("--clear=config.cmd")
    umoci(*flags)
    umoci("gc", "--layout", layout)


def manifest_digest(archive: Path) -> str:
    index = json.loads(run("tar", "-xOf", archive, "index.json", capture_output=True).stdout)
    return str(index["manifests"][0]["digest"])


def imported(address: str) -> dict[str, str]:
    """ref -> manifest digest of what containerd's k8s.io namespace holds."""
    out = run("ctr", "--address", address, "-n", "k8s.io", "images", "ls", capture_output=True).stdout
    refs = {}
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            refs[parts[0]] = parts[2]
    return refs


def import_images(address: str, names: list[str]) -> None:
    have = imported(address)
    for img in selected(names):
        if img is PYTHON and not names:  # the operator image's build argument; no pod runs it
            continue
        archive = build_image(img)
        if have.get(img.ref) == manifest_digest(archive):
            continue
        run("ctr", "--address", address, "-n", "k8s.io", "images", "import", archive, stdout=subprocess.DEVNULL)
        print(f"imported {img.ref}", flush=True)


def selected(names: list[str]) -> list[Image | dockerfile.DockerfileImage]:
    all_images = images()
    unknown = [n for n in names if n not in all_images]
    if unknown:
        raise SystemExit(f"unknown images {unknown}; known: {sorted(all_images)}")
    return [all_images[n] for n in names] if names else list(all_images.values())


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        raise SystemExit("hack/images.py needs root (debootstrap, chroot, image file ownership)")
    command = argv[0] if argv else "build"
    if command == "build":
        for img in selected(argv[1:]):
            print(f"{img.ref}\t{build_image(img)}")
    elif command == "import":
        if len(argv) < 3 or argv[1] != "--address":
            raise SystemExit("usage: hack/images.py import --address SOCK [name ...]")
        import_images(argv[2], argv[3:])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
