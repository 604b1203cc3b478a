"""The operator image from the repository's Dockerfile, built by buildah (Debian's package, no daemon).

hack/images.py caches the result like its other images: ~/.cache/synchro/images/operator-<hash>.tar, where
<hash> covers the Dockerfile, .dockerignore, requirements-runtime.txt, operator/synchro and the base image.
buildah keeps its own layer cache under ~/.cache/synchro/buildah: a change to the operator's sources alone reuses
the pip layer. Its storage is overlay where the kernel mounts it there, else vfs (storage_flags).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the Dockerfile reads; a change to any of them is a new image.
INPUTS = ("Dockerfile", ".dockerignore", "requirements-runtime.txt")
SOURCES = ROOT / "operator" / "synchro"


def input_digest() -> str:
    h = hashlib.sha256()
    files = [ROOT / f for f in INPUTS] + sorted(p for p in SOURCES.rglob("*") if p.is_file())
    for path in files:
        if "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def pip_mounts() -> list[str]:
    """`buildah bud -v` flags that show pip in the build the host's pip configuration, read-only: the config
    files pip reads (global, then the user's, then $PIP_CONFIG_FILE) and the CA bundle they or $PIP_CERT name.
    Mounted, not copied: nothing about the host's index ends up in a layer or in the repository."""
    configs = [Path("/etc/pip.conf"), Path.home() / ".config" / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        configs.append(Path(os.environ["PIP_CONFIG_FILE"]))
    mounts: dict[Path, Path] = {}
    certs = [os.environ.get("PIP_CERT", "")]
    for path in (p for p in configs if p.is_file()):
        mounts[Path("/etc/pip.conf")] = path  # the last one wins, as it does for pip
        parser = configparser.ConfigParser()
        parser.read(path)
        certs += [parser.get(section, "cert", fallback="") for section in parser.sections()]
    for cert in {Path(c) for c in certs if c and Path(c).is_file()}:
        mounts[cert] = cert
    return [f"--volume={host}:{inside}:ro" for inside, host in mounts.items()]


def storage_flags(cache: Path) -> list[str]:
    """buildah's storage: overlay if `buildah info` can set it up under cache, else vfs.

    vfs copies the whole root filesystem for every layer: a change to the operator's sources alone took 60 s to
    build with it here, against 7 s with overlay (and 52 s for overlay's first build, pip included). overlay is
    refused where cache itself is on an overlayfs, as inside many containers; vfs works everywhere. The two keep
    separate roots: a storage root is tied to the driver that made it."""

    def flags(driver: str, root: str) -> list[str]:
        return [f"--root={cache / root}", f"--runroot=/run/synchro-buildah-{driver}", f"--storage-driver={driver}"]

    overlay = flags("overlay", "overlay")
    probe = subprocess.run(["buildah", *overlay, "info"], capture_output=True, text=True)
    if probe.returncode == 0:
        return overlay
    why = (probe.stderr.strip().splitlines() or [f"buildah info exited {probe.returncode}"])[0]
    print(f"buildah: no overlay storage under {cache}, using vfs ({why})", flush=True)
    return flags("vfs", "storage")  # "storage": vfs's root from before overlay was tried, kept as it is


@dataclass(frozen=True)
class DockerfileImage:
    ref: str  # e.g. synchro.local/operator:0.1.0
    base_key: Callable[[], str]  # the base image's cache key
    base_archive: Callable[[], Path]  # builds the base image (an OCI archive) if need be
    cache: Path  # ~/.cache/synchro

    @property
    def name(self) -> str:
        return self.ref.split("/")[-1].split(":")[0]

    def key(self) -> str:
        h = hashlib.sha256(f"{self.ref}\0{self.base_key()}\0{input_digest()}".encode())
        return h.hexdigest()[:16]

    def archive(self) -> Path:
        return self.cache / "images" / f"{self.name}-{self.key()}.tar"

    def build(self, layout: Path) -> None:
        """`buildah bud` the Dockerfile over the base, then write the image as an OCI layout directory."""
        storage = storage_flags(self.cache / "buildah")
        argv = [
            "buildah",
            *storage,
            "bud",
            "--layers",
            "--network=host",  # pip reaches the index as the host does
            *pip_mounts(),
            f"--build-arg=BASE=oci-archive:{self.base_archive()}",
            f"--tag={self.ref}",
            "--file",
            str(ROOT / "Dockerfile"),
            str(ROOT),
        ]
        subprocess.run(argv, check=True)
        push = ["buildah", *storage, "push", "--quiet", self.ref, f"oci:{layout}:{self.ref}"]
        subprocess.run(push, check=True)
