"""What the API server's structural schema guarantees of a SyncCluster's spec, checked in Python: types, enums,
numeric bounds, lengths, item and property counts, required fields. Not the rules (patterns, CEL, unique list
keys): those are what the operator's second line, api.parse, must catch on its own.

The fuzz test (tests/unit/test_fuzz_specs.py) uses it to show its specs are valid by the schema, rather than
assuming so.
"""

from __future__ import annotations

from typing import Any

from synchro import crd

SPEC_SCHEMA: dict[str, Any] = crd.build()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "boolean": bool,
}


def _scalar_errors(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        found.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, int) and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        found.append(f"{path}: {value} out of bounds")
    return found


def errors(schema: dict[str, Any], value: Any, path: str = "spec") -> list[str]:
    """Where `value` breaks the structure `schema` gives it (empty: it is valid by the structural schema)."""
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: {value!r} is neither an integer nor a string"]
        return _scalar_errors(schema, value, path)
    kind = schema.get("type")
    expected = _TYPES.get(kind or "", object)
    if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
        return [f"{path}: {value!r} is not of type {kind}"]
    found = _scalar_errors(schema, value, path)
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{path}: {len(value)} items")
        for i, item in enumerate(value):
            found += errors(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict) and not schema.get("x-kubernetes-preserve-unknown-fields"):
        found += [f"{path}.{k}: Required value" for k in schema.get("required", []) if k not in value]
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                found += errors(properties[key], item, f"{path}.{key}")
            else:
                found.append(f"{path}.{key}: unknown field (the API server would prune it)")
    return found
