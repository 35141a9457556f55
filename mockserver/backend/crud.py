"""The rules every stored m3ter entity shares, written once.

ids are UUID4; ``version`` starts at 1 and an update must carry the stored version
(400 without, 409 when stale) and increments it; audit fields record when and by which
client; PUT replaces every writable field; ``code`` is unique per organization and
collection; DELETE hands back what was deleted. Each change is reported to the change
listener (which records Events) while the store lock is still held, so the Event order
is the change order.

A resource module describes only what is particular to it in a ``ResourceKind``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mockserver.domain.clock import isoformat
from mockserver.domain.errors import MockError
from mockserver.domain.pagination import ListScope

if TYPE_CHECKING:
    from .core import Backend

DEFAULT_PAGE_SIZE = 10


@dataclass(frozen=True)
class Caller:
    org_id: str
    client_id: str


Prepare = Callable[["Backend", Caller, dict, "dict | None"], dict]
Filter = Callable[[dict, Any], bool]


def copy_fields(names: Iterable[str]) -> Prepare:
    """A ``prepare`` that keeps only the named (writable) fields of the body."""
    names = tuple(names)

    def prepare(backend, caller, body, existing):
        return {k: body[k] for k in names if k in body and body[k] is not None}

    return prepare


def public_view(entity: dict) -> dict:
    """The entity as the API shows it: internal keys start with ``_``."""
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def in_list(field_name: str) -> Filter:
    return lambda entity, wanted: entity.get(field_name) in wanted


def equals(field_name: str) -> Filter:
    return lambda entity, wanted: entity.get(field_name) == wanted


@dataclass
class ResourceKind:
    collection: str
    label: str
    prepare: Prepare
    event_entity: str | None = None
    view: Callable[[dict], dict] = public_view
    created_view: Callable[[dict], dict] | None = None
    filters: dict[str, Filter] = field(default_factory=dict)
    check_delete: Callable[["Backend", Caller, dict], None] | None = None
    unique_code: bool = True


class CrudService:
    def __init__(self, backend: "Backend", kind: ResourceKind):
        self.backend = backend
        self.kind = kind

    # -- reads --------------------------------------------------------------------------
    def find(self, caller: Caller, entity_id: str) -> dict:
        """The stored entity (internal form) or a 404."""
        entity = self.backend.store.peek(caller.org_id, self.kind.collection).get(entity_id)
        if entity is None:
            raise MockError.not_found(f"No {self.kind.label} with id {entity_id!r}")
        return entity

    def exists(self, caller: Caller, entity_id: str) -> bool:
        return self.backend.store.peek(caller.org_id, self.kind.collection).get(entity_id) is not None

    def get(self, caller: Caller, entity_id: str) -> dict:
        with self.backend.store.lock:
            return self.kind.view(self.find(caller, entity_id))

    def list(self, caller: Caller, filters: dict[str, Any], page_size: int | None,
             next_token: str | None) -> tuple[list[dict], str | None]:
        active = {k: v for k, v in filters.items() if v is not None and v != []}
        with self.backend.store.lock:
            collection = self.backend.store.peek(caller.org_id, self.kind.collection)
            items, token = self.backend.paginate(
                ListScope(caller.org_id, self.kind.collection, active),
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

    # -- writes -------------------------------------------------------------------------
    def create(self, caller: Caller, body: dict) -> dict:
        with self.backend.store.lock:
            fields = self.kind.prepare(self.backend, caller, body, None)
            collection = self.backend.store.collection(caller.org_id, self.kind.collection)
            self._check_code_free(collection, fields, None)
            now = isoformat(self.backend.clock.now())
            entity = {
                "id": str(uuid.uuid4()),
                "version": 1,
                **fields,
                "dtCreated": now,
                "dtLastModified": now,
                "createdBy": caller.client_id,
                "lastModifiedBy": caller.client_id,
            }
            collection.put(entity)
            self.backend.entity_changed(caller, self.kind, "created", None, entity)
            return (self.kind.created_view or self.kind.view)(entity)

    def update(self, caller: Caller, entity_id: str, body: dict) -> dict:
        with self.backend.store.lock:
            existing = self.find(caller, entity_id)
            self._check_version(existing, body)
            fields = self.kind.prepare(self.backend, caller, body, existing)
            collection = self.backend.store.collection(caller.org_id, self.kind.collection)
            self._check_code_free(collection, fields, entity_id)
            entity = {
                "id": entity_id,
                "version": existing["version"] + 1,
                **fields,
                "dtCreated": existing["dtCreated"],
                "dtLastModified": isoformat(self.backend.clock.now()),
                "createdBy": existing["createdBy"],
                "lastModifiedBy": caller.client_id,
            }
            collection.put(entity)
            self.backend.entity_changed(caller, self.kind, "updated", existing, entity)
            return self.kind.view(entity)

    def modify(self, caller: Caller, entity_id: str, changes: dict) -> dict:
        """A partial change made by an action endpoint (e.g. set active), not by PUT: the
        version is neither checked nor incremented, as m3ter does for those actions."""
        with self.backend.store.lock:
            existing = self.find(caller, entity_id)
            entity = {**existing, **changes,
                      "dtLastModified": isoformat(self.backend.clock.now()),
                      "lastModifiedBy": caller.client_id}
            self.backend.store.collection(caller.org_id, self.kind.collection).put(entity)
            self.backend.entity_changed(caller, self.kind, "updated", existing, entity)
            return self.kind.view(entity)

    def delete(self, caller: Caller, entity_id: str) -> dict:
        with self.backend.store.lock:
            existing = self.find(caller, entity_id)
            if self.kind.check_delete:
                self.kind.check_delete(self.backend, caller, existing)
            self.backend.store.collection(caller.org_id, self.kind.collection).remove(entity_id)
            self.backend.entity_changed(caller, self.kind, "deleted", existing, None)
            return self.kind.view(existing)

    # -- rules --------------------------------------------------------------------------
    def _check_version(self, existing: dict, body: dict) -> None:
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
        if not self.kind.unique_code or code is None:
            return
        holder = collection.id_for_code(code)
        if holder is not None and holder != own_id:
            raise MockError.conflict(f"code {code!r} is already used by {self.kind.label} {holder!r}")
