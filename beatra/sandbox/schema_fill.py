"""Placeholder JSON values that satisfy a JSON Schema's structure (tools, json_schema)."""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 8  # recursive schemas ($ref loops, nested objects) must terminate


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}
    return schema


def placeholder(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A value of the schema's type: enum/const first, then a simple value per type.

    Objects get every declared property (a superset of ``required``, still valid when
    ``additionalProperties`` is false); arrays get ``minItems`` items (at least one).
    """
    if not isinstance(schema, dict):
        return "sandbox"
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return placeholder((non_null or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        props = schema.get("properties") or {}
        names = list(props) + [r for r in schema.get("required") or [] if r not in props]
        return {n: placeholder(props.get(n, {"type": "string"}), root, depth + 1) for n in names}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [placeholder(schema.get("items", {}), root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        value: float = 1 if kind == "integer" else 1.5
        if isinstance(schema.get("minimum"), (int, float)):
            value = max(value, schema["minimum"])
        if isinstance(schema.get("maximum"), (int, float)):
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "sandbox"
