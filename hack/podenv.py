"""Run a pod's container as a host process, with the env the kubelet would give it.

kwok nodes run no containers, so tests start the processes a pod would run on the host instead, fed with
the env resolved from the live pod spec: literal values, secretKeyRef, fieldRef metadata.name/namespace and one
label or annotation, and $(VAR) references to variables defined earlier in the list, as the kubelet expands them.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PIDS = ROOT / ".cluster" / "pids"
_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' dependent-variable expansion: $(VAR) if VAR is already defined, $$ escapes, others stay."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        m = _REF.match(value, i)
        if m and m.group(1) in defined:
            out.append(defined[m.group(1)])
            i = m.end()
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


_MAP_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


def field_value(meta: Mapping[str, Any], path: str) -> str:
    """A downward-API fieldRef of the pod's metadata: name, namespace, or one label or annotation."""
    if path in ("metadata.name", "metadata.namespace"):
        return str(meta[path.removeprefix("metadata.")])
    m = _MAP_FIELD.fullmatch(path)
    if not m:
        raise KeyError(f"fieldRef {path!r} is not resolved on the host")
    return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))


def resolve_env(pod: Mapping[str, Any], container: str, secret: Callable[[str, str], str]) -> dict[str, str]:
    meta = pod["metadata"]
    spec = next(c for c in pod["spec"]["containers"] if c["name"] == container)
    env: dict[str, str] = {}
    for e in spec.get("env") or []:
        source = e.get("valueFrom")
        if source is None:
            env[e["name"]] = expand(e.get("value", ""), env)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[e["name"]] = secret(ref["name"], ref["key"])
        elif "fieldRef" in source:
            env[e["name"]] = field_value(meta, source["fieldRef"]["fieldPath"])
    return env


def secret_reader(core: Any, namespace: str) -> Callable[[str, str], str]:
    def read(name: str, key: str) -> str:
        return base64.b64decode(core.read_namespaced_secret(name, namespace).data[key]).decode()

    return read


def start_agent(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The synchro-probe sidecar of one pod, as a host process."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "synchro", "probe-agent"], env=full, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def start_recorded_agents(namespace: str, cluster: str) -> list[str]:
    """`make demo` on kwok nodes: a host agent for every live pod of the cluster that has none yet."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(ROOT / ".cluster" / "kubeconfig"))
    core = client.CoreV1Api(api)
    started = []
    for pod in core.list_namespaced_pod(namespace, label_selector=f"synchro.dev/cluster={cluster}").items:
        pid_file = PIDS / f"agent-{namespace}-{pod.metadata.name}.pid"
        if pod.metadata.deletion_timestamp or pid_file.exists():
            continue
        body = api.sanitize_for_serialization(pod)
        env = resolve_env(body, "synchro-probe", secret_reader(core, namespace))
        proc = start_agent(env, ROOT / ".cluster" / "logs" / f"agent-{namespace}-{pod.metadata.name}.log")
        pid_file.write_text(f"{proc.pid}\n")
        started.append(pod.metadata.name)
    return started


def stop_recorded_agents() -> None:
    for pid_file in PIDS.glob("agent-*.pid"):
        pid = int(pid_file.read_text())
        try:
            if b"probe-agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, 15)
        except OSError:
            pass
        pid_file.unlink()


if __name__ == "__main__":
    if sys.argv[1:2] == ["start"]:
        print(" ".join(start_recorded_agents(sys.argv[2], sys.argv[3])))
    elif sys.argv[1:2] == ["stop"]:
        stop_recorded_agents()
    else:
        print("usage: podenv.py start NAMESPACE SYNCCLUSTER | stop", file=sys.stderr)
        sys.exit(2)
