"""``m3ter-mock validate``: the project's specs pass, and each rule of the lint catches the
problem it is there for, at the right JSON path."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.validate import Spec, _structure, lint, pointer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("spec", ["openapi/m3ter.yaml", "openapi/admin.yaml"])
def test_the_projects_specs_pass(spec):
    """CI's run of ``m3ter-mock validate`` (the command, as a user runs it)."""
    result = subprocess.run([sys.executable, "-m", "mockserver", "validate", spec], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems" in result.stdout


def test_the_default_spec_is_the_mocks():
    result = subprocess.run([sys.executable, "-m", "mockserver", "validate"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "m3ter.yaml: 323 operations" in result.stdout


def test_a_problem_is_printed_with_its_path_and_the_exit_status_is_1(tmp_path):
    broken = tmp_path / "broken.yaml"
    text = (ROOT / "openapi" / "m3ter.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("operationId: GetSchedule", "operationId: GetEvent"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "mockserver", "validate", str(broken)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert ("#/paths/~1organizations~1{orgId}~1events~1{id}/get: [operation-id] operationId 'GetEvent' is also "
            "used at #/paths/~1organizations~1{orgId}~1dataexports~1schedules~1{id}/get") in result.stdout
    assert "[handler] handler 'GetSchedule' serves no operation of this spec" in result.stdout


def _ok(*_):
    return None


ORG = {"name": "orgId", "in": "path", "required": True, "schema": {"type": "string"}}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*codes):
    return {code: {"$ref": "#/components/responses/Error"} for code in codes}


BASE = {
    "openapi": "3.0.3",
    "info": {"title": "things", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/organizations/{orgId}/things": {
            "parameters": [ORG],
            "post": {
                "operationId": "CreateThing",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ThingRequest"}}}},
                "responses": {
                    "200": {"description": "created",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                            "links": {"Get": {"$ref": "#/components/links/GetThing"},
                                      "Update": {"$ref": "#/components/links/UpdateThing"}}},
                    **_errors("400", "401", "403", "415"),
                },
            },
        },
        "/organizations/{orgId}/things/{id}": {
            "parameters": [ORG, ID],
            "get": {
                "operationId": "GetThing",
                "responses": {"200": {"description": "the thing", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Thing"}}}}, **_errors("400", "401", "403", "404")},
            },
            "put": {
                "operationId": "UpdateThing",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ThingUpdate"}}}},
                "responses": {"200": {"description": "updated"},
                              **_errors("400", "401", "403", "404", "409", "415")},
            },
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {"Error": {"description": "an error", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"message": {"type": "string"}}}}}}},
        "links": {
            "GetThing": {"operationId": "GetThing", "parameters": {"id": "$response.body#/id"}},
            "UpdateThing": {"operationId": "UpdateThing", "parameters": {"path.id": "$response.body#/id"},
                            "requestBody": {"version": "$response.body#/version"}},
        },
        "schemas": {
            "ThingRequest": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "version": {"type": "integer"}},
                "example": {"name": "abc"},
            },
            "ThingUpdate": {"allOf": [{"$ref": "#/components/schemas/ThingRequest"}, {"required": ["version"]}],
                            "example": {"name": "abc", "version": 1}},
            "Thing": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                                       "version": {"type": "integer"}}},
        },
    },
}
HANDLERS = {"CreateThing": _ok, "GetThing": _ok, "UpdateThing": _ok}
THINGS = "/organizations/{orgId}/things"
THING = "/organizations/{orgId}/things/{id}"


def problems(document, handlers=HANDLERS, ecmascript=lambda patterns: {}):
    return [str(p) for p in lint(document, handlers=handlers, ecmascript=ecmascript).problems]


def changed(change):
    document = copy.deepcopy(BASE)
    change(document)
    return problems(document)


def test_the_base_document_is_clean():
    report = lint(copy.deepcopy(BASE), handlers=HANDLERS, ecmascript=lambda patterns: {})
    assert report.problems == []
    assert (report.operations, report.links) == (3, 4)


def test_openapi_spec_validator_runs_first():
    found = changed(lambda d: d["info"].pop("version"))
    assert '#/info: [openapi] "version" is a required property' in found


def test_a_dangling_ref():
    found = changed(lambda d: d["paths"][THING]["get"]["responses"].update(
        {"404": {"$ref": "#/components/responses/Missing"}}))
    assert any(p.startswith(f"{pointer('paths', THING, 'get', 'responses', '404')}: [ref]") for p in found)


def test_an_operation_without_a_handler_and_a_handler_without_an_operation():
    found = problems(copy.deepcopy(BASE), handlers={"CreateThing": _ok, "GetThing": _ok, "DeleteThing": _ok})
    assert f"{pointer('paths', THING, 'put')}: [handler] operationId 'UpdateThing' is bound to no handler" in found
    assert "#/paths: [handler] handler 'DeleteThing' serves no operation of this spec" in found


def test_an_example_that_does_not_match_its_schema():
    found = changed(lambda d: d["components"]["schemas"]["ThingRequest"].update(example={"name": 7}))
    assert any(p.startswith("#/components/schemas/ThingRequest/example: [example]") and "name: 7 is not of type 'string'"
               in p for p in found)


def test_an_example_inherited_through_allof_must_fit_the_composed_schema():
    """Schemathesis sends ThingRequest's example for ThingUpdate when ThingUpdate has none:
    it lacks the version an update requires."""
    found = changed(lambda d: d["components"]["schemas"]["ThingUpdate"].pop("example"))
    assert any(p.startswith("#/components/schemas/ThingUpdate: [example] the example inherited from "
                            "#/components/schemas/ThingRequest") and "'version' is a required property" in p
               for p in found)


def test_media_type_and_parameter_examples_are_checked():
    def change(d):
        d["paths"][THING]["parameters"] = [ORG, {**ID, "schema": {"type": "string", "maxLength": 3},
                                                 "example": "too-long"}]
    found = changed(change)
    assert any(p.startswith(f"{pointer('paths', THING, 'parameters', 1, 'example')}: [example]") for p in found)


@pytest.mark.parametrize(("status", "where"), [
    ("415", ("paths", THINGS, "post")), ("409", ("paths", THING, "put")), ("404", ("paths", THING, "get")),
    ("403", ("paths", THING, "get")), ("401", ("paths", THING, "get")), ("400", ("paths", THING, "get")),
])
def test_every_operation_documents_its_errors(status, where):
    found = changed(lambda d: d["paths"][where[1]][where[2]]["responses"].pop(status))
    assert any(p.startswith(f"{pointer(*where, 'responses')}: [errors] documents no {status} response")
               for p in found), found


def test_an_unauthenticated_capability_url_may_answer_403_for_an_unknown_value():
    def change(d):
        d["paths"]["/downloads/{token}"] = {"get": {
            "operationId": "Download", "security": [],
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"}, **_errors("400", "403")}}}
    document = copy.deepcopy(BASE)
    change(document)
    assert problems(document, handlers={**HANDLERS, "Download": _ok}) == []


@pytest.mark.parametrize(("pattern", "reason"), [
    ("^[a-z+$", "does not compile in Python"),
    ("^(?P<word>[a-z]+)$", "named groups written (?P<...>) are Python-only"),
    (r"^\p{L}+$", "means a Unicode class only with ECMAScript's u flag"),
    (r"^\Aabc$", "Python-only anchors"),
    ("^a*+$", "possessive quantifiers"),
    ("(?i)^abc$", "inline flags are Python-only"),
])
def test_patterns_must_be_python_and_ecmascript(pattern, reason):
    found = changed(lambda d: d["components"]["schemas"]["ThingRequest"]["properties"]["name"].update(pattern=pattern))
    where = "#/components/schemas/ThingRequest/properties/name/pattern: [pattern]"
    assert any(p.startswith(where) and reason in p for p in found), found


def test_constructs_inside_a_character_class_are_not_mistaken():
    assert _structure(r"^[()*+,;=%-]+(:\d+)?[!-~]*$") == r"^C+(:\d+)?C*$"
    found = changed(lambda d: d["components"]["schemas"]["ThingRequest"]["properties"]["name"].update(
        pattern=r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$"))
    assert found == []


def test_ecmascript_errors_reported_by_node_are_problems():
    document = copy.deepcopy(BASE)
    found = problems(document, ecmascript=lambda patterns: {"^[a-z]+$": "Invalid regular expression: nothing"})
    assert ("#/components/schemas/ThingRequest/properties/name/pattern: [pattern] does not compile in "
            "ECMAScript: Invalid regular expression: nothing") in found


def test_without_node_the_portability_rules_still_run():
    report = lint(copy.deepcopy(BASE), handlers=HANDLERS, ecmascript=lambda patterns: None)
    assert report.problems == [] and not report.ecmascript_checked


def test_node_compiles_the_projects_patterns_with_and_without_the_u_flag():
    from mockserver.validate import ecmascript_errors

    errors = ecmascript_errors(["^[a-z]+$", "^(?<=a)b$", "[", r"^\-$"])
    assert errors is not None, "Node.js is part of the dev machine"
    assert set(errors) == {"[", r"^\-$"}
    assert errors[r"^\-$"].startswith("with the u flag")


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["components"]["links"]["GetThing"].update(operationId="FetchThing"),
     "operationId 'FetchThing' is no operation of this spec"),
    (lambda d: d["components"]["links"]["GetThing"].update(parameters={"thingId": "$response.body#/id"}),
     "parameter 'thingId' is not a parameter of GET /organizations/{orgId}/things/{id}"),
    (lambda d: d["components"]["links"]["UpdateThing"].update(requestBody={"revision": "$response.body#/version"}),
     "requestBody field 'revision' is not a property of the body of PUT"),
    (lambda d: d["components"]["links"]["GetThing"].update(parameters={"id": "$response.body#/uuid"}),
     "$response.body#/uuid: the response of POST /organizations/{orgId}/things has no field 'uuid'"),
    (lambda d: d["components"]["links"]["GetThing"].update(parameters={"id": "$request.path.thing"}),
     "$request.path.thing: POST /organizations/{orgId}/things has no such parameter"),
    (lambda d: d["components"]["links"]["GetThing"].update(
        operationRef="#/paths/~1organizations~1{orgId}~1things~1{id}/patch"), "has both operationId and operationRef"),
])
def test_every_link_target_exists(change, message):
    found = changed(change)
    assert any("[link]" in p and message in p for p in found), found


def test_a_dangling_link_ref():
    found = changed(lambda d: d["components"]["links"].pop("UpdateThing"))
    assert (f"{pointer('paths', THINGS, 'post', 'responses', '200', 'links', 'Update')}: [ref] "
            "'#/components/links/UpdateThing' does not resolve") in found


def test_spec_resolution_reports_cycles():
    spec = Spec({"components": {"schemas": {"A": {"$ref": "#/components/schemas/A"}}}})
    with pytest.raises(KeyError):
        spec.deref({"$ref": "#/components/schemas/A"})
