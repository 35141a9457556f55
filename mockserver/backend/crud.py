"""The rules every stored m3ter entity shares, written once.

ids are UUID4; ``version`` starts at 1 and an update must carry the stored version
(400 without, 409 when stale) and increments it; audit fields record when and by which
client; PUT replaces every writable field; ``code`` is unique per organization and
collection; DELETE hands back what was deleted. Each change is reported to the change
listener (which records Events) while the store lock is still held, so the Event order
is the change order.

Every resource of the spec is served by ``CrudService`` over a ``ResourceKind``: for most
of them the kind is derived from the spec (``shapes``) plus a short declaration
(``resources/catalog.py``); the resources with a module of their own describe what is
particular to them in a hand-made kind. The generic rules, beyond the ones above:

* nested resources: the collection is the resource key with the parent ids filled in
  (``balances/<id>/transactions``), the parent must exist (404), and its id is stored on
  the child when the response shows that field; deleting a parent drops its children;
* references: a field naming an id (or a list of ids) of another resource must name
  entities the organization holds (400 naming the field), and an entity that a stored
  entity references cannot be deleted (409 naming the referrer);
* singletons (one per organization, e.g. the bill configuration): read returns the stored
  entity or the declared default; replace follows the version rules, except that the
  first replace (the default was never saved) may leave ``version`` out;
* no stored entity holds a null: a field sent as null is left out, as if absent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

from .shapes import fill, template_pattern

if TYPE_CHECKING:
    from .core import Backend

DEFAULT_PAGE_SIZE = 10
AUDIT_FIELDS = ("dtCreated", "dtLastModified", "createdBy", "lastModifiedBy")
_SINGLETON_IDS = uuid.UUID("6f1c1f43-6a57-4b6e-9a43-2f0f7a1c5d10")  # namespace of singleton ids


@dataclass(frozen=True)
class Caller:
    org_id: str
    client_id: str


Prepare = Callable[["Backend", Caller, dict, "dict | None"], dict]
Filter = Callable[[dict, Any], bool]
Scope = dict  # path parameter -> value, for nested resources


def without_nulls(value: Any) -> Any:
    """``value`` with every null member of every object left out (list items are kept)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def copy_fields(names: Iterable[str]) -> Prepare:
    """A ``prepare`` that keeps only the named (writable) fields of the body, without nulls."""
    names = tuple(names)

    def prepare(backend, caller, body, existing):
        return {k: without_nulls(body[k]) for k in names if k in body and body[k] is not None}

    return prepare


def public_view(entity: dict) -> dict:
    """The entity as the API shows it: internal keys start with ``_``."""
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def in_list(field_name: str) -> Filter:
    return lambda entity, wanted: entity.get(field_name) in wanted


def equals(field_name: str, absent: Any = None) -> Filter:
    return lambda entity, wanted: entity.get(field_name, absent) == wanted


def on_or_after(field_name: str) -> Filter:
    return lambda entity, wanted: entity.get(field_name) is not None and entity[field_name] >= wanted


def before(field_name: str) -> Filter:
    return lambda entity, wanted: entity.get(field_name) is not None and entity[field_name] < wanted


def active_on(entity: dict, date: Any) -> bool:
    """Started on or before ``date`` and not ended by then (no end date: still running)."""
    start, end = entity.get("startDate"), entity.get("endDate")
    return start is not None and start[:len(date)] <= date and (end is None or date < end[:len(date)])


def _ids_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


@dataclass
class ResourceKind:
    collection: str                     # the store collection; a template for a nested resource
    label: str
    prepare: Prepare
    event_entity: str | None = None
    view: Callable[[dict], dict] = public_view
    created_view: Callable[[dict], dict] | None = None
    filters: dict[str, Filter] = field(default_factory=dict)
    check_delete: Callable[["Backend", Caller, dict], None] | None = None
    unique_code: bool = True
    # The spec-driven part (see the module docstring); the defaults keep a hand-made kind as it was.
    key: str | None = None              # the resource key (None: not known to the catalog)
    scope: tuple[str, ...] = ()         # the path parameters in the key, in order
    parents: tuple[tuple[str, str], ...] = ()  # (path parameter, resource key of the parent)
    scope_fields: tuple[str, ...] = ()  # path parameters stored on the entity
    references: dict[str, str] = field(default_factory=dict)  # field -> resource key
    singleton: bool = False
    default: Callable[[Caller], dict] | None = None  # a singleton before its first replace
    audit_fields: tuple[str, ...] = AUDIT_FIELDS
    cascade: bool = True                # deleting it drops its nested resources
    part_events: dict[str, str] = field(default_factory=dict)  # array field -> Event entity of its items

    def collection_name(self, scope: Scope | None) -> str:
        if not self.scope:
            return self.collection
        missing = [p for p in self.scope if not (scope or {}).get(p)]
        if missing:
            raise MockError.bad_request(f"{missing[0]}: required")
        return fill(self.collection, scope)


class CrudService:
    def __init__(self, backend: "Backend", kind: ResourceKind):
        self.backend = backend
        self.kind = kind

    # -- reads --------------------------------------------------------------------------
    def find(self, caller: Caller, entity_id: str, scope: Scope | None = None) -> dict:
        """The stored entity (internal form) or a 404."""
        entity = self.backend.store.peek(caller.org_id, self.kind.collection_name(scope)).get(entity_id)
        if entity is None:
            self.check_parents(caller, scope)
            if self.backend.lenient is not None:  # every id names an entity (backend/lenient.py)
                entity = self.backend.lenient.materialise(self, caller, entity_id, scope)
                if entity is not None:
                    return entity
            raise MockError.not_found(f"No {self.kind.label} with id {entity_id!r}")
        return entity

    def exists(self, caller: Caller, entity_id: str, scope: Scope | None = None) -> bool:
        if self.backend.store.peek(caller.org_id, self.kind.collection_name(scope)).get(entity_id) is not None:
            return True
        if self.backend.lenient is None:
            return False
        try:  # lenient: every id names an entity, stored from the first time it is named
            self.find(caller, entity_id, scope)
        except MockError:
            return False
        return True

    def get(self, caller: Caller, entity_id: str, scope: Scope | None = None) -> dict:
        with self.backend.store.lock:
            return self.kind.view(self.find(caller, entity_id, scope))

    def list(self, caller: Caller, filters: dict[str, Any], page_size: int | None,
             next_token: str | None, scope: Scope | None = None) -> tuple[list[dict], str | None]:
        active = {k: v for k, v in filters.items() if v is not None and v != []}
        with self.backend.store.lock:
            self.check_parents(caller, scope)
            name = self.kind.collection_name(scope)
            collection = self.backend.store.peek(caller.org_id, name)
            items, token = self.backend.paginate(
                ListScope(caller.org_id, name, active),
                collection,
                self._matcher(active),
                page_size,
                next_token,
                candidate_ids=active.get("ids"),
            )
            return [self.kind.view(i) for i in items], token

    def _matcher(self, filters: dict[str, Any]) -> Callable[[dict], bool]:
        checks = []
        for name, wanted in filters.items():
            if name == "ids":
                continue  # served by candidate_ids
            check = self.kind.filters.get(name)
            if check is None:
                raise MockError.bad_request(f"{name}: not a filter of this list")
            checks.append((check, wanted))
        return lambda entity: all(check(entity, wanted) for check, wanted in checks)

    def entities(self, org_id: str) -> Iterable[dict]:
        """Every stored entity of this resource in the organization, under every parent."""
        if not self.kind.scope:
            yield from self.backend.store.peek(org_id, self.kind.collection).values()
            return
        if org_id not in self.backend.store.org_ids():
            return  # not store.org(): a read must not create the organization
        pattern = template_pattern(self.kind.collection)
        for name, collection in list(self.backend.store.org(org_id).collections.items()):
            if pattern.fullmatch(name):
                yield from collection.values()

    # -- writes -------------------------------------------------------------------------
    def create(self, caller: Caller, body: dict, scope: Scope | None = None) -> dict:
        with self.backend.store.lock:
            self.check_parents(caller, scope)
            fields = self._prepare(caller, body, None, scope)
            collection = self.backend.store.collection(caller.org_id, self.kind.collection_name(scope))
            self._check_code_free(collection, fields, None)
            now = isoformat(self.backend.clock.now())
            entity = {"id": self.backend.new_id(), "version": 1, **fields,
                      **self._audit(caller, now, now, caller.client_id)}
            collection.put(entity)
            self.backend.entity_changed(caller, self.kind, "created", None, entity)
            return (self.kind.created_view or self.kind.view)(entity)

    def update(self, caller: Caller, entity_id: str, body: dict, scope: Scope | None = None) -> dict:
        with self.backend.store.lock:
            existing = self.find(caller, entity_id, scope)
            self.check_version(existing, body)
            fields = self._prepare(caller, body, existing, scope)
            collection = self.backend.store.collection(caller.org_id, self.kind.collection_name(scope))
            self._check_code_free(collection, fields, entity_id)
            entity = {"id": entity_id, "version": existing["version"] + 1, **fields,
                      **self._audit(caller, existing.get("dtCreated"), isoformat(self.backend.clock.now()),
                                    existing.get("createdBy"))}
            collection.put(entity)
            self.backend.entity_changed(caller, self.kind, "updated", existing, entity)
            return self.kind.view(entity)

    def modify(self, caller: Caller, entity_id: str, changes: dict, scope: Scope | None = None) -> dict:
        """A partial change made by an action endpoint (e.g. set active), not by PUT: the
        version is neither checked nor incremented, as m3ter does for those actions. A
        change to None removes the field."""
        with self.backend.store.lock:
            existing = self.find(caller, entity_id, scope)
            entity = {k: v for k, v in {**existing, **without_nulls(changes)}.items()
                      if k not in changes or changes[k] is not None}
            entity.update(self._audit(caller, None, isoformat(self.backend.clock.now()), None))
            self.backend.store.collection(caller.org_id, self.kind.collection_name(scope)).put(entity)
            self.backend.entity_changed(caller, self.kind, "updated", existing, entity)
            return self.kind.view(entity)

    def delete(self, caller: Caller, entity_id: str, scope: Scope | None = None) -> dict:
        with self.backend.store.lock:
            existing = self.find(caller, entity_id, scope)
            if self.kind.check_delete:
                self.kind.check_delete(self.backend, caller, existing)
            self.backend.check_unreferenced(caller, self.kind, existing)
            name = self.kind.collection_name(scope)
            self.backend.store.collection(caller.org_id, name).remove(entity_id)
            if self.kind.cascade and self.kind.key is not None:
                # Its nested resources (a Balance's transactions...) go with it.
                collections = self.backend.store.org(caller.org_id).collections
                for nested in [n for n in collections if n.startswith(f"{name}/{entity_id}/")]:
                    del collections[nested]
            self.backend.entity_changed(caller, self.kind, "deleted", existing, None)
            return self.kind.view(existing)

    # -- singletons ---------------------------------------------------------------------
    def singleton_id(self, caller: Caller, scope: Scope | None = None) -> str:
        return str(uuid.uuid5(_SINGLETON_IDS, f"{caller.org_id}/{self.kind.collection_name(scope)}"))

    def _default(self, caller: Caller, scope: Scope | None) -> dict:
        shown = self.kind.default(caller) if self.kind.default else {}
        return {"id": self.singleton_id(caller, scope), **without_nulls(shown)}

    def read(self, caller: Caller, scope: Scope | None = None) -> dict:
        """The singleton, or its default while it was never replaced (which stores nothing)."""
        with self.backend.store.lock:
            self.check_parents(caller, scope)
            stored = self.backend.store.peek(caller.org_id, self.kind.collection_name(scope)).get(
                self.singleton_id(caller, scope))
            return self.kind.view(stored if stored is not None else self._default(caller, scope))

    def replace(self, caller: Caller, body: dict, scope: Scope | None = None) -> dict:
        """PUT of a singleton. m3ter holds one from the organization's start; the mock shows
        the default until the first replace, which may leave ``version`` out (the SDK
        documents ``version`` as not valid when an entity is first stored) and stores
        version 1, recording a ``created`` Event; every later replace must send the stored
        version and records ``updated``."""
        with self.backend.store.lock:
            self.check_parents(caller, scope)  # pragma: no mutate  no singleton has a parent today (billconfig, customfields, organizationconfig, support)
            entity_id = self.singleton_id(caller, scope)
            collection = self.backend.store.collection(caller.org_id, self.kind.collection_name(scope))
            existing = collection.get(entity_id)
            if existing is not None:
                self.check_version(existing, body)
            fields = self._prepare(caller, body, existing, scope)
            now = isoformat(self.backend.clock.now())
            entity = {"id": entity_id, "version": existing["version"] + 1 if existing else 1, **fields,
                      **self._audit(caller, existing.get("dtCreated", now) if existing else now, now,
                                    existing.get("createdBy", caller.client_id) if existing else caller.client_id)}
            collection.put(entity)
            # Version 1 is "newly created" (the SDK's words): the first replace is the create.
            self.backend.entity_changed(caller, self.kind, "updated" if existing else "created", existing, entity)
            return self.kind.view(entity)

    # -- rules --------------------------------------------------------------------------
    def _audit(self, caller: Caller, created: str | None, modified: str, created_by: str | None) -> dict:
        values = {"dtCreated": created, "dtLastModified": modified, "createdBy": created_by,
                  "lastModifiedBy": caller.client_id}
        return {k: values[k] for k in self.kind.audit_fields if values[k] is not None}

    def _prepare(self, caller: Caller, body: dict, existing: dict | None, scope: Scope | None) -> dict:
        fields = self.kind.prepare(self.backend, caller, body, existing)
        for name in self.kind.scope_fields:
            fields[name] = scope[name]
        self.check_references(caller, fields)
        return fields

    def check_parents(self, caller: Caller, scope: Scope | None) -> None:
        """404 when a parent of a nested resource does not exist."""
        for parameter, parent_key in self.kind.parents:
            parent = self.backend.resources.get(parent_key)
            if parent is not None:
                parent.find(caller, scope[parameter], scope)

    def check_references(self, caller: Caller, fields: dict) -> None:
        for name, target_key in self.kind.references.items():
            if name not in fields:
                continue
            target = self.backend.resources.get(target_key)
            if target is None:
                continue
            for wanted in _ids_in(fields[name]):
                if not target.exists(caller, wanted):
                    raise MockError.bad_request(f"{name}: no {target.kind.label} with id {wanted!r}")

    def check_version(self, existing: dict, body: dict) -> None:
        if self.backend.lenient is not None:
            return  # optimistic locking is a rule m3ter states in prose: any PUT overwrites
        sent = body.get("version")
        if sent is None:
            raise MockError.bad_request(
                f"version: required on update (the {self.kind.label} is at version {existing['version']})"
            )
        if sent != existing["version"]:
            raise MockError.conflict(
                f"version {sent} is stale: {self.kind.label} {existing['id']!r} is at version "
                f"{existing['version']}; fetch it again and resend"
            )

    def _check_code_free(self, collection, fields: dict, own_id: str | None) -> None:
        code = fields.get("code")
        if not self.kind.unique_code or code is None or self.backend.lenient is not None:
            return  # lenient: a unique code is a rule m3ter states in prose
        holder = collection.id_for_code(code)
        if holder is not None and holder != own_id:
            raise MockError.conflict(f"code {code!r} is already used by {self.kind.label} {holder!r}")
