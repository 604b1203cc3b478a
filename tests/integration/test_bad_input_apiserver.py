"""The first line: the real kube-apiserver refuses every invalid SyncCluster of the catalogue (tests/catalogue.py)
with the words the catalogue expects, and accepts every valid edge case and sample. No operator runs: the CRD
alone answers. Each create is a dry run, so nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kit import GROUP, PLURAL, ROOT, VERSION, fresh_namespace
from kubernetes import client
from kubernetes.client.rest import ApiException

from catalogue import BAD, BASE, GOOD, MANAGED, Row, put
from poll import wait_for
from synchro.api import Msg

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bad_input_ns(cluster: client.ApiClient, synccluster_crd: None) -> Iterator[str]:
    """One namespace for the whole catalogue; the CRD as this checkout generates it is the one served."""
    with fresh_namespace(cluster) as name:
        # An older schema may still answer for a moment after its CRD was updated: wait for a rule of this one.
        newest = Row("newest rule", (MANAGED, put("spec.redis.managed.replicas", 2)), Msg.MANAGED_REPLICAS)
        wait_for(lambda: Msg.MANAGED_REPLICAS in refusal(cluster, name, newest.body()), "the CRD's newest rules", 30)
        yield name


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")


def refusal(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> str:
    """The API server's message for a refused create; empty if it accepted it."""
    try:
        create(api, namespace, body)
    except ApiException as e:
        assert e.status == 422, f"{e.status}: {e.body}"
        return str(json.loads(e.body)["message"])
    return ""


@pytest.mark.parametrize("row", BAD, ids=[r.id for r in BAD])
def test_the_api_server_refuses_each_row_with_its_message(
    cluster: client.ApiClient, bad_input_ns: str, row: Row
) -> None:
    message = refusal(cluster, bad_input_ns, row.body())
    assert message, f"{row.id}: accepted"
    assert row.server in message
    assert not row.at or f"{row.at}: " in message, message


def test_a_url_with_a_password_is_refused_without_echoing_it(cluster: client.ApiClient, bad_input_ns: str) -> None:
    """The CEL rule says "string" where a pattern would quote the value: the refusal holds no password."""
    [row] = [r for r in BAD if r.id == "password in the URL"]
    message = refusal(cluster, bad_input_ns, row.body())
    assert Msg.URL_PASSWORD in message and "s3cret" not in message


@pytest.mark.parametrize("row", GOOD, ids=[r.id for r in GOOD])
def test_the_api_server_accepts_each_valid_edge_case(cluster: client.ApiClient, bad_input_ns: str, row: Row) -> None:
    assert refusal(cluster, bad_input_ns, row.body()) == ""


def test_the_samples_are_accepted(cluster: client.ApiClient, bad_input_ns: str) -> None:
    samples = [
        doc
        for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == BASE["kind"]
    ]
    assert len(samples) >= 7
    for sample in samples:
        assert refusal(cluster, bad_input_ns, sample) == "", sample["metadata"]["name"]
