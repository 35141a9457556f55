"""The lenient mode's generator (``mockserver.domain.fake_entities``): a schema in, one
realistic value out, the same for the same seed, valid against the schema, bounded."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import date, datetime
from urllib.parse import urlsplit

import pytest
from faker import Faker
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator

from mockserver.app import load_spec
from mockserver.domain.fake_entities import MAX_DEPTH, MAX_ITEMS, fake_entity, fake_value, from_pattern, seed_for

SPEC = load_spec()
SCHEMAS = SPEC["components"]["schemas"]
CHECKER = FormatChecker()


@CHECKER.checks("uri")
@CHECKER.checks("url")
def _absolute_url(value) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def seeded(*parts: str) -> Faker:
    faker = Faker()
    faker.seed_instance(seed_for(*parts))
    return faker


def validator(schema: dict) -> OAS30Validator:
    return OAS30Validator({**schema, "components": SPEC["components"]}, format_checker=CHECKER)


def get_by_id_schemas() -> dict[str, dict]:
    """path -> the 200 JSON schema of every GET on one entity (a path ending in a parameter)."""
    found = {}
    for path, item in SPEC["paths"].items():
        operation = item.get("get")
        if operation is None or not path.endswith("}"):
            continue
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if content is not None:
            found[path] = content["schema"]
    return found


GET_BY_ID = get_by_id_schemas()


def test_the_spec_has_the_get_by_id_operations_the_test_iterates_over():
    assert len(GET_BY_ID) >= 60
    assert GET_BY_ID["/organizations/{orgId}/accounts/{id}"] == {"$ref": "#/components/schemas/AccountResponse"}


@pytest.mark.parametrize("path", sorted(GET_BY_ID))
def test_every_get_by_id_response_is_generated_schema_valid(path):
    schema = GET_BY_ID[path]
    check = validator(schema)
    for n in range(5):
        value = fake_value(schema, seeded("org", path, f"id-{n}"), SCHEMAS)
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(value)]
        assert not problems, problems[:3]


def test_the_validator_is_not_vacuous():
    schema = {"$ref": "#/components/schemas/AccountResponse"}
    value = fake_value(schema, seeded("org", "accounts", "id"), SCHEMAS)
    assert validator(schema).is_valid(value)
    assert not validator(schema).is_valid({**value, "currency": 42})
    assert not validator(schema).is_valid({**value, "creditApplicationOrder": ["NOT-AN-ORDER"]})


def test_the_same_seed_gives_the_same_entity_and_another_id_another():
    schema = {"$ref": "#/components/schemas/PlanResponse"}
    first = fake_value(schema, seeded("org", "plans", "id"), SCHEMAS)
    again = fake_value(schema, seeded("org", "plans", "id"), SCHEMAS)
    other_id = fake_value(schema, seeded("org", "plans", "id2"), SCHEMAS)
    other_org = fake_value(schema, seeded("org2", "plans", "id"), SCHEMAS)
    assert first == again
    assert first != other_id and first != other_org


def test_the_seed_is_stable_across_processes():
    # sha256-based, not hash(): PYTHONHASHSEED changes nothing.
    code = "from mockserver.domain.fake_entities import seed_for; print(seed_for('org', 'plans', 'id'))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(n), "PATH": ""}).stdout for n in (1, 2)}
    assert runs == {f"{seed_for('org', 'plans', 'id')}\n"}


def test_only_the_given_faker_is_used_never_the_global_random():
    state = random.getstate()
    fake_value({"$ref": "#/components/schemas/AccountResponse"}, seeded("org", "accounts", "x"), SCHEMAS)
    assert random.getstate() == state


def test_fake_entity_keeps_the_fixed_fields():
    entity = fake_entity({"$ref": "#/components/schemas/ProductResponse"}, seeded("o", "products", "id"), SCHEMAS,
                         id="id", version=1)
    assert entity["id"] == "id" and entity["version"] == 1
    assert {"name", "code"} <= set(entity)


def test_required_fields_enums_and_formats():
    schema = {
        "type": "object", "required": ["id", "kind", "at", "on", "email", "site"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string", "enum": ["A", "B", "C"]},
            "at": {"type": "string", "format": "date-time"},
            "on": {"type": "string", "format": "date"},
            "email": {"type": "string", "format": "email"},
            "site": {"type": "string", "format": "uri"},
        }}
    for n in range(30):
        value = fake_value(schema, seeded("formats", str(n)))
        assert validator(schema).is_valid(value)
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value["id"])
        assert value["kind"] in ("A", "B", "C")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value["at"])  # as m3ter writes them
        moment = datetime.fromisoformat(value["at"].replace("Z", "+00:00"))
        assert 2024 <= moment.year <= 2025 and 2024 <= date.fromisoformat(value["on"]).year <= 2025
        assert "@" in value["email"]


def test_lengths_ranges_and_multiples():
    schema = {"type": "object", "properties": {
        "short": {"type": "string", "minLength": 2, "maxLength": 3},
        "long": {"type": "string", "minLength": 40},
        "count": {"type": "integer", "minimum": 5, "maximum": 7},
        "positive": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 0.5},
        "step": {"type": "integer", "minimum": 1, "maximum": 100, "multipleOf": 15},
        "int32": {"type": "integer", "format": "int32"},
    }}
    for n in range(50):
        value = fake_value(schema, seeded("ranges", str(n)))
        assert 2 <= len(value["short"]) <= 3 and len(value["long"]) >= 40
        assert value["count"] in (5, 6, 7)
        assert 0 < value["positive"] <= 0.5
        assert value["step"] in (15, 30, 45, 60, 75, 90)
        assert -(2 ** 31) <= value["int32"] < 2 ** 31


@pytest.mark.parametrize("pattern", [
    r"^[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F_$][A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F_$0-9]*$",
    r"^[^\x00-\x20\x7F-\x9F](?:[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F])?$",
    r"^arn:aws:iam::\d+:role/.*$",
    r"^(?![\s\S]{64})(?!xn--|sthree-|amzn-s3-demo-)(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)"
    r"(?![0-9]{1,3}(?:\.[0-9]{1,3}){3}$)[a-z0-9](?:\.?[a-z0-9-])*\.?[a-z0-9](?![\s\S])",
    r"^[A-Za-z0-9_-]{1,64}$",
])
def test_strings_follow_the_specs_patterns(pattern):
    rng = random.Random(7)
    for _ in range(50):
        text = from_pattern(pattern, rng, 1, 80)
        assert text is not None and re.search(pattern, text) and 1 <= len(text) <= 80, text


def test_a_pattern_on_a_named_field_wins_over_the_realistic_guess():
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}}}
    for n in range(20):
        assert re.fullmatch(r"[A-Z]{3}-[0-9]{4}", fake_value(schema, seeded("pattern", str(n)))["code"])


def test_field_names_pick_realistic_values():
    schema = {"$ref": "#/components/schemas/AccountResponse"}
    value = fake_value(schema, seeded("org", "accounts", "id"), SCHEMAS)
    assert "@" in value["emailAddress"]
    assert re.fullmatch(r"[A-Z]{3}", value["currency"])
    assert re.fullmatch(r"[0-9a-f-]{36}", value["parentAccountId"])


def test_an_example_is_used_when_it_fits():
    schema = {"type": "object", "properties": {
        "unit": {"type": "string", "example": "GB-hour"},
        "tier": {"type": "string", "maxLength": 3, "example": "much too long"},
    }}
    value = fake_value(schema, seeded("example"))
    assert value["unit"] == "GB-hour"
    assert len(value["tier"]) <= 3  # the example does not fit: generated instead
    whole = fake_value({"$ref": "#/components/schemas/ExportDestinationS3Request"}, seeded("s3"), SCHEMAS)
    assert whole["bucketName"] == "acme-m3ter-exports"  # the object's example, field by field


def test_one_of_branch_with_its_discriminator_value():
    schema = {"$ref": "#/components/schemas/DataExportScheduleRequest"}
    seen = set()
    for n in range(20):
        value = fake_value(schema, seeded("oneOf", str(n)), SCHEMAS)
        assert validator(schema).is_valid(value), value
        seen.add(value["sourceType"])
    assert seen == {"OPERATIONAL", "USAGE"}


def test_all_of_parts_are_merged_with_every_required_field():
    schema = {"allOf": [
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 10, "maximum": 10}}},
        {"required": ["b"], "properties": {"b": {"type": "boolean"}, "a": {"maximum": 10}}},
    ]}
    value = fake_value(schema, seeded("allOf"))
    assert value["a"] == 10 and isinstance(value["b"], bool)


def test_dates_of_a_pair_run_forwards():
    schema = {"type": "object", "properties": {
        "startDate": {"type": "string", "format": "date"}, "endDate": {"type": "string", "format": "date"},
        "servicePeriodStartDate": {"type": "string", "format": "date-time"},
        "servicePeriodEndDate": {"type": "string", "format": "date-time"},
        "dtCreated": {"type": "string", "format": "date-time"},
        "dtLastModified": {"type": "string", "format": "date-time"},
    }}
    for n in range(40):
        value = fake_value(schema, seeded("pairs", str(n)))
        assert value["startDate"] <= value["endDate"]
        assert value["servicePeriodStartDate"] <= value["servicePeriodEndDate"]
        assert value["dtCreated"] <= value["dtLastModified"]


def test_recursion_and_arrays_are_bounded():
    schemas = {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        "parent": {"$ref": "#/components/schemas/Node"},
    }}}

    def depth(node: dict) -> int:
        inner = [node["parent"]] if "parent" in node else []
        inner += node.get("children", [])
        return 1 + max((depth(n) for n in inner), default=0)

    for n in range(10):
        value = fake_value({"$ref": "#/components/schemas/Node"}, seeded("tree", str(n)), schemas)
        assert depth(value) <= MAX_DEPTH + 1
        assert len(value.get("children", [])) <= MAX_ITEMS
    many = fake_value({"type": "array", "minItems": 5, "maxItems": 1000, "items": {"type": "integer"}}, seeded("a"))
    assert len(many) == 5  # minItems wins over the bound; never up to maxItems


def test_unique_items_are_distinct():
    schema = {"type": "array", "uniqueItems": True, "minItems": 3, "maxItems": 3,
              "items": {"type": "string", "enum": ["A", "B", "C"]}}
    for n in range(20):
        assert sorted(fake_value(schema, seeded("unique", str(n)))) == ["A", "B", "C"]


def test_a_map_of_custom_fields_holds_strings_or_numbers():
    value = fake_value({"$ref": "#/components/schemas/CustomFields"}, seeded("custom"), SCHEMAS)
    assert 1 <= len(value) <= 2 and all(isinstance(v, (str, int, float)) for v in value.values())


def test_module_does_not_import_the_web_stack():
    code = (
        "import sys, mockserver.domain.fake_entities; "
        "bad = [m for m in ('flask', 'connexion', 'httpx', 'mockserver.backend') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
