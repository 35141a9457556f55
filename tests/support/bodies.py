"""Minimal valid request bodies, built from an OpenAPI request schema: the required fields
only, each with the smallest value its schema accepts (the first enum value, a value of the
format, a string of the minimum length that matches the pattern, the minimum of a range,
``minItems`` items), plus the reference fields the caller fills with ids of real entities.

Strings carry a counter, so two bodies never share a ``code``."""

from __future__ import annotations

import itertools
import re
from typing import Any

_COUNTER = itertools.count(1)
FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "email": "someone@example.com",
    "url": "https://example.com/hook",
    "uri": "https://example.com/hook",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class BodyBuilder:
    def __init__(self, spec: dict):
        self.schemas = spec["components"]["schemas"]

    def deref(self, schema: Any) -> dict:
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def merged(self, schema: Any) -> dict:
        """One object schema from ``allOf`` parts (properties and required united)."""
        schema = self.deref(schema)
        if "allOf" not in schema:
            return schema
        out: dict = {k: v for k, v in schema.items() if k != "allOf"}
        out["properties"] = dict(schema.get("properties", {}))
        out["required"] = list(schema.get("required", []))
        for part in schema["allOf"]:
            part = self.merged(part)
            for key, value in part.items():
                if key == "properties":
                    out["properties"] = {**value, **out["properties"]}
                elif key == "required":
                    out["required"] += value
                else:
                    out.setdefault(key, value)
        return out

    def body(self, schema: Any, given: dict[str, Any] | None = None) -> dict:
        """The required fields of ``schema``, with ``given`` (e.g. reference ids) on top."""
        value = self.value(schema)
        return {**(value if isinstance(value, dict) else {}), **(given or {})}

    def value(self, schema: Any, depth: int = 0) -> Any:
        schema = self.merged(schema)
        for keyword in ("oneOf", "anyOf"):
            if keyword in schema:
                return self.value({**{k: v for k, v in schema.items() if k != keyword},
                                   "allOf": [schema[keyword][0]]}, depth)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        if kind == "object" or kind is None:
            properties = schema.get("properties", {})
            return {name: self.value(properties.get(name, {}), depth + 1)
                    for name in dict.fromkeys(schema.get("required", [])) if depth < 8}
        if kind == "array":
            count = max(schema.get("minItems", 0), 1 if depth == 0 else schema.get("minItems", 0))
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(count)]
        if kind == "boolean":
            return True
        if kind in ("integer", "number"):
            return self.number(schema)
        return self.string(schema)

    @staticmethod
    def number(schema: dict) -> int | float:
        value = schema.get("minimum", 1)
        if schema.get("exclusiveMinimum") is True or (
                "minimum" not in schema and isinstance(schema.get("exclusiveMinimum"), (int, float))):
            value = (schema["minimum"] if "minimum" in schema else schema["exclusiveMinimum"]) + 1
        if "maximum" in schema and value > schema["maximum"]:
            value = schema["maximum"]
        if "multipleOf" in schema:
            value = schema["multipleOf"]
        return int(value) if schema.get("type") == "integer" else value

    @staticmethod
    def string(schema: dict) -> str:
        if schema.get("format") in FORMATS:
            return FORMATS[schema["format"]]
        low, high = schema.get("minLength", 1), schema.get("maxLength", 80)
        n = next(_COUNTER)
        for candidate in (f"v{n}", f"value_{n}", f"a{n}", "x"):
            if len(candidate) < low:
                candidate = candidate + "x" * (low - len(candidate))
            candidate = candidate[:high] if len(candidate) > high else candidate
            if "pattern" not in schema or re.search(schema["pattern"], candidate):
                return candidate
        raise ValueError(f"no simple string fits {schema}")
