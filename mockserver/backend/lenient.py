"""The lenient, Prism-compatible mode (``m3ter-mock serve --lenient``).

Generated SDKs are tested against a stateless mock that answers any id with example data
(m3ter's own SDK suite calls every operation with placeholder ids such as ``id``, a preset
token and the organization ``My Org ID``). In this mode every id names an entity: an id the
organization does not hold is answered with a realistic entity generated from the resource's
response schema (``domain/fake_entities``), the same for that organization, collection and
id, and stored from then on like any other (a second GET gives it again, a PUT updates it, a
list shows it, a DELETE removes it; asked for again by id, it is generated again). An id a
body names (a reference) is stored the same way when it is checked, so the entity it names
exists. A generated entity is a new one (a status holds its first value: PENDING, DRAFT...),
and leaves out the optional references it would otherwise name (a parent Account naming
another, endlessly).

The rules m3ter states only in prose are relaxed for stored entities: ``version`` on update
(``lenient_spec`` drops the ``required: [version]`` the project's spec adds to every PUT body
and its ``minimum: 1``; ``CrudService.check_version`` lets any PUT overwrite), a unique
``code``, the "exactly one of" pairs (``relaxed``), a ``nextToken`` the list did not issue
(``LenientCursors``: the first page), and HTTP Basic credentials on the token endpoint (a
bearer token gets a token too). What the spec's schemas state is still enforced by the
request validation. Actions are answered by ``mockserver/api/lenient.py``.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from mockserver.domain.errors import MockError
from mockserver.domain.fake_entities import fake_entity, fake_value, seed_for
from mockserver.domain.pagination import Cursors, ListScope

from .crud import without_nulls
from .shapes import ORG_PREFIX, Schemas

if TYPE_CHECKING:
    from .core import Backend
    from .crud import Caller, CrudService, Scope

_VERSION_ONLY = {"required": ["version"]}


def lenient_spec(spec: dict) -> dict:
    """``spec`` as the lenient mode serves it (a copy; ``spec`` is left as it is): a PUT
    body need not carry ``version`` and any ``version`` is accepted, and the token endpoint
    takes a bearer token as well as Basic credentials."""
    spec = copy.deepcopy(spec)
    _relax_versions(spec)
    token = spec.get("paths", {}).get("/oauth/token", {}).get("post")
    schemes = spec.get("components", {}).get("securitySchemes", {})
    if token is not None and token.get("security") is not None:
        bearer = [name for name, scheme in schemes.items() if scheme.get("type") == "oauth2"]
        token["security"] = list(token["security"]) + [{name: []} for name in bearer]
    return spec


def _relax_versions(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("allOf"), list):
            node["allOf"] = [part for part in node["allOf"] if part != _VERSION_ONLY]
        version = node.get("properties", {}).get("version") if isinstance(node.get("properties"), dict) else None
        if isinstance(version, dict):
            version.pop("minimum", None)
        if isinstance(node.get("Version"), dict):  # the shared component
            node["Version"].pop("minimum", None)
        for value in node.values():
            _relax_versions(value)
    elif isinstance(node, list):
        for value in node:
            _relax_versions(value)


def relaxed(declaration):
    """A resource declaration (``resources/catalog.py``) without its prose-only rules: the
    "exactly one of" groups (a pricing's plan or plan template...)."""
    return dataclasses.replace(declaration, exclusive=())


def _internal_webhook(entity: dict, faker) -> None:
    # The signing secret a created destination keeps (never shown after its create).
    entity["_secret"] = faker.password(length=32, special_chars=False)


# Internal fields (never shown) that a resource's own code expects on a stored entity.
INTERNAL: dict[str, Callable[[dict, Any], None]] = {
    "integrationdestinations/webhooks": _internal_webhook,
}


class LenientCursors(Cursors):
    """A ``nextToken`` this mock did not issue for the list (a placeholder such as
    ``nextToken``) reads as the start of the list instead of a 400."""

    def decode(self, scope: ListScope, token: str) -> int | None:
        try:
            return super().decode(scope, token)
        except MockError:
            return None


class LenientEntities:
    def __init__(self, backend: "Backend"):
        self.backend = backend
        self._schemas = backend.spec.get("components", {}).get("schemas", {})
        self._entity_schemas: dict[str, Any] = {}
        self._faker = None

    # -- the rules the generic engine asks about -----------------------------------------
    def materialise(self, service: "CrudService", caller: "Caller", entity_id: str,
                    scope: "Scope | None") -> dict | None:
        """The entity ``entity_id`` names, generated and stored; None when the resource has
        no entity schema."""
        with self.backend.store.lock:
            kind = service.kind
            schema = self.entity_schema(kind.key) if kind.key else None
            if schema is None:
                return None
            name = kind.collection_name(scope)
            faker = self._seeded(caller.org_id, name, entity_id)
            entity = without_nulls(fake_entity(schema, faker, self._schemas, id=entity_id))
            # An optional reference is left out: a generated Account naming a generated parent,
            # itself naming another, would never end when a rule walks up the chain.
            required = self._required(kind.key)
            for field_name in kind.references:
                if field_name not in required:
                    entity.pop(field_name, None)
            entity["version"] = 1
            for parameter in kind.scope_fields:
                entity[parameter] = (scope or {})[parameter]
            _as_new(entity, self.backend.spec, schema)
            complete = INTERNAL.get(kind.key)
            if complete is not None:
                complete(entity, faker)
            collection = self.backend.store.collection(caller.org_id, name)
            code = entity.get("code")
            if kind.unique_code and code is not None and collection.id_for_code(code) is not None:
                entity["code"] = f"{code}_{entity_id}"[:80]  # a generated code never takes a stored one's
                if collection.id_for_code(entity["code"]) is not None:
                    del entity["code"]
            collection.put(entity)
            self.backend.state.changed()
            return entity

    def answer(self, schema: Any, *seed: str) -> Any:
        """A generated value for ``schema``, the same for the same ``seed`` parts: what an
        action the engine's own rules refused answers in lenient mode (``api/lenient.py``)."""
        with self.backend.store.lock:  # the one Faker instance, re-seeded per value
            return without_nulls(fake_value(schema, self._seeded(*seed), self._schemas))

    # -- schemas and Faker ---------------------------------------------------------------
    def entity_schema(self, key: str) -> Any:
        """The schema of a stored entity of the resource: the response of its PUT, else of
        its create, else of its GET by id (a GetIntegrationConfig answers a run, not the
        configuration), else of its singleton GET, else a list item."""
        if key not in self._entity_schemas:
            self._entity_schemas[key] = entity_schema(self.backend.spec, key)
        return self._entity_schemas[key]

    def _required(self, key: str) -> set[str]:
        _, required = Schemas(self.backend.spec).flatten(self.entity_schema(key))
        return required

    def _seeded(self, *parts: str):
        if self._faker is None:
            from faker import Faker

            self._faker = Faker()
        # One instance, re-seeded for each entity (under the store lock): never the global seed.
        self._faker.seed_instance(seed_for(*parts))
        return self._faker


def entity_schema(spec: dict, key: str) -> Any:
    """See ``LenientEntities.entity_schema``; None when the spec describes none."""
    paths = spec.get("paths", {})
    base = ORG_PREFIX + key
    items = [p for p in paths if p.startswith(base + "/{") and p.endswith("}") and p.count("/") == base.count("/") + 1]
    for path, method in [(p, "put") for p in items] + [(base, "post")] + [(p, "get") for p in items] + [
            (base, "put"), (base, "get")]:
        schema = success_schema(spec, paths.get(path, {}).get(method))
        if schema is not None and not (method == "get" and path == base and _is_page(spec, schema)):
            return schema
    page = success_schema(spec, paths.get(base, {}).get("get"))
    if page is not None:
        properties, _ = Schemas(spec).flatten(page)
        data = Schemas(spec).deref(properties.get("data", {}))
        return data.get("items")
    return None


def success_schema(spec: dict, operation: dict | None) -> Any:
    """The JSON schema of the operation's first 2xx answer (None: none, or not JSON)."""
    if not operation:
        return None
    for status, response in sorted(operation.get("responses", {}).items(), key=lambda item: str(item[0])):
        if not str(status).startswith("2"):
            continue
        if "$ref" in response:
            response = spec.get("components", {}).get("responses", {}).get(response["$ref"].rsplit("/", 1)[-1], {})
        for media, content in response.get("content", {}).items():
            if "json" in media:
                return content.get("schema")
        return None
    return None


def _is_page(spec: dict, schema: Any) -> bool:
    properties, _ = Schemas(spec).flatten(schema)
    return "data" in properties and Schemas(spec).type_of(properties["data"]) == "array"


# A generated entity is a new one: the first value of a status enum is where m3ter starts
# one (PENDING, DRAFT, WAITING...), and it is neither locked, archived nor accepted yet.
_NEW_FALSE = ("locked", "archived", "accepted")
_NEW_TRUE = ("active", "enabled")


def _as_new(entity: dict, spec: dict, schema: Any) -> None:
    schemas = Schemas(spec)
    properties, _ = schemas.flatten(schema)
    for name, sub in properties.items():
        if name not in entity:
            continue
        values = schemas.deref(sub).get("enum")
        if name.lower().endswith("status") and values:
            entity[name] = values[0]
        elif name in _NEW_FALSE and isinstance(entity[name], bool):
            entity[name] = False
        elif name in _NEW_TRUE and isinstance(entity[name], bool):
            entity[name] = True
