"""The Helm chart against its sources: the CRD in crds/, the RBAC in manifests/base/, the operator version."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

import synchro

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "synchro"
BASE = ROOT / "manifests" / "base"


def load_chart_crds() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_crds", ROOT / "hack" / "chart_crds.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chart_crds = load_chart_crds()


def test_chart_crds_have_not_drifted_from_crds_dir() -> None:
    assert chart_crds.drift() == [], "run: python3 hack/chart_crds.py write"


@pytest.mark.parametrize("source", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_chart_crd_carries_the_source_byte_for_byte(source: Path) -> None:
    template = (chart_crds.TARGET / source.name).read_text()
    assert chart_crds.strip(source.name, template) == source.read_text()


def test_render_refuses_template_braces() -> None:
    with pytest.raises(ValueError, match="braces"):
        chart_crds.render("x.yaml", "metadata:\n  name: '{{ oops }}'\n")


def helper(name: str) -> Any:
    """A rules block defined in _helpers.tpl, parsed as YAML (it holds no template actions)."""
    text = (CHART / "templates" / "_helpers.tpl").read_text()
    pattern = r'\{\{- define "' + re.escape(name) + r'" -\}\}\n(.*?)\{\{- end -\}\}'
    found = re.search(pattern, text, re.S)
    assert found, f"no define {name} in _helpers.tpl"
    return yaml.safe_load(found.group(1))


def base_rules(kind: str, name: str) -> Any:
    for path in BASE.glob("rbac-*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc["rules"]
    raise AssertionError(f"no {kind} {name} in {BASE}")


@pytest.mark.parametrize(
    ("define", "role"), [("synchro.appRules", "synchro-app"), ("synchro.kopfRules", "synchro-kopf")]
)
def test_chart_rbac_matches_the_kustomize_base(define: str, role: str) -> None:
    assert helper(define) == base_rules("ClusterRole", role)


def test_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == synchro.__version__
    deployment = yaml.safe_load((BASE / "deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    repository = yaml.safe_load((CHART / "values.yaml").read_text())["image"]["repository"]
    assert image == f"{repository}:{synchro.__version__}"


def test_values_schema_describes_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) == set(schema["properties"])


def test_chart_and_kustomize_grant_the_same_lease_rules() -> None:
    docs = yaml.safe_load_all((BASE / "leader-election.yaml").read_text())
    role = next(d for d in docs if d["kind"] == "Role")
    assert helper("synchro.leaderElectionRules") == role["rules"]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
