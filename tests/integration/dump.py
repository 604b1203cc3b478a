"""What a failed integration test leaves behind: its namespace's objects and the operator's log since it began.

Written into .cluster/dumps/<session>/<test>/ and named in the failure report: not pytest's basetemp, whose old
folders any other pytest session of the same user deletes. Nothing runs for a passing test. Secrets are listed by
name and version only: their data never goes into a file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kit import KUBECTL, ROOT

KINDS = (
    "syncclusters.synchro.dev,deployments,statefulsets,replicasets,pods,services,endpointslices,configmaps,"
    "networkpolicies,poddisruptionbudgets,persistentvolumeclaims,events"
)
OPERATOR_LOG = ROOT / ".cluster" / "logs" / "operator.log"
FOLDER = ROOT / ".cluster" / "dumps"


def kubectl(*args: str) -> str:
    """kubectl's answer, or its error: a dump is taken when things are broken, the API server included."""
    try:
        result = subprocess.run(
            [KUBECTL, f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}", "--request-timeout=10s", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return f"kubectl {' '.join(args)}: no answer in 30 s\n"
    return result.stdout + (f"\n# kubectl: {result.stderr.strip()}\n" if result.returncode else "")


def log_size() -> int:
    return OPERATOR_LOG.stat().st_size if OPERATOR_LOG.exists() else 0


def write(folder: Path, namespace: str, log_from: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "objects.yaml").write_text(kubectl("get", KINDS, "-n", namespace, "-o", "yaml"))
    columns = "NAME:.metadata.name,VERSION:.metadata.resourceVersion,TYPE:.type"
    (folder / "secrets.txt").write_text(kubectl("get", "secrets", "-n", namespace, "-o", f"custom-columns={columns}"))
    if OPERATOR_LOG.exists():
        with OPERATOR_LOG.open("rb") as log:
            log.seek(log_from if log_from <= os.path.getsize(OPERATOR_LOG) else 0)  # a new log after a restart
            (folder / "operator.log").write_bytes(log.read())
    return folder
