"""One real local cluster per test session, a fresh namespace per test.

The cluster is ours (.cluster/kubeconfig, built by hack/cluster.py): the tests never read
$KUBECONFIG, so they cannot run against somebody else's cluster by accident.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"


@pytest.fixture(scope="session")
def cluster() -> client.ApiClient:
    """Reuse the running local cluster, or bring one up (idempotent)."""
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "up"], check=True)
    return config.new_client_from_config(config_file=str(KUBECONFIG))


@pytest.fixture()
def namespace(cluster: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(cluster)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"synchro.dev/test": "1"})))
    yield name
    core.delete_namespace(name)
