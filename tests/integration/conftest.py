"""One real local cluster per test session, a fresh namespace per test.

The cluster is ours (.cluster/kubeconfig, built by hack/cluster.py): the tests never read
$KUBECONFIG, so they cannot run against somebody else's cluster by accident.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shutil
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import dump
import pytest
from kit import CACHE, KUBECTL, REAL_NODE_TOLERATION, Env, RedisServer, cluster_cmd, fresh_namespace
from kubernetes import client, config
from leaks import LeakWatch

from logcheck import denied_lines

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
OPERATOR_LOG = ROOT / ".cluster" / "logs" / "operator.log"


LOG_FROM = pytest.StashKey[int]()
SESSION = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def namespace_of(item: pytest.Item) -> str | None:
    funcargs = getattr(item, "funcargs", {})
    for value in funcargs.values():
        if isinstance(value, Env):
            return value.ns
    found = funcargs.get("namespace")
    return found if isinstance(found, str) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test's namespace objects and the operator's log since the test began, into its own folder under
    .cluster/dumps/<session>/ (dump.py); the report names it. A passing test costs one stat of the log."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "setup":
        item.stash[LOG_FROM] = dump.log_size()
    elif report.when == "call" and report.failed and (namespace := namespace_of(item)):
        folder = dump.write(dump.FOLDER / SESSION / item.name[:60], namespace, item.stash.get(LOG_FROM, 0))
        report.sections.append(("namespace dump", f"namespace {namespace} and the operator's log: {folder}"))


@pytest.fixture(scope="session")
def cluster() -> client.ApiClient:
    """Reuse the running local cluster, or bring one up (idempotent)."""
    subprocess.run([sys.executable, str(ROOT / "hack" / "cluster.py"), "up"], check=True)
    return config.new_client_from_config(config_file=str(KUBECONFIG))


@pytest.fixture(scope="session", autouse=True)
def no_secret_is_visible(cluster: client.ApiClient) -> Iterator[LeakWatch]:
    """For the whole session, every password any Secret held must appear in no readable object and no log line."""
    watcher = LeakWatch(cluster).start()
    yield watcher
    watcher.stop()
    assert watcher.readable, "the leak watch saw no object at all: it is not watching"
    leaks = watcher.leaks([OPERATOR_LOG])
    assert not leaks, f"passwords in plain text ({len(leaks)}):\n" + "\n".join(sorted(leaks)[:20])


@pytest.fixture()
def namespace(cluster: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(cluster) as name:
        yield name


@pytest.fixture(scope="session")
def synccluster_crd(cluster: client.ApiClient) -> None:
    """The SyncCluster CRD of this checkout (crds/), applied and established."""
    subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}",
            "apply",
            "--server-side",
            "-f",
            str(ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            KUBECTL,
            f"--kubeconfig={ROOT / '.cluster' / 'kubeconfig'}",
            "wait",
            "--for",
            "condition=Established",
            "crd/syncclusters.synchro.dev",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def operator(cluster: client.ApiClient, synccluster_crd: None) -> Iterator[None]:
    """The CRD applied and the operator running on the host, authenticated as the Helm chart's ServiceAccount
    with only the chart's RBAC: every test that uses it also proves the chart grants enough. At the end, a
    single Forbidden answer in the operator's log fails the session."""
    cluster_cmd("stop-operator")  # one left by `make demo` runs as cluster admin
    start = OPERATOR_LOG.stat().st_size if OPERATOR_LOG.exists() else 0
    cluster_cmd("start-operator", "--as-service-account")
    yield
    cluster_cmd("stop-operator")
    with OPERATOR_LOG.open(errors="replace") as log:
        log.seek(start)
        lines = log.readlines()
    found = outside_apiserver_starts(lines)
    denied = denied_lines(found)
    assert not denied, "the operator was denied by the chart's RBAC:\n" + "".join(denied[:20])
    # A controller loop must stop when its SyncCluster is deleted, not be cancelled by kopf. (At operator exit a
    # pass waiting on an unreachable Redis may outlast the grace; that cancellation is harmless.)
    exiting = next((i for i, line in enumerate(lines) if "Signal SIGTERM is received" in line), len(lines))
    cancelled = [line for line in lines[:exiting] if "is cancelled. Will escalate" in line]
    assert not cancelled, "controller loops did not stop when asked:\n" + "".join(cancelled[:20])


APISERVER_LOG = ROOT / ".cluster" / "logs" / "kube-apiserver.log"
RBAC_SYNC_S = 15  # a restarted kube-apiserver answers 403 to requests that come before its RBAC caches are synced


def outside_apiserver_starts(lines: list[str]) -> list[str]:
    """The operator's log lines but those written within RBAC_SYNC_S of a kube-apiserver start (klog's
    `] Version: v` line, whose stamp has no year: the log line's is used). A traceback's lines go with the
    stamped line they follow."""
    with APISERVER_LOG.open(errors="replace") as log:
        starts = [f"{s[1:5]} {s[6:14]}" for s in log if "] Version: v" in s]
    kept, when = [], None
    for line in lines:
        with contextlib.suppress(ValueError):
            when = datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
        near = when is not None and any(
            0
            <= (when - datetime.datetime.strptime(f"{when.year}{s}", "%Y%m%d %H:%M:%S")).total_seconds()
            <= RBAC_SYNC_S
            for s in starts
        )
        if not near:
            kept.append(line)
    return kept


@pytest.fixture()
def env(cluster: client.ApiClient, namespace: str, operator: None) -> Env:
    return Env(cluster, namespace)


@pytest.fixture()
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_node(cluster: client.ApiClient) -> str:
    nodes = client.CoreV1Api(cluster).list_node(label_selector="synchro.dev/node=real").items
    for node in nodes:
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or []):
            return str(node.metadata.name)
    error = ROOT / ".cluster" / "realnode-error"
    why = f"; it failed to come up: {error.read_text().strip()}" if error.exists() else ""
    pytest.skip(
        "no Ready node labelled synchro.dev/node=real: start one with `make cluster-up NODE=real` "
        f"(docs/real-node.md){why}"
    )


@pytest.fixture()
def real_env(cluster: client.ApiClient, operator: None, real_node: str) -> Iterator[Env]:
    """A namespace whose every pod lands on the real node, the operator's managed Redis included."""
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": "synchro.dev/node=real",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([REAL_NODE_TOLERATION]),
    }
    with fresh_namespace(cluster, annotations) as name:
        yield Env(cluster, name)


@pytest.fixture(scope="session")
def hocuspocus_app() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are needed for the Hocuspocus check")
    app = ROOT / "apps" / "hocuspocus"
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", "--cache", str(CACHE / "npm")],
        cwd=app,
        check=True,
        capture_output=True,
    )
    return app
