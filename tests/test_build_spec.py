"""tools/build_spec.py: adds what the spec lacks from m3ter's published document, touches
nothing curated, copies no prose, and gives every added operation an ``x-mock``.

Most tests run the tool on the project's spec with a small reference written here; the last
group runs it on m3ter's real published document when it is on this machine (it is never
copied into the project)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi" / "m3ter.yaml"
# m3ter's published document stays outside the project; point M3TER_OPENAPI_REFERENCE at it.
REFERENCE_PATH = Path(os.environ.get("M3TER_OPENAPI_REFERENCE",
                                     ROOT.parent / "shared" / "reference" / "m3ter-openapi.json"))
METHODS = ("get", "put", "post", "delete", "patch")
ORG = "/organizations/{orgId}"

_module_spec = importlib.util.spec_from_file_location("build_spec", ROOT / "tools" / "build_spec.py")
build_spec = importlib.util.module_from_spec(_module_spec)
_module_spec.loader.exec_module(build_spec)

SPEC_TEXT = SPEC_PATH.read_text(encoding="utf-8")


def _without_path(text: str, path: str) -> str:
    """The spec text without one path item (its block of lines)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"  {path}:\n")
    end = next(k for k in range(start + 1, len(lines)) if lines[k].startswith("  /") or not lines[k].startswith(" "))
    return "".join(lines[:start] + lines[end:])


# The project's spec holds the whole API; the small reference below adds widgets, methods on
# existing paths and a singleton, so the tool starts from the spec without its billconfig.
BASE_TEXT = _without_path(SPEC_TEXT, "/organizations/{orgId}/billconfig")
CURATED = build_spec.load(BASE_TEXT)
BASE_OPERATIONS = 321
PROSE = "REFERENCE PROSE that must not reach the project"
JAVA_CODE = r"^([^[\p{Cntrl}\s]])|([^[\p{Cntrl}\s]][[^[\p{Cntrl}\s]] ]*[^[\p{Cntrl}\s]])$"
JAVA_LETTERS = r"^[\p{L}_$][\p{L}_$0-9]*$"


def _param(name, where="path", schema=None):
    return {"name": name, "in": where, "description": PROSE, "required": where == "path",
            "style": "simple" if where == "path" else "form", "explode": False,
            "schema": schema or {"type": "string", "deprecated": True, "x-stainless-deprecation-message": PROSE}}


def _op(op_id, response=None, body=None, params=(), tags=("Widget",)):
    op = {"tags": list(tags), "summary": PROSE, "description": PROSE, "operationId": op_id,
          "parameters": [_param("orgId"), *params],
          "responses": {"200": {"description": PROSE}, "4XX": {"$ref": "#/components/responses/Error"},
                        "5XX": {"$ref": "#/components/responses/Error"}}}
    if response:
        schema = {"$ref": f"#/components/schemas/{response}"}
        op["responses"]["200"]["content"] = {"application/json": {"schema": schema}}
    if body:
        op["requestBody"] = {"description": PROSE, "required": True,
                             "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return op


def _reference() -> dict:
    """A small published document in m3ter's style: its quirks, and prose everywhere."""
    page = [_param("pageSize", "query", {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100}),
            _param("nextToken", "query", {"type": "string"}),
            _param("ids", "query", {"type": "array", "items": {"type": "string"}}),
            _param("productId", "query", {"type": "string", "minimum": 36, "maximum": 36}),
            _param("X-Trace", "header", {"type": "string"})]
    item = [_param("id")]
    parent = [_param("widgetId")]
    paths = {
        f"{ORG}/widgets": {"get": _op("ListWidgets", "PaginatedWidgetResponseData", params=page),
                           "post": _op("PostWidget", "WidgetResponse", "WidgetRequest")},
        f"{ORG}/widgets/{{id}}": {"get": _op("GetWidget", "WidgetResponse", params=item),
                                  "put": _op("PutWidget", "WidgetResponse", "WidgetRequest", params=item),
                                  "delete": _op("DeleteWidget", "WidgetResponse", params=item)},
        f"{ORG}/widgets/search": {"get": _op("SearchWidgets", "PaginatedWidgetResponseData")},
        f"{ORG}/widgets/{{id}}/approve": {"post": _op("ApproveWidget", "WidgetResponse", params=item)},
        f"{ORG}/widgets/{{widgetId}}/parts": {"get": _op("ListParts", "PaginatedPartResponseData", params=parent),
                                              "post": _op("PostPart", "PartResponse", "PartRequest", params=parent)},
        f"{ORG}/widgets/{{widgetId}}/parts/{{id}}": {"get": _op("GetPart", "PartResponse", params=[*parent, *item])},
        f"{ORG}/billconfig": {"get": _op("GetBillConfig", "BillConfigResponse"),
                              "put": _op("UpdateBillConfig", "BillConfigResponse", "BillConfigRequest")},
        # curated operations, described differently here: they must stay as the project wrote them
        f"{ORG}/compoundaggregations/{{id}}": {
            "get": _op("GetCompoundAggregation", "WidgetResponse", params=item),
            "patch": _op("PatchCompoundAggregation", "WidgetResponse", "WidgetRequest", params=item)},
        f"{ORG}/events/{{id}}": {"get": _op("GetEvent", "WidgetResponse", params=item),
                                 "delete": _op("DeleteEvent", "WidgetResponse", params=item)},
        "/oauth/token": {"post": _op("GenerateToken", "WidgetResponse")},
    }
    abstract = {"$ref": "#/components/schemas/AbstractResponse"}
    schemas = {
        "AbstractResponse": {"type": "object", "required": ["id"], "description": PROSE,
                             "properties": {"id": {"type": "string", "description": PROSE},
                                            "version": {"type": "integer", "format": "int64"}}},
        "WidgetRequest": {
            "type": "object", "title": PROSE, "description": PROSE, "required": ["name"],
            "example": {"name": "example-widget-from-the-reference"},
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": PROSE,
                         "example": "example-widget-from-the-reference"},
                "code": {"type": "string", "maxLength": 80, "pattern": JAVA_CODE},
                "tag": {"type": "string", "pattern": JAVA_LETTERS},
                "count": {"type": "integer", "minimum": 0, "maximum": 10, "x-stainless-skip": True},
                "sizeId": {"type": "string", "minimum": 36, "maximum": 36},
                "rounding": {"allOf": [{"$ref": "#/components/schemas/Rounding"}, {"description": PROSE}]},
                "version": {"type": "integer", "format": "int64"}}},
        "WidgetResponse": {"type": "object", "description": PROSE,
                           "allOf": [abstract, {"properties": {"name": {"type": "string"},
                                                               "code": {"type": "string"}}}]},
        "PaginatedWidgetResponseData": {"type": "object", "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/WidgetResponse"}},
            "nextToken": {"type": "string"}}},
        "PartRequest": {"type": "object", "properties": {"name": {"type": "string"}}},
        "PartResponse": {"type": "object", "allOf": [abstract, {"properties": {"widgetId": {"type": "string"}}}]},
        "PaginatedPartResponseData": {"type": "object", "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/PartResponse"}},
            "nextToken": {"type": "string"}}},
        "BillConfigRequest": {"type": "object", "properties": {"billLockDate": {"type": "string", "format": "date"}}},
        "BillConfigResponse": {"type": "object", "allOf": [abstract, {"properties": {
            "billLockDate": {"type": "string", "format": "date"}}}]},
        "Rounding": {"type": "string", "enum": ["SIDEWAYS"]},  # the curated Rounding must win
        "Orphan": {"type": "object", "description": "referred to by nothing"},
    }
    return {"openapi": "3.0.1", "info": {"title": PROSE, "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "responses": {"Error": {"description": PROSE}}}}


def _operations(spec: dict) -> dict:
    return {(path, method): op for path, item in spec["paths"].items() for method, op in item.items()
            if method in METHODS}


@pytest.fixture(scope="module")
def built():
    text, summary = build_spec.build(_reference(), BASE_TEXT)
    return text, build_spec.load(text), summary


def test_added_operations_carry_the_resource_and_action_of_design_section_2(built):
    _, spec, summary = built
    ops = _operations(spec)
    expected = {
        (f"{ORG}/widgets", "get"): {"resource": "widgets", "action": "list"},
        (f"{ORG}/widgets", "post"): {"resource": "widgets", "action": "create"},
        (f"{ORG}/widgets/{{id}}", "get"): {"resource": "widgets", "action": "retrieve"},
        (f"{ORG}/widgets/{{id}}", "put"): {"resource": "widgets", "action": "update"},
        (f"{ORG}/widgets/{{id}}", "delete"): {"resource": "widgets", "action": "delete"},
        (f"{ORG}/widgets/{{widgetId}}/parts", "get"): {"resource": "widgets/{widgetId}/parts", "action": "list"},
        (f"{ORG}/widgets/{{widgetId}}/parts", "post"): {"resource": "widgets/{widgetId}/parts", "action": "create"},
        (f"{ORG}/widgets/{{widgetId}}/parts/{{id}}", "get"): {"resource": "widgets/{widgetId}/parts",
                                                             "action": "retrieve"},
        (f"{ORG}/billconfig", "get"): {"resource": "billconfig", "action": "read"},
        (f"{ORG}/billconfig", "put"): {"resource": "billconfig", "action": "replace"},
        (f"{ORG}/widgets/search", "get"): {"action": "unimplemented",
                                           "reason": "search expressions are not supported yet"},
        (f"{ORG}/widgets/{{id}}/approve", "post"): {"action": "unimplemented",
                                                    "reason": "this action is not implemented yet"},
        (f"{ORG}/compoundaggregations/{{id}}", "patch"): {"action": "unimplemented",
                                                          "reason": "this action is not implemented yet"},
        (f"{ORG}/events/{{id}}", "delete"): {"action": "unimplemented",
                                             "reason": "this action is not implemented yet"},
    }
    assert {key: ops[key]["x-mock"] for key in set(ops) - set(_operations(CURATED))} == expected
    assert sum(summary["operations"].values()) == 14
    assert summary["operations"]["unimplemented"] == 4
    assert ops[(f"{ORG}/widgets/{{id}}/approve", "post")]["responses"]["501"] == {
        "$ref": "#/components/responses/NotImplemented"}
    assert spec["components"]["responses"]["NotImplemented"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}


def test_added_operations_document_the_projects_errors_and_drop_m3ters_ranges(built):
    _, spec, _ = built
    ops = _operations(spec)
    put = ops[(f"{ORG}/widgets/{{id}}", "put")]
    assert set(put["responses"]) == {"200", "400", "401", "403", "404", "409", "413", "415"}
    assert put["responses"]["404"] == {"$ref": "#/components/responses/NotFound"}
    listing = ops[(f"{ORG}/widgets", "get")]
    assert set(listing["responses"]) == {"200", "400", "401", "403"}
    assert listing["parameters"][:3] == [{"$ref": "#/components/parameters/PageSize100"},
                                         {"$ref": "#/components/parameters/NextToken"},
                                         {"$ref": "#/components/parameters/Ids"}]
    names = [p.get("name") for p in listing["parameters"]]
    assert "X-Trace" not in names  # header parameters are dropped
    product = next(p for p in listing["parameters"] if p.get("name") == "productId")
    assert product["schema"] == {"type": "string"}  # m3ter's minimum/maximum on a string mean nothing
    assert spec["paths"][f"{ORG}/widgets/{{id}}"]["parameters"] == [
        {"$ref": "#/components/parameters/OrgId"}, {"$ref": "#/components/parameters/Id"}]
    parent = spec["paths"][f"{ORG}/widgets/{{widgetId}}/parts"]["parameters"][1]
    assert parent["name"] == "widgetId" and parent["schema"] == {"$ref": "#/components/schemas/PathId"}


def test_curated_operations_schemas_and_comments_are_untouched(built):
    text, spec, _ = built
    before, after = _operations(CURATED), _operations(spec)
    assert len(before) == BASE_OPERATIONS
    for key, op in before.items():
        assert after[key] == op, key
    for name, schema in CURATED["components"]["schemas"].items():
        assert spec["components"]["schemas"][name] == schema, name
    assert spec["components"]["schemas"]["Rounding"]["enum"] == ["UP", "DOWN", "NEAREST", "NONE"]
    for name in ("links", "securitySchemes"):
        assert spec["components"][name] == CURATED["components"][name]
    assert spec["info"] == CURATED["info"] and spec["security"] == CURATED["security"]
    comments = [line for line in BASE_TEXT.splitlines() if line.strip().startswith("#")]
    assert all(line in text.splitlines() for line in comments)
    # Every curated line is still there, in order; only the OrgId parameter was rewritten.
    rest = iter(_without_org_id(text))
    assert [line for line in _without_org_id(BASE_TEXT) if line not in rest] == []


def _without_org_id(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("    OrgId:")
    end = lines.index("    Id:", start)
    return lines[:start] + lines[end:]


def test_a_second_run_changes_nothing(built):
    text, _, _ = built
    again, summary = build_spec.build(_reference(), text)
    assert again == text
    assert sum(summary["operations"].values()) == 0 and summary["schemas"] == []


def test_the_cli_writes_out_and_a_second_run_leaves_the_file_as_it_is(tmp_path):
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(_reference()), encoding="utf-8")
    spec = tmp_path / "m3ter.yaml"
    spec.write_text(BASE_TEXT, encoding="utf-8")
    out = tmp_path / "gen" / "m3ter.yaml"
    run = [sys.executable, str(ROOT / "tools" / "build_spec.py"), str(reference), "--spec", str(spec)]
    first = subprocess.run([*run, "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"operations added: 14 (the spec now has {BASE_OPERATIONS + 14})" in first.stdout
    assert spec.read_text(encoding="utf-8") == BASE_TEXT  # --out leaves --spec alone
    written = out.read_text(encoding="utf-8")
    in_place = subprocess.run([sys.executable, str(ROOT / "tools" / "build_spec.py"), str(reference),
                               "--spec", str(out)], capture_output=True, text=True, timeout=60)
    assert in_place.returncode == 0, in_place.stderr
    assert f"operations added: 0 (the spec now has {BASE_OPERATIONS + 14})" in in_place.stdout
    assert out.read_text(encoding="utf-8") == written


def test_no_prose_example_or_vendor_extension_of_the_reference_is_copied(built):
    text, spec, _ = built
    assert "REFERENCE PROSE" not in text
    assert "example-widget-from-the-reference" not in text
    assert "x-stainless" not in text
    assert "title" not in spec["components"]["schemas"]["WidgetRequest"]
    assert spec["paths"][f"{ORG}/widgets"]["get"]["summary"] == "List widgets"
    assert "Orphan" not in spec["components"]["schemas"]  # only what the operations need is added


def test_java_patterns_become_the_portable_forms_and_every_pattern_compiles(built):
    _, spec, _ = built
    props = spec["components"]["schemas"]["WidgetRequest"]["properties"]
    assert props["code"]["pattern"] == CURATED["components"]["schemas"]["Code"]["pattern"]
    assert props["tag"]["pattern"] == CURATED["components"]["schemas"]["AggregationCode"]["pattern"]
    assert props["sizeId"] == {"type": "string"}
    assert props["rounding"] == {"$ref": "#/components/schemas/Rounding"}
    patterns = list(_patterns(spec))
    assert len(patterns) >= 5
    for pattern in patterns:
        re.compile(pattern)


def _patterns(node):
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for key, value in node.items():
            if key != "example":
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_the_org_id_parameter_accepts_any_id_as_m3ter_publishes_it(built):
    _, spec, _ = built
    org_id = spec["components"]["parameters"]["OrgId"]
    assert "pattern" not in org_id["schema"]
    assert OAS30Validator(org_id["schema"]).is_valid("My Org ID")
    assert org_id["name"] == "orgId" and org_id["in"] == "path" and org_id["required"] is True


def test_new_methods_on_curated_paths_go_into_those_path_items(built):
    text, spec, _ = built
    item = spec["paths"][f"{ORG}/compoundaggregations/{{id}}"]
    assert set(item) == {"parameters", "get", "put", "delete", "patch"}
    assert item["patch"]["operationId"] == "PatchCompoundAggregation"
    assert "parameters" not in item["patch"]  # orgId and id are the path item's already
    assert text.count(f"  {ORG}/compoundaggregations/{{id}}:\n") == 1
    assert set(spec["paths"][f"{ORG}/events/{{id}}"]) == {"parameters", "get", "delete"}
    assert spec["paths"][f"{ORG}/events/{{id}}"]["delete"]["operationId"] == "DeleteEvent"


def test_the_result_is_valid_openapi_303(built):
    _, spec, _ = built
    assert spec["openapi"] == "3.0.3"
    validate(spec)


# ------------------------------------------------------------ m3ter's real published document

needs_reference = pytest.mark.skipif(not REFERENCE_PATH.exists(),
                                     reason="m3ter's published document is not on this machine")


@pytest.fixture(scope="module")
def whole():
    reference = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    text, summary = build_spec.build(reference, SPEC_TEXT)
    return reference, text, build_spec.load(text), summary


@needs_reference
def test_the_whole_api_is_in_the_spec_and_a_run_adds_nothing(whole):
    """The shipped spec holds all 323 operations; the tool adds nothing to it and does not
    put back an ``x-mock`` the project removed (an operation it has is never touched)."""
    reference, text, spec, summary = whole
    ops = _operations(spec)
    assert len(ops) == 323
    assert len({op["operationId"] for op in ops.values()}) == 323
    assert sum(summary["operations"].values()) == 0 and summary["schemas"] == []
    assert text == SPEC_TEXT
    assert {(p, m) for p, item in reference["paths"].items() for m in item if m in METHODS} == set(ops)
    for key, op in ops.items():
        x_mock = op.get("x-mock")
        if x_mock is None:
            continue
        assert x_mock["action"] in {"list", "create", "retrieve", "update", "delete", "read", "replace",
                                    "unimplemented"}, key
        assert ("reason" in x_mock) == (x_mock["action"] == "unimplemented"), key
        assert ("resource" in x_mock) != (x_mock["action"] == "unimplemented"), key
        assert ("501" in op["responses"]) == (x_mock["action"] == "unimplemented"), key


@needs_reference
def test_the_tool_classifies_the_280_operations_it_added(whole):
    """What the tool gave the operations it added to the 43 hand-written ones (design section 2)."""
    from collections import Counter

    from mockserver.api.registry import HANDLERS

    reference = whole[0]
    classifier = build_spec.Classifier(reference)
    actions = Counter(classifier.classify(path, method)["action"] for path, item in reference["paths"].items()
                      for method, op in item.items() if method in METHODS and op["operationId"] not in HANDLERS)
    assert actions == {"list": 43, "create": 38, "retrieve": 42, "update": 35, "delete": 36, "read": 4,
                       "replace": 4, "unimplemented": 78}


@needs_reference
@pytest.mark.parametrize(("method", "path", "x_mock"), [
    ("get", "/bills", {"resource": "bills", "action": "list"}),
    ("delete", "/bills/{id}", {"resource": "bills", "action": "delete"}),
    ("post", "/bills/preview", {"action": "unimplemented",
                                "reason": "bill actions need the billing engine, which comes next"}),
    ("post", "/statementjobs/batch", {"action": "unimplemented",
                                      "reason": "statement jobs need the billing engine, which comes next"}),
    ("get", "/integrationconfigs/available", {"action": "unimplemented",
                                              "reason": "integration system catalogues are not implemented yet"}),
    ("put", "/commitments/{id}", {"resource": "commitments", "action": "update"}),
    ("post", "/balances/{balanceId}/transactions", {"resource": "balances/{balanceId}/transactions",
                                                    "action": "create"}),
    ("get", "/resourcegroups/{type}/{id}", {"resource": "resourcegroups/{type}", "action": "retrieve"}),
    ("get", "/lookuptables/{lookupTableId}/revisions", {"resource": "lookuptables/{lookupTableId}/revisions",
                                                        "action": "list"}),
    ("get", "/picklists/currency/{id}", {"resource": "picklists/currency", "action": "retrieve"}),
    ("put", "/organizationconfig", {"resource": "organizationconfig", "action": "replace"}),
    ("get", "/customfields", {"resource": "customfields", "action": "read"}),
    ("get", "/users", {"resource": "users", "action": "list"}),
    ("get", "/integrationruns/{entityType}/latest", {
        "action": "unimplemented", "reason": "integration runs are recorded only for webhook deliveries so far"}),
    ("post", "/measurements", {"action": "unimplemented",
                               "reason": "usage ingestion needs the usage engine, which comes next"}),
])
def test_the_whole_api_classification(whole, method, path, x_mock):
    reference = whole[0]
    assert build_spec.Classifier(reference).classify(ORG + path, method) == x_mock


@needs_reference
def test_the_whole_api_copies_no_sentence_of_the_reference(whole):
    reference, text, _, _ = whole
    sentences = set()

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary", "title") and isinstance(value, str):
                    sentences.update(s.strip() for s in re.split(r"(?<=[.!?])\s|\n", value) if len(s.strip()) >= 30)
                elif key in ("example", "examples"):
                    sentences.update(v for v in _strings(value) if len(v) >= 12 and " " in v)
                else:
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(reference)
    # Short strings the hand-written part shares with the reference's examples: a schema name
    # and two notification descriptions, written for the 43 curated operations.
    shared = {"ExportDestinationGoogleCloudStorageRequest", "Commitment amount fell below 10%",
              "Commitment has under 10% remaining"}
    copied = sorted(s for s in sentences if s in text and s not in shared)
    assert copied == []


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@needs_reference
def test_the_whole_api_is_valid_idempotent_and_loads_in_connexion(whole):
    reference, text, spec, _ = whole
    validate(copy.deepcopy(spec))
    assert build_spec.build(reference, text)[0] == text
    import connexion
    from connexion.resolver import Resolver

    app = connexion.FlaskApp(__name__)
    app.add_api(build_spec.load(text), resolver=Resolver(function_resolver=lambda _: (lambda **kw: None)))
