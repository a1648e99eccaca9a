"""Marshmallow fields for JSON unions the contract uses (oneOf by a tag, string-or-array).

marshmallow has no oneOf; these dispatch on the value and render the same shape in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def component_name(schema: type[Schema]) -> str:
    name = schema.__name__
    return name[: -len("Schema")] if name.endswith("Schema") else name


class TaggedUnion(fields.Field):
    """An object whose `tag` property picks the schema: `{"role": "user", …}` → UserMessage."""

    def __init__(self, tag: str, choices: Mapping[str, type[Schema]], **kwargs: Any) -> None:
        self.tag = tag
        self.choices = dict(choices)
        self._instances: dict[str, Schema] = {}
        variants = list(dict.fromkeys(self.choices.values()))
        one_of: dict[str, Any] = {"oneOf": [ref(component_name(s)) for s in variants]}
        if kwargs.get("allow_none"):
            one_of = {"anyOf": [one_of, {"type": "null"}]}
        kwargs.setdefault("metadata", {}).update(one_of)
        super().__init__(**kwargs)

    @property
    def variants(self) -> list[type[Schema]]:
        return list(dict.fromkeys(self.choices.values()))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError("Must be an object.")
        tag = value.get(self.tag)
        if not isinstance(tag, str) or tag not in self.choices:
            allowed = ", ".join(repr(t) for t in self.choices)
            raise ValidationError({self.tag: [f"Must be one of: {allowed}."]})
        schema_cls = self.choices[tag]
        schema = self._instances.get(tag)
        if schema is None:
            schema = self._instances[tag] = schema_cls()
        try:
            return schema.load(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class StringOr(fields.Field):
    """A string, or the given list field (e.g. an array of content parts)."""

    def __init__(self, alternative: fields.List, **kwargs: Any) -> None:
        self.alternative = alternative
        any_of: list[dict[str, Any]] = [{"type": "string"},
                                        {"type": "array", **_items(alternative)}]
        if kwargs.get("allow_none"):
            any_of.append({"type": "null"})
        kwargs.setdefault("metadata", {})["anyOf"] = any_of
        super().__init__(**kwargs)

    def _bind_to_schema(self, field_name: str, parent: Any) -> None:
        super()._bind_to_schema(field_name, parent)
        self.alternative._bind_to_schema(field_name, parent)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return self.alternative.deserialize(value, attr, data, **kwargs)
        raise ValidationError("Must be a string or an array.")


def _items(list_field: fields.List) -> dict[str, Any]:
    inner = list_field.inner
    if isinstance(inner, TaggedUnion):
        return {"items": {"oneOf": [ref(component_name(s)) for s in inner.variants]}}
    if isinstance(inner, fields.Nested):
        return {"items": ref(component_name(inner.nested))}  # type: ignore[arg-type]
    return {"items": {"type": "string"}}
