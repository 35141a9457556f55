"""Fixture documents: what an organization is seeded with, read into entries that name each
other, put in the order they can be created in.

A fixture holds, per organization, groups of entities keyed by the resource's name (its
URL path after ``/organizations/{orgId}/``, parent ids left out: ``products``,
``plantemplates``, ``notifications/configurations``, ``balances/transactions``); in each
group a mapping from a reference name to the entity's request body. A singleton resource
(``organizationconfig``) is one body, without a name. ``measurements`` is a list of
measurements as ``POST /measurements`` takes them, loaded after every entity.

A string ``"@<group>/<name>"`` anywhere in a body is a reference: the id the named entity
gets when it is created. Real ids never start with ``@`` (m3ter's are UUIDs); a literal
string that does is written with the ``@`` doubled (``"@@home"`` is ``"@home"``), so no
value can be read as a reference by accident. Each entity is created after those it
references (in the file's order otherwise); a cycle is refused.

Pure: the backend (``mockserver.backend.seeding``) says which groups exist, validates each
body against the spec and creates the entities through its services.
"""

from __future__ import annotations

import heapq
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import MockError

REF = "@"
MEASUREMENTS = "measurements"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_PLACEHOLDERS = uuid.UUID("6d3c54a4-4f53-4b7e-9d0e-6f1b3b3f5e11")
SHOWN_NAMES = 8  # names listed in a message about an unknown one


class FixtureError(MockError):
    """A fixture that cannot be loaded: ``where`` names the organization, the entity (group
    and reference name) and the field; nothing of it was loaded."""

    def __init__(self, where: str, reason: str, status: int = 400):
        super().__init__(status, f"{where}: {reason}" if where else reason)
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class Group:
    """What the fixture needs to know of one resource: whether it is a singleton, and which
    of its fields name entities of which group (a reference of another kind is refused)."""

    name: str
    singleton: bool = False
    references: Mapping[str, str] = field(default_factory=dict)  # field -> group


@dataclass(frozen=True)
class Ref:
    path: str   # where in the body: ``productId``, ``productIds[1]``
    group: str
    name: str

    def __str__(self) -> str:
        return f"{REF}{self.group}/{self.name}"


@dataclass
class Entry:
    group: str
    name: str | None        # None: a singleton
    body: dict
    position: int           # in the file's order
    refs: list[Ref] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.group, self.name

    @property
    def label(self) -> str:
        return self.group if self.name is None else f"{self.group} {self.name!r}"


@dataclass
class OrgFixture:
    org_id: str
    entries: list[Entry]            # in the order to create them
    measurements: list[Any]

    def where(self, entry: Entry | None = None, path: str | None = None) -> str:
        parts = [f"organization {self.org_id!r}"]
        if entry is not None:
            parts.append(entry.label)
        if path:
            parts.append(path)
        return ": ".join(parts)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, why) when ``value`` holds what JSON cannot (a key that is not a string, NaN or
    infinity, a set or bytes that YAML can write), else None: a fixture says only what a
    request body could."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value!r} is not a number JSON can hold")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return join(path, str(key)), f"the key {key!r} is not a string (quote it)"
            found = json_problem(item, join(path, key))
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = json_problem(item, join(path, index))
            if found is not None:
                return found
        return None
    return path, f"{_type_name(value)} is not a JSON value"


def check_org_id(org_id: Any) -> str:
    """An organization id as the m3ter API's path takes one: a non-empty string that fits
    in one path segment."""
    if not isinstance(org_id, str) or not org_id or "/" in org_id or any(ord(c) < 0x20 or c == "\x7f"
                                                                          for c in org_id):
        raise FixtureError("organizations", f"{org_id!r} is not an organization id (a non-empty string without "
                                            f"'/' or control characters)")
    if len(org_id) > 200:
        raise FixtureError("organizations", f"organization id {org_id[:40]!r}... is longer than 200 characters")
    return org_id


def organizations(document: Any) -> dict[str, Any]:
    """The organizations of a whole fixture document: ``{"organizations": {orgId: {...}}}``."""
    if not isinstance(document, dict):
        raise FixtureError("", f"a fixture is a mapping with 'organizations' (got {_type_name(document)})")
    extra = [k for k in document if k != "organizations"]
    if extra:
        raise FixtureError(str(extra[0]), "not a key of a fixture (it holds 'organizations' only)")
    orgs = document.get("organizations")
    if not isinstance(orgs, dict) or not orgs:
        raise FixtureError("organizations", "a mapping of organization id to its entities, with at least one")
    for org_id in orgs:
        check_org_id(org_id)
    return orgs


# -- references ------------------------------------------------------------------------

def parse_ref(text: str, groups: Mapping[str, Group]) -> tuple[str, str] | None:
    """(group, name) of a reference, None for a literal ``@@...``; a FixtureError reason
    (ValueError) for anything else that starts with ``@``."""
    if text.startswith(REF + REF):
        return None
    group, slash, name = text[1:].rpartition("/")
    if not slash or group not in groups:
        raise ValueError(f"{text[:80]!r} is not a reference ({REF}<resource>/<name>, the resource one a fixture "
                         f"can hold; write {REF}{REF} for a string that starts with {REF})")
    if groups[group].singleton:
        raise ValueError(f"{text[:80]!r}: {group} is a singleton; it has no names to reference")
    if not NAME_PATTERN.match(name):
        raise ValueError(f"{text[:80]!r}: {name[:80]!r} is not a reference name (1-100 letters, digits, '_', '.' "
                         f"or '-', not starting with '.' or '-')")
    return group, name


def find_refs(value: Any, groups: Mapping[str, Group], path: str = "") -> Iterable[Ref]:
    if isinstance(value, str):
        if value.startswith(REF):
            try:
                found = parse_ref(value, groups)
            except ValueError as reason:
                raise FixtureError(path, str(reason)) from None
            if found is not None:
                yield Ref(path, *found)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from find_refs(item, groups, join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_refs(item, groups, join(path, index))


def resolve(value: Any, ids: Mapping[tuple[str, str], str], groups: Mapping[str, Group]) -> Any:
    """``value`` with every reference replaced by its id and every ``@@`` literal by its
    text (references are known to be valid by then)."""
    if isinstance(value, str):
        if not value.startswith(REF):
            return value
        found = parse_ref(value, groups)
        return value[1:] if found is None else ids[found]
    if isinstance(value, dict):
        return {key: resolve(item, ids, groups) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, ids, groups) for item in value]
    return value


def placeholder_id(group: str, name: str) -> str:
    """A stand-in id for a reference, shaped as the id it will be (a UUID), so that a body can
    be validated against the spec before anything exists."""
    return str(uuid.uuid5(_PLACEHOLDERS, f"{group}/{name}"))


# -- reading and ordering ----------------------------------------------------------------

def read_organization(org_id: str, content: Any, groups: Mapping[str, Group]) -> OrgFixture:
    """The entries of one organization's part of a fixture, checked for everything that does
    not need the spec (groups, names, references, cycles), in the order to create them."""
    fixture = OrgFixture(org_id, [], [])
    if content is None:
        return fixture
    if not isinstance(content, dict):
        raise FixtureError(fixture.where(), f"must be a mapping of resource name to entities "
                                            f"(got {_type_name(content)})")
    entries: list[Entry] = []
    for group_name, members in content.items():
        if group_name == MEASUREMENTS:
            if not isinstance(members, list):
                raise FixtureError(fixture.where(path=MEASUREMENTS),
                                   f"must be a list of measurements (got {_type_name(members)})")
            fixture.measurements = members
            continue
        group = groups.get(group_name) if isinstance(group_name, str) else None
        if group is None:
            raise FixtureError(fixture.where(), f"{group_name!r} is not a resource a fixture can create "
                                                f"(see README: Seed data)")
        if group.singleton:
            if not isinstance(members, dict):
                raise FixtureError(fixture.where(path=group_name),
                                   f"a singleton's body, a mapping (got {_type_name(members)})")
            entries.append(Entry(group_name, None, members, len(entries)))
            continue
        if not isinstance(members, dict):
            raise FixtureError(fixture.where(path=group_name),
                               f"a mapping of reference name to body (got {_type_name(members)})")
        for name, body in members.items():
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise FixtureError(fixture.where(path=group_name),
                                   f"{name!r} is not a reference name (1-100 letters, digits, '_', '.' or '-', "
                                   f"not starting with '.' or '-')")
            entry = Entry(group_name, name, body, len(entries))
            if not isinstance(body, dict):
                raise FixtureError(fixture.where(entry), f"a body, a mapping of field to value "
                                                         f"(got {_type_name(body)})")
            entries.append(entry)
    known = {e.key for e in entries}
    for entry in entries:
        problem = json_problem(entry.body)
        if problem is not None:
            raise FixtureError(fixture.where(entry, problem[0] or None), problem[1])
        try:
            entry.refs = list(find_refs(entry.body, groups))
        except FixtureError as error:
            raise FixtureError(fixture.where(entry, error.where), error.reason) from None
        for ref in entry.refs:
            _check_ref(fixture, entry, ref, known, groups)
    fixture.entries = in_creation_order(fixture, entries)
    return fixture


def _check_ref(fixture: OrgFixture, entry: Entry, ref: Ref, known: set, groups: Mapping[str, Group]) -> None:
    if (ref.group, ref.name) not in known:
        names = [name for group, name in known if group == ref.group]
        shown = ", ".join(sorted(names)[:SHOWN_NAMES]) + (", ..." if len(names) > SHOWN_NAMES else "")
        raise FixtureError(fixture.where(entry, ref.path),
                           f"{ref} names no entity of this organization's fixture"
                           + (f" ({ref.group} has {shown})" if names else f" (it has no {ref.group})"))
    top = re.split(r"[.\[]", ref.path, maxsplit=1)[0]
    wanted = groups[entry.group].references.get(top)
    if wanted is not None and wanted != ref.group:
        raise FixtureError(fixture.where(entry, ref.path),
                           f"{ref} is one of {ref.group}; {top} names one of {wanted}")


def in_creation_order(fixture: OrgFixture, entries: list[Entry]) -> list[Entry]:
    """Each entry after the entries it references, otherwise in the file's order; a cycle of
    references is a FixtureError that shows it."""
    by_key = {e.key: e for e in entries}
    waiting_on = {e.key: {(r.group, r.name) for r in e.refs} for e in entries}
    needed_by: dict[tuple, list[Entry]] = {}
    for entry in entries:
        for key in waiting_on[entry.key]:
            needed_by.setdefault(key, []).append(entry)
    ready = [(e.position, e.key) for e in entries if not waiting_on[e.key]]
    heapq.heapify(ready)
    ordered: list[Entry] = []
    while ready:
        _, key = heapq.heappop(ready)
        ordered.append(by_key[key])
        for later in needed_by.get(key, ()):
            waiting = waiting_on[later.key]
            waiting.discard(key)
            if not waiting:
                heapq.heappush(ready, (later.position, later.key))
    if len(ordered) < len(entries):
        stuck = next(e for e in entries if waiting_on[e.key])
        cycle = _cycle_from(stuck, by_key, waiting_on)
        shown = " -> ".join(f"{by_key[k].label}" for k in cycle)
        raise FixtureError(fixture.where(by_key[cycle[0]]), f"its references go round in a cycle ({shown}); "
                                                           f"one of them must be created without the reference")
    return ordered


def _cycle_from(start: Entry, by_key: dict, waiting_on: dict) -> list[tuple]:
    """A cycle among the entries left waiting: follow a waited-for entry that itself waits
    until one comes round again."""
    path: list[tuple] = []
    seen: dict[tuple, int] = {}
    key = start.key
    while key not in seen:
        seen[key] = len(path)
        path.append(key)
        key = min((k for k in waiting_on[key] if waiting_on.get(k)), key=lambda k: by_key[k].position)
    return path[seen[key]:] + [key]
