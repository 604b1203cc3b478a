"""The second line: api.parse rejects every invalid SyncCluster of the catalogue (tests/catalogue.py) with SpecError,
and the pass turns that into Ready=False, InvalidSpec. The first line, the API server, runs the same catalogue in
tests/integration/test_bad_input_apiserver.py. Also: the CRD's rules and the catalogue cover each other, and every
CEL rule's inputs are bounded, which the API server needs to accept the rule's cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import structural
from catalogue import BAD, GOOD, Row
from synchro import api, conditions, crd
from synchro.conditions import Reason
from synchro.reconcile import decide


def parse(row: Row) -> api.SyncClusterSpec:
    body = row.body()
    return api.parse("ns", body["metadata"]["name"], body["spec"])


@pytest.mark.parametrize("row", BAD, ids=[r.id for r in BAD])
def test_parse_rejects_every_row_and_the_pass_says_invalid_spec(row: Row) -> None:
    with pytest.raises(api.SpecError) as e:
        parse(row)
    assert row.parse_says in str(e.value)
    assert not row.at or str(e.value).startswith(f"{row.at}: ")
    [ready] = decide.invalid(e.value).conditions
    assert (ready.type, ready.status, ready.reason) == (conditions.READY, False, Reason.INVALID_SPEC)
    assert ready.message == str(e.value)


@pytest.mark.parametrize(
    "url", ["redis://app:s3cret@cache:6379/0", "redis://cache:6379/0?password=s3cret", "redis://s3cret:x/0"]
)
def test_invalid_spec_never_quotes_a_url(url: str) -> None:
    """InvalidSpec's message goes into status: a password put in the URL must not travel with it."""
    with pytest.raises(api.SpecError) as e:
        api.parse("ns", "web", {"redis": {"mode": "External", "external": {"url": url}}, "targets": []})
    assert "s3cret" not in str(e.value)


@pytest.mark.parametrize("row", GOOD, ids=[r.id for r in GOOD])
def test_parse_accepts_every_edge_case_that_is_valid(row: Row) -> None:
    parse(row)


def test_the_samples_fit_the_schema_and_parse() -> None:
    samples = [
        doc
        for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == api.KIND
    ]
    assert len(samples) >= 7
    for sample in samples:
        assert structural.errors(structural.SPEC_SCHEMA, sample["spec"]) == []
        api.parse("ns", sample["metadata"]["name"], sample["spec"])


def test_the_catalogue_is_large_and_its_rows_distinct() -> None:
    assert len(BAD) >= 30
    assert len({r.id for r in BAD}) == len(BAD)
    bodies = [repr(r.body()) for r in BAD]
    assert len(set(bodies)) == len(bodies), "two rows make the same SyncCluster"


def rules(schema: Any) -> list[dict[str, str]]:
    """Every x-kubernetes-validations rule in a schema, depth first."""
    if isinstance(schema, dict):
        found = list(schema.get("x-kubernetes-validations", []))
        return found + [r for k, v in schema.items() if k != "x-kubernetes-validations" for r in rules(v)]
    if isinstance(schema, list):
        return [r for v in schema for r in rules(v)]
    return []


ROOT = Path(__file__).resolve().parents[2]
SCHEMA = crd.build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_cel_rule_of_the_crd_is_expected_by_a_row() -> None:
    """A rule no row breaks is a rule nobody showed the API server enforces."""
    expected = {r.server for r in BAD}
    messages = {r["message"] for r in rules(SCHEMA)}
    assert messages - expected == set()


def test_the_words_a_row_expects_name_one_rule_and_one_field() -> None:
    """So that a row fails when its rule goes: no other rule says the same words, and where one rule guards several
    fields (an object name, a duration) the row names its field."""
    found = rules(SCHEMA)
    for row in BAD:
        saying = [r for r in found if row.server in r["message"]]
        assert len({r["rule"] for r in saying}) <= 1, row.id
        assert len(saying) <= 1 or row.at, row.id


def bounded(schema: Any, path: str = "") -> list[str]:
    """Strings without maxLength and arrays without maxItems in the spec: the API server estimates a CEL rule's cost
    from these bounds, and refuses a CRD whose rules could cost too much."""
    if not isinstance(schema, dict):
        return []
    found = []
    if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(path)
    if schema.get("type") == "array" and "maxItems" not in schema:
        found.append(path)
    for key, value in schema.get("properties", {}).items():
        found += bounded(value, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        found += bounded(schema.get(key), f"{path}[]")
    if schema.get("x-kubernetes-int-or-string") and "maxLength" not in schema:
        found.append(path)
    return found


def test_every_string_and_list_of_the_spec_is_bounded() -> None:
    assert bounded(SCHEMA["properties"]["spec"], "spec") == []
