"""The served OpenAPI document keeps every promise of ../shared/beatra-openapi.yaml.

Operations not built yet are listed in NOT_BUILT: they must be absent from the served document,
and the list can only shrink (serving one of them fails until it is removed from the list).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from beatra.config import PROJECT_DIR

SHARED = PROJECT_DIR.parent / "shared" / "beatra-openapi.yaml"
VENDORED = Path(__file__).resolve().parent.parent / "contract" / "beatra-openapi.yaml"

NOT_BUILT: set[tuple[str, str]] = set()
_LIMITS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern")


@functools.cache
def contract() -> dict[str, Any]:
    """Parsed once per session (~0.1 s a parse, one per operation otherwise); read-only."""
    return yaml.load(VENDORED.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def test_vendored_contract_matches_shared():
    if not SHARED.exists():
        pytest.skip("shared/ not beside this checkout")
    assert SHARED.read_text() == VENDORED.read_text(), "update tests/contract from shared/"


class Normaliser:
    """Reduces a schema to what the contract promises: types, enums, limits, required, shape."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def __call__(self, schema: dict[str, Any], depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if depth > 8:
            return "…"
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            parts = [self(s, depth + 1) for s in alternatives]
            nullable = any(p == {"types": ["null"]} for p in parts)
            parts = [p for p in parts if p != {"types": ["null"]}]
            if len(parts) == 1 and isinstance(parts[0], dict):
                out = dict(parts[0])
                if nullable:
                    out["types"] = sorted({*out.get("types", []), "null"})
                return out
            return {"one_of": sorted(map(repr, parts)), "nullable": nullable}
        out: dict[str, Any] = {}
        types = schema.get("type")
        if types is not None:
            out["types"] = sorted([types] if isinstance(types, str) else types)
        if "const" in schema:
            out["enum"] = [schema["const"]]
        if "enum" in schema:  # a null member just restates nullability
            out["enum"] = sorted(str(e) for e in schema["enum"] if e is not None)
        for key in _LIMITS:
            if key in schema:
                out[key] = float(schema[key]) if key != "pattern" else schema[key]
        if "properties" in schema:
            out["properties"] = {k: self(v, depth + 1) for k, v in schema["properties"].items()}
            out["required"] = sorted(schema.get("required", []))
        if schema.get("additionalProperties") is False:
            out["closed"] = True
        if "items" in schema:
            out["items"] = self(schema["items"], depth + 1)
        return out


@pytest.fixture(scope="module")
def served(make_app_module) -> dict[str, Any]:
    return make_app_module.test_client().get("/openapi.json").get_json()


@pytest.fixture(scope="module")
def make_app_module(tmp_path_factory):
    from beatra import create_app
    from tests.conftest import TEST_CATALOG

    tmp = tmp_path_factory.mktemp("spec")
    return create_app({"database_url": f"sqlite:///{tmp / 'x.db'}",
                       "catalog_path": str(TEST_CATALOG)})


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                yield path, method, op


def test_served_document_is_openapi_31(served):
    assert served["openapi"] == "3.1.0"
    assert served["info"]["version"] == "0.1.0"


@pytest.mark.parametrize(("path", "method", "op"), list(operations(contract())),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_operation_matches_contract(served, path, method, op):
    served_op = served["paths"].get(path, {}).get(method)
    if (path, method) in NOT_BUILT:
        assert served_op is None, f"{method} {path} is served now: remove it from NOT_BUILT"
        return
    assert served_op is not None, f"{method.upper()} {path} missing from the served document"
    assert served_op["operationId"] == op["operationId"]

    want, got = Normaliser(contract()), Normaliser(served)
    # Path-level parameters apply to every operation under the path (OpenAPI semantics).
    declared = [*served["paths"][path].get("parameters", []), *served_op.get("parameters", [])]
    served_params = {(p["name"], p["in"]): p for p in map(got.resolve, declared)}
    for param in map(want.resolve, op.get("parameters", [])):
        key = (param["name"], param["in"])
        assert key in served_params, f"parameter {key} missing"
        assert served_params[key].get("required", False) == param.get("required", False), key
        assert got(served_params[key]["schema"]) == want(param["schema"]), key

    if "requestBody" in op:
        assert "requestBody" in served_op, "request body missing"
        for ctype, media in op["requestBody"]["content"].items():
            served_media = served_op["requestBody"]["content"].get(ctype)
            assert served_media is not None, f"request content type {ctype} missing"
            assert got(served_media["schema"]) == want(media["schema"])

    missing = set(op["responses"]) - set(served_op["responses"])
    assert not missing, f"status codes missing: {sorted(missing)}"
