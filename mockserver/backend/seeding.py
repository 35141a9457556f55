"""Seed data: fixture documents loaded into organizations (``serve --seed FILE``, ``POST
/_mock/organizations/{orgId}/fixture``) and the Faker generator (``POST
/_mock/organizations/{orgId}/seed``), through the services, so every rule of the API holds.

The format and the references are ``mockserver.domain.seed_fixture``'s; the generated data
``mockserver.domain.seed_faker``'s. Here:

* which resources a fixture can hold: every stored entity the API lets a client create
  (POST, or PUT of a singleton, at ``/organizations/{orgId}/<key>``), named by its key
  without the parent ids (``balances/{balanceId}/transactions`` is ``balances/transactions``,
  its entities giving ``balanceId``); not the jobs the mock runs itself (bill and statement
  jobs);
* each body, its references replaced by stand-in ids, is validated against the operation's
  request schema (Draft 4 with OpenAPI's ``nullable``, as requests are) and may hold only
  the fields that schema names, before anything is written;
* then the entities are created in order through the resource's service (or the action a
  handler calls: a balance transaction, an invitation), each reference replaced by the id
  its entity got, then the measurements, by ``usage.submit`` in batches;
* all or nothing: the organizations are loaded into copies, under the store lock, and put
  back as they were (with the work queued meanwhile dropped) when anything fails. The
  error names the organization, the entity and the field.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from jsonschema import Draft4Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import extend

try:
    import jsonschema_rs
except ImportError:  # a runtime dependency; without it measurements are checked in Python only
    jsonschema_rs = None

from mockserver.domain import measurements as measurement_rules
from mockserver.domain import seed_faker
from mockserver.domain.errors import MockError
from mockserver.domain.seed_fixture import (MEASUREMENTS, FixtureError, Group, OrgFixture, check_org_id, join,
                                            json_problem, organizations, placeholder_id, read_organization,
                                            resolve)

from .crud import Caller
from .shapes import ORG_PREFIX, Schemas
from .store import Organization

log = logging.getLogger("m3ter_mock")

CLIENT_ID = "m3ter-mock-seed"  # createdBy / lastModifiedBy of what a fixture creates
NOT_SEEDABLE = frozenset({"statementjobs"})  # a job the mock runs, not data to seed
# The resources written before the generic engine (their operations carry no x-mock).
HAND_MADE = frozenset({"compoundaggregations", "dataexports/destinations", "dataexports/schedules",
                       "notifications/configurations", "integrationdestinations/webhooks", "integrationconfigs"})
MESSAGE_LIMIT = 300


class SeedFileError(Exception):
    """A seed file that cannot be loaded at start-up: one line naming it, the organization,
    the entity and the field."""


# -- validation against the spec ---------------------------------------------------------

def _nullable(validate: Callable) -> Callable:
    def check(validator, value, instance, schema):
        if instance is None and (schema.get("nullable") or schema.get("x-nullable") is True):
            return
        yield from validate(validator, value, instance, schema)

    return check


# The request validator's formats: m3ter's dates, and int32/int64 ranges (mockserver/api/validation.py).
_FORMATS = FormatChecker()
_FORMATS.checkers = dict(Draft4Validator.FORMAT_CHECKER.checkers)
_FORMATS.checkers["date"] = FormatChecker().checkers["date"]
for _name, _bits in (("int32", 32), ("int64", 64)):
    _FORMATS.checks(_name)(
        lambda value, _bits=_bits: not isinstance(value, int) or -(2 ** (_bits - 1)) <= value < 2 ** (_bits - 1))

_RequestValidator = extend(Draft4Validator, {"type": _nullable(Draft4Validator.VALIDATORS["type"]),
                                             "enum": _nullable(Draft4Validator.VALIDATORS["enum"])})


def _error_text(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(the JSON path of the field, the reason) of a validation error."""
    path = prefix
    for part in error.absolute_path:
        path = join(path, part)
    reason = error.message
    if len(reason) > MESSAGE_LIMIT:
        reason = reason[:MESSAGE_LIMIT] + "…"
    return path, reason


@dataclass
class Seedable:
    """One resource a fixture can hold."""

    group: Group
    key: str
    operation_id: str
    fields: frozenset[str]          # what the request schema names
    scope: tuple[str, ...]          # path parameters the entity gives as fields
    validator: Any
    create: Callable[[Caller, dict, dict], dict]


# The hand-written resources declare no references in the catalog (their modules check
# their own): the ones a fixture's wrong kind of reference should be told about.
_HAND_MADE_REFERENCES = {
    "compoundaggregations": {"productId": "products", "accountingProductId": "products"},
    "dataexports/schedules": {"destinationIds": "dataexports/destinations"},
}


def group_name(key: str) -> str:
    """A resource's name in a fixture: its key without the parent ids."""
    return re.sub(r"/\{[^}]+\}", "", key)


@dataclass
class SeedResult:
    org_id: str
    created: dict[str, int]
    measurements: int
    ids: dict[str, str]

    def view(self) -> dict:
        return {"orgId": self.org_id, "created": self.created, "measurements": self.measurements, "ids": self.ids}


class Seeding:
    def __init__(self, backend):
        self.backend = backend
        self._seedable: dict[str, Seedable] | None = None
        self._measurements: tuple | None = None

    # -- what can be seeded ----------------------------------------------------------------
    @property
    def seedable(self) -> dict[str, Seedable]:
        if self._seedable is None:
            self._seedable = self._build()
        return self._seedable

    def groups(self) -> dict[str, Group]:
        return {name: s.group for name, s in self.seedable.items()}

    def _build(self) -> dict[str, Seedable]:
        backend, spec = self.backend, self.backend.spec
        schemas = Schemas(spec)
        names = {key: group_name(key) for key in backend.resources}
        found: dict[str, Seedable] = {}
        for key, service in backend.resources.items():
            kind = service.kind
            method = "put" if kind.singleton else "post"
            operation = (spec["paths"].get(ORG_PREFIX + key) or {}).get(method)
            if key in NOT_SEEDABLE or not isinstance(operation, dict):
                continue
            if (operation.get("x-mock") or {}).get("action") not in ("create", "replace") and key not in HAND_MADE:
                continue  # an action with rules of its own (a bill job), not a stored entity's create
            content = (operation.get("requestBody") or {}).get("content") or {}
            schema = next((body.get("schema") for media, body in content.items() if "json" in media), None)
            if schema is None:
                continue
            properties, _ = schemas.flatten(schema)
            references = {field: names[target] for field, target in
                          {**kind.references, **_HAND_MADE_REFERENCES.get(key, {})}.items() if target in names}
            references.update({parameter: names[parent] for parameter, parent in kind.parents})
            root = {"components": spec.get("components", {}), "allOf": [schema]}
            found[names[key]] = Seedable(
                group=Group(names[key], kind.singleton, references), key=key,
                operation_id=operation["operationId"], fields=frozenset(properties), scope=kind.scope,
                validator=_RequestValidator(root, format_checker=_FORMATS), create=self._creator(key, service))
        return found

    def _creator(self, key: str, service) -> Callable[[Caller, dict, dict], dict]:
        backend = self.backend
        if key == "balances/{balanceId}/transactions":
            # What PostBalanceTransaction does: the Balance's amount moves with it.
            return lambda caller, body, scope: backend.platform.balances.post_transaction(
                caller, scope["balanceId"], body)
        if key == "invitations":
            from .actions import access

            return lambda caller, body, scope: access.create_invitation(backend, caller, body)
        if service.kind.singleton:
            def replace(caller, body, scope):
                stored = backend.store.peek(caller.org_id, service.kind.collection_name(scope)).get(
                    service.singleton_id(caller, scope))
                if stored is not None and "version" not in body:
                    body = {**body, "version": stored["version"]}  # a fixture sets it, whatever it was
                return service.replace(caller, body, scope)

            return replace
        return lambda caller, body, scope: service.create(caller, body, scope)

    # -- checking ----------------------------------------------------------------------------
    def check(self, org_id: str, content: Any, *, check_measurements: bool = True) -> OrgFixture:
        """Every check that needs nothing stored: the document's shape, the references, and
        each body against its request schema. Raises a FixtureError; writes nothing."""
        check_org_id(org_id)
        groups = self.groups()
        fixture = read_organization(org_id, content, groups)
        placeholders = _Placeholders()
        for entry in fixture.entries:
            seedable = self.seedable[entry.group]
            body = resolve(entry.body, placeholders, groups)
            for parameter in seedable.scope:
                if not isinstance(body.get(parameter), str) or not body[parameter]:
                    raise FixtureError(fixture.where(entry, parameter),
                                       f"required: the {parameter[:-2] if parameter.endswith('Id') else parameter} "
                                       f"this belongs to (a reference, or an id the organization holds)")
            unknown = [name for name in body if name not in seedable.fields and name not in seedable.scope]
            if unknown:
                raise FixtureError(fixture.where(entry, str(unknown[0])),
                                   f"not a field of {seedable.operation_id}'s request body")
            request = {k: v for k, v in body.items() if k not in seedable.scope}
            error = best_match(seedable.validator.iter_errors(request))
            if error is not None:
                path, reason = _error_text(error)
                raise FixtureError(fixture.where(entry, path or None), reason)
        if check_measurements:
            self._check_measurements(fixture)
        return fixture

    def _check_measurements(self, fixture: OrgFixture) -> None:
        """Each measurement against the MeasurementRequest schema. A long list is checked in
        bulk by jsonschema-rs (a hundred thousand in a fraction of a second, where the Python
        validator takes a minute); the first one it refuses is described as the Python
        validator describes it."""
        rows = fixture.measurements
        for index, raw in enumerate(rows):
            problem = json_problem(raw, f"{MEASUREMENTS}[{index}]")
            if problem is not None:
                raise FixtureError(fixture.where(path=problem[0]), problem[1])
        python, bulk = self._measurement_validators()
        start, bulk_error = 0, None
        if bulk is not None:
            bulk_error = next(iter(bulk.iter_errors(rows)), None)
            if bulk_error is None:
                return
            start = bulk_error.instance_path[0] if bulk_error.instance_path else 0  # pragma: no mutate  speed only: the scan from 0 finds the same first row
        for index in range(start, len(rows)):  # pragma: no mutate  speed only, as above
            error = best_match(python.iter_errors(rows[index]))
            if error is not None:
                path, reason = _error_text(error, f"{MEASUREMENTS}[{index}]")
                raise FixtureError(fixture.where(path=path), reason)
        if bulk_error is not None:  # refused in bulk only: its own words
            path = MEASUREMENTS
            for part in bulk_error.instance_path:
                path = join(path, part)
            raise FixtureError(fixture.where(path=path), bulk_error.message[:MESSAGE_LIMIT])

    def _measurement_validators(self):
        """(the Python validator of one measurement, jsonschema-rs's of a list of them or None)."""
        if self._measurements is None:
            components = self.backend.spec.get("components", {})
            item = {"$ref": "#/components/schemas/MeasurementRequest"}
            python = _RequestValidator({"components": components, "allOf": [item]}, format_checker=_FORMATS)
            bulk = None
            if jsonschema_rs is not None:
                bulk = jsonschema_rs.Draft4Validator({"components": components, "type": "array", "items": item},
                                                     validate_formats=True)
            self._measurements = (python, bulk)
        return self._measurements

    # -- loading -----------------------------------------------------------------------------
    def load(self, org_id: str, content: Any) -> dict:
        """Load one organization's part of a fixture (``POST /_mock/organizations/{orgId}/fixture``)."""
        fixture = self.check(org_id, content)
        return self.apply([fixture])[0].view()

    def generate(self, org_id: str, body: dict | None) -> dict:
        """Fill the organization with Faker's data set (``POST /_mock/organizations/{orgId}/seed``)."""
        size = size_from(body or {})
        content = seed_faker.generate(size)
        # The generated measurements are right by construction (tests/test_seeding_faker.py
        # replays them through the API): ingest still checks each against its Meter.
        fixture = self.check(org_id, content, check_measurements=False)
        with self.backend.store.lock, self.backend.ids_from(size.seed):
            result = self.apply([fixture])[0].view()
        result["seed"] = size.seed
        return result

    def load_files(self, files: Iterable[tuple[str, Any]], *, skip_existing: bool = True) -> list[SeedResult]:
        """Start-up: every organization of every file, checked first, then loaded, all or
        nothing. An organization that already holds data (from the state file) is left as it
        is. Raises SeedFileError naming the file."""
        plans: list[tuple[str, OrgFixture]] = []
        for path, document in files:
            try:
                for org_id, content in organizations(document).items():
                    if skip_existing and self._holds_data(org_id):
                        log.info("seed file %r: organization %r already holds data (from the state file); "
                                 "not seeded again", str(path), org_id)
                        continue
                    plans.append((path, self.check(org_id, content)))
            except MockError as error:
                raise SeedFileError(f"seed file {str(path)!r}: {error.message}") from None
        try:
            results = self.apply([fixture for _, fixture in plans], files=[path for path, _ in plans])
        except _ApplyError as failure:
            raise SeedFileError(f"seed file {str(failure.path)!r}: {failure.error.message}") from None
        for (path, _), result in zip(plans, results):
            log.info("seed file %r: organization %r: %d entities, %d measurements", str(path), result.org_id,
                     sum(result.created.values()), result.measurements)
        return results

    def _holds_data(self, org_id: str) -> bool:
        org = self.backend.store.existing(org_id)
        return org is not None and (any(len(c) for c in org.collections.values()) or bool(org.tables))

    def apply(self, fixtures: list[OrgFixture], files: list[str] | None = None) -> list[SeedResult]:
        """Create the checked fixtures' entities and measurements, all or nothing: each
        organization is loaded into a copy of itself, under the store lock, and on any failure
        put back as it was (``_roll_back``)."""
        store = self.backend.store
        originals: dict[str, Organization | None] = {}
        results: list[SeedResult] = []
        failure: BaseException | None = None
        with store.lock:
            try:
                for index, fixture in enumerate(fixtures):
                    if fixture.org_id not in originals:
                        originals[fixture.org_id] = store.existing(fixture.org_id)
                        if originals[fixture.org_id] is not None:
                            store.replace_org(fixture.org_id, _copy(originals[fixture.org_id]))
                    try:
                        results.append(self._apply(fixture))
                    except MockError as error:
                        if files is not None:
                            raise _ApplyError(files[index], error) from None
                        raise
            except BaseException as error:
                failure = error
                # What was loaded goes at once; copies stand in until the work it queued is gone.
                for org_id, original in originals.items():
                    store.replace_org(org_id, _copy(original) if original is not None else None)
                self.backend.state.drop_work(set(originals))
        if failure is not None:
            self._roll_back(originals)
            raise failure
        self.backend.state.changed()
        return results

    def _roll_back(self, originals: dict[str, Organization | None]) -> None:
        """As a snapshot's restore: the work the failed load queued (a delivery of an Event it
        recorded) is dropped and what had started is let finish, outside the lock it needs;
        then the organizations are put back as they were, and what their state implies is
        queued again."""
        self.backend.state.put_back(originals)

    def _apply(self, fixture: OrgFixture) -> SeedResult:
        groups = self.groups()
        caller = Caller(fixture.org_id, CLIENT_ID)
        ids: dict[tuple[str, str], str] = {}
        created: dict[str, int] = {}
        for entry in fixture.entries:
            seedable = self.seedable[entry.group]
            body = resolve(entry.body, ids, groups)
            scope = {parameter: body.pop(parameter) for parameter in seedable.scope}
            try:
                entity = seedable.create(caller, body, scope)
            except MockError as error:
                raise FixtureError(fixture.where(entry), error.message, error.status) from None
            if entry.name is not None:
                ids[entry.key] = entity["id"]
            created[entry.group] = created.get(entry.group, 0) + 1
        count = self._submit(fixture, caller)
        return SeedResult(fixture.org_id, created, count,
                          {f"{group}/{name}": entity_id for (group, name), entity_id in ids.items()})

    def _submit(self, fixture: OrgFixture, caller: Caller) -> int:
        rows = fixture.measurements
        size = measurement_rules.MAX_BATCH
        for start in range(0, len(rows), size):
            try:
                self.backend.usage.submit(caller, rows[start:start + size])
            except MockError as error:
                # The batch's own index, made the list's.
                message = re.sub(r"^measurements\[(\d+)\]",
                                 lambda m: f"{MEASUREMENTS}[{int(m.group(1)) + start}]", error.message)
                raise FixtureError(fixture.where(), message, error.status) from None
        return len(rows)


class _ApplyError(Exception):
    def __init__(self, path: str, error: MockError):
        super().__init__(error.message)
        self.path, self.error = path, error


class _Placeholders(dict):
    """Stand-in ids for the references while bodies are validated."""

    def __missing__(self, key: tuple[str, str]) -> str:
        return placeholder_id(*key)


def _copy(org: Organization) -> Organization:
    """An independent copy of an organization, to load into (as a snapshot copies one)."""
    twin = Organization(org.org_id)
    twin.collections = pickle.loads(pickle.dumps(org.collections, pickle.HIGHEST_PROTOCOL))  # pragma: no mutate  any protocol copies alike
    twin.tables = copy.deepcopy(org.tables)
    return twin


# -- the generator's sizes ------------------------------------------------------------------

def size_from(body: dict) -> seed_faker.SeedSize:
    """The generator's sizes from the admin API's body (defaults where left out), checked."""
    defaults = seed_faker.SeedSize()
    values = {name: body.get(name, getattr(defaults, name)) for name in seed_faker.LIMITS}
    start = seed_faker.parse_start(body["start"]) if body.get("start") is not None else defaults.start
    return seed_faker.SeedSize(start=start, **values).check()


# -- fixture files -------------------------------------------------------------------------

class _FixtureLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML in which a key given twice in a mapping is an error (a reference name written
    twice would otherwise silently lose the first entity), and dates and times stay the
    strings they are written as (the m3ter API takes them as strings)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # unhashable: the constructor says so
                if repeated:
                    raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice in one mapping",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_FixtureLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key!r} is given twice in one object")
        seen[key] = value
    return seen


def parse_fixture(text: str, name: str) -> Any:
    """A fixture document from its text: JSON when ``name`` ends in ``.json``, YAML otherwise
    (a key given twice is an error in both). Raises ValueError with the line and column."""
    if name.lower().endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    try:
        return yaml.load(text, Loader=_FixtureLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ValueError(f"not YAML: {error.problem or error.context}{where}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not YAML: {error}") from None


def read_fixture_file(path: str | Path) -> Any:
    """The document in a seed file; SeedFileError (one line naming it) when it cannot be read."""
    shown = repr(str(path))
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise SeedFileError(f"seed file {shown}: cannot be read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SeedFileError(f"seed file {shown}: is not UTF-8 text") from None
    try:
        return parse_fixture(text, str(path))
    except ValueError as error:
        raise SeedFileError(f"seed file {shown}: {error}") from None


def dump_fixture(document: dict, name: str) -> str:
    """The text of a fixture document: JSON when ``name`` ends in ``.json``, YAML otherwise:
    entities in block style, and each measurement on one line as a JSON object (JSON's
    objects are YAML flow mappings; PyYAML's representers take ten times as long). In both,
    one measurement a line."""
    if name.lower().endswith(".json"):
        return _dump_json(document)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # pragma: no mutate  the C dumper is the faster of two that write alike
    lines = ["organizations:"]
    for org_id, content in document["organizations"].items():
        entities = {k: v for k, v in (content or {}).items() if k != MEASUREMENTS}
        rows = (content or {}).get(MEASUREMENTS)
        lines.append(f"  {json.dumps(org_id, ensure_ascii=False)}:" + ("" if entities or rows else " {}"))
        if entities:
            text = yaml.dump(entities, Dumper=dumper, sort_keys=False, allow_unicode=True, width=4096,
                             default_flow_style=False)
            lines += [f"    {line}" for line in text.splitlines()]
        if rows:
            lines.append(f"    {MEASUREMENTS}:")
            lines += [f"    - {json.dumps(row, ensure_ascii=False)}" for row in rows]  # json's separators: ", " and ": "
    return "\n".join(lines) + "\n"


def _dump_json(document: dict) -> str:
    """Indented JSON with one measurement a line (indenting each costs ten times as long)."""
    parts = []
    for org_id, content in document["organizations"].items():
        entities = {k: v for k, v in (content or {}).items() if k != MEASUREMENTS}
        rows = (content or {}).get(MEASUREMENTS) or []
        text = json.dumps(entities, indent=1, ensure_ascii=False)
        if rows:
            listed = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in rows)
            text = (text[:-2] + ",\n" if entities else "{\n") + f' "{MEASUREMENTS}": [\n{listed}\n ]\n}}'
        parts.append(f"{json.dumps(org_id, ensure_ascii=False)}: {text}")
    return '{"organizations": {\n' + ",\n".join(parts) + "\n}}\n"
