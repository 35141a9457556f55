"""What the spec says about each resource, read once from the OpenAPI document.

An operation that carries ``x-mock`` (``resource``, ``action``, and a ``reason`` for
``unimplemented``) is served by the generic engine. From those operations and their schemas
this module derives, per resource, everything that need not be typed again: the store
collection and its parent scope (the path parameters of the resource key), the label
(``PlanResponse`` -> ``Plan``), the writable fields (the create request's properties, else
the update's, minus ``version`` and read-only ones), the fields the response shows, and the
list filters (the list operation's query parameters). What is particular to a resource is
declared in ``resources/catalog.py``.

Only plain data goes in and out: no web framework here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ORG_PREFIX = "/organizations/{orgId}/"
METHODS = ("get", "put", "post", "delete", "patch")
COLLECTION_ACTIONS = ("list", "create", "retrieve", "update", "delete")
SINGLETON_ACTIONS = ("read", "replace")
ACTIONS = COLLECTION_ACTIONS + SINGLETON_ACTIONS + ("unimplemented",)
PAGING_PARAMETERS = ("pageSize", "nextToken")
AUDIT_FIELDS = ("dtCreated", "dtLastModified", "createdBy", "lastModifiedBy")
_PARAMETER = re.compile(r"\{([^}]+)\}")


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict:
    import yaml

    with open(path, encoding="utf-8") as handle:
        # libyaml's loader when present: the pure-Python one costs most of a second.
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_spec(path: str | Path | None = None) -> dict:
    """The OpenAPI document at ``path`` (default: the m3ter.yaml the package ships), parsed
    once per process and file version. Callers must not change it."""
    if path is None:
        from mockserver.resources import spec_path

        path = spec_path("m3ter.yaml")
    path = Path(path)
    return _load(str(path.resolve()), path.stat().st_mtime)


# -- schemas ---------------------------------------------------------------------------

class Schemas:
    """Resolves ``$ref``s into ``#/components/schemas`` and flattens ``allOf`` (and the
    branches of ``oneOf``/``anyOf``) into one property map."""

    def __init__(self, spec: dict):
        self._schemas = spec.get("components", {}).get("schemas", {})

    def deref(self, schema: Any) -> dict:
        seen = set()
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                break
            seen.add(ref)
            schema = self._schemas.get(ref.rsplit("/", 1)[-1], {})
        return schema if isinstance(schema, dict) else {}

    @staticmethod
    def name_of(schema: Any) -> str | None:
        if isinstance(schema, dict) and "$ref" in schema:
            return schema["$ref"].rsplit("/", 1)[-1]
        return None

    def flatten(self, schema: Any, _depth: int = 0) -> tuple[dict[str, dict], set[str]]:
        """(properties, required) of an object schema, through ``$ref`` and composition."""
        schema = self.deref(schema)
        properties: dict[str, dict] = {}
        required: set[str] = set()
        if _depth > 20:
            return properties, required
        for part in schema.get("allOf", ()):
            more, needed = self.flatten(part, _depth + 1)
            properties.update(more)
            required |= needed
        for keyword in ("oneOf", "anyOf"):
            for part in schema.get(keyword, ()):
                more, _ = self.flatten(part, _depth + 1)
                for name, prop in more.items():
                    properties.setdefault(name, prop)
        properties.update(schema.get("properties", {}))
        required |= set(schema.get("required", ()))
        return properties, required

    def type_of(self, schema: Any) -> str | None:
        schema = self.deref(schema)
        if "type" in schema:
            return schema["type"]
        for part in schema.get("allOf", ()):
            found = self.type_of(part)
            if found:
                return found
        return None


# -- operations ------------------------------------------------------------------------

@dataclass(frozen=True)
class QueryParameter:
    name: str
    is_array: bool
    type: str | None


@dataclass(frozen=True)
class Operation:
    """One operation served from its ``x-mock``."""

    method: str            # GET, POST...
    path: str              # the full path template
    operation_id: str
    action: str
    resource: str | None
    reason: str | None
    path_parameters: tuple[str, ...]
    query_parameters: tuple[QueryParameter, ...]
    has_body: bool
    request_schema: Any = None
    response_schema: Any = None


def _parameters(spec: dict, path_item: dict, op: dict) -> list[dict]:
    """Path-level and operation-level parameters (the latter win), refs resolved."""
    shared = spec.get("components", {}).get("parameters", {})
    merged: dict[tuple[str, str], dict] = {}
    for parameter in list(path_item.get("parameters", ())) + list(op.get("parameters", ())):
        if "$ref" in parameter:
            parameter = shared.get(parameter["$ref"].rsplit("/", 1)[-1], {})
        if "name" in parameter:
            merged[(parameter["in"], parameter["name"])] = parameter
    return list(merged.values())


def _json_schema(content_holder: dict | None) -> Any:
    if not content_holder:
        return None
    for media, body in content_holder.get("content", {}).items():
        if "json" in media:
            return body.get("schema")
    return None


def _success_schema(spec: dict, op: dict) -> Any:
    responses = spec.get("components", {}).get("responses", {})
    for status in ("200", "201", "2XX", "default"):
        response = op.get("responses", {}).get(status)
        if response is None:
            continue
        if "$ref" in response:
            response = responses.get(response["$ref"].rsplit("/", 1)[-1], {})
        return _json_schema(response)
    return None


def mock_operations(spec: dict) -> Iterator[Operation]:
    """Every operation of the document that carries ``x-mock``."""
    schemas = Schemas(spec)
    for path, path_item in spec.get("paths", {}).items():
        for method, op in path_item.items():
            if method not in METHODS or "x-mock" not in op:
                continue
            mock = op["x-mock"]
            action = mock.get("action")
            if action not in ACTIONS:
                raise ValueError(f"{method.upper()} {path}: x-mock action {action!r} is not one of {ACTIONS}")
            if action != "unimplemented" and not mock.get("resource"):
                raise ValueError(f"{method.upper()} {path}: x-mock action {action!r} needs a resource")
            parameters = _parameters(spec, path_item, op)
            query = tuple(
                QueryParameter(p["name"], schemas.type_of(p.get("schema", {})) == "array",
                               schemas.type_of(p.get("schema", {})))
                for p in parameters if p["in"] == "query")
            yield Operation(
                method=method.upper(), path=path, operation_id=op.get("operationId", ""), action=action,
                resource=mock.get("resource"), reason=mock.get("reason"),
                path_parameters=tuple(p["name"] for p in parameters if p["in"] == "path"),
                query_parameters=query,
                has_body="requestBody" in op,
                request_schema=_json_schema(op.get("requestBody")),
                response_schema=_success_schema(spec, op),
            )


# -- resources -------------------------------------------------------------------------

@dataclass(frozen=True)
class FilterRule:
    """How one list query parameter selects entities.

    ``kind``: ``ids`` (candidate ids), ``equal``/``in`` (the field equals the value / one of
    the values), ``from``/``before`` (the field is on or after / before the value: the
    ``<field>Start``/``<field>End`` pairs), ``on_date`` (``startDate`` <= value and, when
    the entity has one, value < ``endDate``) or ``ignored`` (a display option, or a
    parameter the mock accepts without filtering on it)."""

    parameter: str
    kind: str
    field: str | None = None
    is_array: bool = False
    boolean: bool = False


@dataclass
class Shape:
    key: str
    singleton: bool
    scope: tuple[str, ...]                      # the path parameters in the key, in order
    operations: dict[str, Operation] = field(default_factory=dict)
    label: str = ""
    writable: tuple[str, ...] = ()
    response_fields: frozenset[str] = frozenset()
    response_required: frozenset[str] = frozenset()
    response_defaults: dict[str, Any] = field(default_factory=dict)  # request's and response's `default`s
    filters: dict[str, FilterRule] = field(default_factory=dict)

    def collection(self, scope_values: dict[str, str]) -> str:
        """The store collection: the key with the parent ids filled in."""
        return fill(self.key, scope_values)


def fill(template: str, values: dict[str, str]) -> str:
    return _PARAMETER.sub(lambda m: values[m.group(1)], template)


@functools.lru_cache(maxsize=None)
def template_pattern(template: str) -> re.Pattern:
    """Matches the collection names a nested key's template gives (one segment per parameter)."""
    parts = _PARAMETER.split(template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts)))


def scope_of(key: str) -> tuple[str, ...]:
    return tuple(_PARAMETER.findall(key))


def derive_shapes(spec: dict) -> dict[str, Shape]:
    """resource key -> its Shape, for every resource an ``x-mock`` names."""
    schemas = Schemas(spec)
    shapes: dict[str, Shape] = {}
    for op in mock_operations(spec):
        if op.resource is None or op.action == "unimplemented":
            continue
        shape = shapes.get(op.resource)
        if shape is None:
            shape = shapes[op.resource] = Shape(
                key=op.resource, singleton=op.action in SINGLETON_ACTIONS, scope=scope_of(op.resource))
        if (op.action in SINGLETON_ACTIONS) != shape.singleton:
            raise ValueError(f"resource {op.resource!r} mixes singleton and collection actions")
        if op.action in shape.operations:
            raise ValueError(f"resource {op.resource!r} has two {op.action!r} operations")
        shape.operations[op.action] = op
    for shape in shapes.values():
        _complete(shape, schemas)
    return shapes


def _entity_schema(shape: Shape, schemas: Schemas) -> Any:
    """The response schema of one entity."""
    for action in ("retrieve", "read", "create", "update", "replace", "delete"):
        op = shape.operations.get(action)
        if op is not None and op.response_schema is not None:
            return op.response_schema
    listing = shape.operations.get("list")
    if listing is not None and listing.response_schema is not None:
        properties, _ = schemas.flatten(listing.response_schema)
        data = schemas.deref(properties.get("data", {}))
        if "items" in data:
            return data["items"]
    return None


def _complete(shape: Shape, schemas: Schemas) -> None:
    entity = _entity_schema(shape, schemas)
    name = schemas.name_of(entity)
    if name:
        shape.label = name[:-len("Response")] if name.endswith("Response") and name != "Response" else name
    else:
        last = [part for part in shape.key.split("/") if not part.startswith("{")][-1]
        shape.label = last[:1].upper() + last[1:]
    properties, required = schemas.flatten(entity) if entity is not None else ({}, set())
    shape.response_fields = frozenset(properties)
    shape.response_required = frozenset(required)
    shape.response_defaults = {
        k: schemas.deref(v)["default"] for k, v in properties.items() if "default" in schemas.deref(v)}
    for action in ("create", "update", "replace"):
        op = shape.operations.get(action)
        if op is not None and op.request_schema is not None:
            request, _ = schemas.flatten(op.request_schema)
            shape.writable = tuple(
                k for k, v in request.items()
                if k != "version" and not schemas.deref(v).get("readOnly"))
            # A singleton's defaults: the request's, then the response's.
            shape.response_defaults = {
                **{k: schemas.deref(v)["default"] for k, v in request.items()
                   if k in shape.response_fields and "default" in schemas.deref(v)},
                **shape.response_defaults}
            break
    listing = shape.operations.get("list")
    if listing is not None:
        shape.filters = {
            q.name: filter_rule(q, shape.response_fields)
            for q in listing.query_parameters if q.name not in PAGING_PARAMETERS}


def filter_rule(parameter: QueryParameter, fields: frozenset[str] | set[str]) -> FilterRule:
    """The rule for one list parameter, by its name against the entity's fields:
    ``ids``; a field of that name; an array parameter named for the plural of a field
    (``codes`` -> ``code``, ``accountIds`` -> ``accountId``); the field with ``Id`` added
    (``account`` -> ``accountId``) or removed (``externalSystemId`` -> ``externalSystem``);
    ``<field>Start``/``<field>End``; ``date`` (active on that date). Anything else is
    accepted and ignored."""
    name, is_array = parameter.name, parameter.is_array
    boolean = parameter.type == "boolean"
    if name == "ids":
        return FilterRule(name, "ids", "id", True)
    candidates = [name]
    if is_array and name.endswith("s"):
        candidates.insert(0, name[:-1])
    candidates += [name + "Id"]
    if name.endswith("Id"):
        candidates.append(name[:-2])
    for candidate in candidates:
        if candidate in fields:
            return FilterRule(name, "in" if is_array else "equal", candidate, is_array, boolean)
    for suffix, kind in (("Start", "from"), ("End", "before")):
        if name.endswith(suffix) and name[:-len(suffix)] in fields:
            return FilterRule(name, kind, name[:-len(suffix)])
    if name == "date" and "startDate" in fields:
        return FilterRule(name, "on_date", "startDate")
    return FilterRule(name, "ignored", None, is_array, boolean)
