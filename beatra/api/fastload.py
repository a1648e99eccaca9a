"""A quicker `Schema.load` for request schemas on the hot path, with marshmallow still the
schema of record.

marshmallow's own loop around the fields (a closure, an error store and a try block per
declared field, hook and generator checks per load, once more for every nested object) costs
more than the fields' checks themselves: loading a two-message chat request was ~15 % of the
CPU an in-process chat call takes, and it grows with every message. `FastLoading.load` runs
the same field checks (each field's public `deserialize`: type, required, null, validators,
nested schemas) and the schema's `validates_schema` hooks, in a plain loop. It returns only
what marshmallow would return; at the first problem of any kind it stops and lets marshmallow
load the data from the start, so every error (and its messages) is marshmallow's own.

A schema takes the quick path only when its set-up has nothing the loop does not reproduce
(no pre/post-load hooks, no `@validates` field hooks, no dotted attributes); otherwise, and for
`many`, `partial` or an explicit `unknown`, it is plain marshmallow.
tests/unit/test_fastload.py checks the two agree on valid and on mutated chat requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.types import UnknownOption
from marshmallow.utils import missing

_Plan = Callable[[Any], dict[str, Any]]


class _Fallback(Exception):
    """Something the quick loop does not decide itself: marshmallow loads the data."""


class FastLoading(Schema):
    """A Schema whose `load` takes the quick path when it can (see the module doc)."""

    quick = True  # tests turn it off to compare with marshmallow alone

    def load(self, data: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
             many: bool | None = None, partial: Any = None,
             unknown: UnknownOption | None = None) -> Any:
        if FastLoading.quick and many is None and partial is None and unknown is None:
            plan = self.__dict__.get("_quick_plan", missing)
            if plan is missing:
                plan = self.__dict__["_quick_plan"] = _plan(self)
            if plan is not None:
                try:
                    return plan(data)
                except (ValidationError, _Fallback):
                    pass  # marshmallow reports it
        return super().load(data, many=many, partial=partial, unknown=unknown)


def _plan(schema: Schema) -> _Plan | None:
    """The quick loop for `schema`, or None when its set-up needs marshmallow's own."""
    hooks = schema._hooks  # marshmallow's registry of the schema's decorated methods
    if schema.many or schema.partial or hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES]:
        return None
    unknown = schema.unknown
    if unknown not in (INCLUDE, EXCLUDE, RAISE):
        return None
    validators = []
    for attr_name, pass_collection, options in hooks[VALIDATES_SCHEMA]:
        if pass_collection or options.get("pass_original"):
            return None
        validators.append(getattr(schema, attr_name))
    fields = []
    for name, field in schema.load_fields.items():
        if field.attribute not in (None, name) or "." in name:
            return None
        fields.append((name, field.data_key or name, field, field.required, field.load_default))
    declared = frozenset(data_key for _, data_key, _, _, _ in fields)

    def load(data: Any) -> dict[str, Any]:
        if type(data) is not dict:
            raise _Fallback
        out: dict[str, Any] = {}
        present = 0
        for name, data_key, field, required, default in fields:
            raw = data.get(data_key, missing)
            if raw is missing:
                if required:
                    raise _Fallback
                if default is not missing:
                    out[name] = default() if callable(default) else default
                continue
            present += 1
            value = field.deserialize(raw, data_key, data)
            if value is not missing:
                out[name] = value
        if len(data) > present and unknown != EXCLUDE:  # keys no field declares
            if unknown == RAISE:
                raise _Fallback
            for key in data:
                if key not in declared:
                    out[key] = data[key]
        for validator in validators:
            validator(out, partial=None, many=False, unknown=unknown)
        return out

    return load
