"""The mock's kit around the API that mutation testing found unpinned: the lenient mode's
spec (a bearer on the token endpoint, any version, the entity schema it generates from),
seed fixtures (a nested entity without its parent, what loading a seed file logs), the
state file's saver thread, and how the generic engine reads the spec (x-mock refusals,
labels, a list-only resource, references and composition)."""

from __future__ import annotations

import copy
from datetime import timedelta
import logging
import threading

import pytest

from mockserver.app import create_app
from mockserver.backend.lenient import entity_schema, lenient_spec, success_schema
from mockserver.backend.core import Backend
from mockserver.backend.crud import Caller
from mockserver.backend.seeding import SeedFileError, parse_fixture, read_fixture_file
from mockserver.backend.shapes import FilterRule, QueryParameter, Schemas, derive_shapes, filter_rule, mock_operations
from mockserver.domain.clock import from_iso
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for, make_settings

ORG = "org-pinned-kit"
PREFIX = "/organizations/{orgId}/"


def answer(schema: dict, status: str = "200") -> dict:
    return {"responses": {status: {"description": "d", "content": {"application/json": {"schema": schema}}}}}


# -- the lenient mode's spec -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def lenient_app():
    return create_app(make_settings(lenient=True))


def test_the_lenient_token_endpoint_takes_a_bearer_token_as_well_as_basic_credentials(lenient_app):
    http = lenient_app.test_client()
    by_bearer = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                          headers={"Authorization": "Bearer any-preset-token"})
    assert by_bearer.status_code == 200, by_bearer.text
    assert by_bearer.json()["expires_in"] == 18000


def test_the_lenient_spec_adds_the_bearer_scheme_to_the_token_endpoint_and_leaves_the_original_alone():
    spec = {"paths": {"/oauth/token": {"post": {"security": [{"BasicAuth": []}]}}},
            "components": {"securitySchemes": {"OAuth2": {"type": "oauth2"}, "BasicAuth": {"type": "http"}}}}
    original = copy.deepcopy(spec)
    relaxed = lenient_spec(spec)
    assert relaxed["paths"]["/oauth/token"]["post"]["security"] == [{"BasicAuth": []}, {"OAuth2": []}]
    assert spec == original


def test_the_lenient_spec_drops_the_version_rules_wherever_they_are_written():
    spec = {"components": {"schemas": {
        "Version": {"type": "integer", "minimum": 1},
        "Body": {"allOf": [{"$ref": "#/components/schemas/Fields"}, {"required": ["version"]}]},
        "Inline": {"type": "object", "properties": {"version": {"type": "integer", "minimum": 1},
                                                    "count": {"type": "integer", "minimum": 1}}}}}}
    schemas = lenient_spec(spec)["components"]["schemas"]
    assert schemas["Version"] == {"type": "integer"}
    assert schemas["Body"] == {"allOf": [{"$ref": "#/components/schemas/Fields"}]}
    assert schemas["Inline"]["properties"] == {"version": {"type": "integer"},
                                               "count": {"type": "integer", "minimum": 1}}


def test_a_lenient_put_may_send_version_zero_where_the_spec_says_at_least_one(lenient_app):
    http = lenient_app.test_client()
    auth = {"Authorization": "Bearer any-preset-token"}
    response = http.put(f"/organizations/{ORG}/products/some-id", json={"name": "P", "code": "p", "version": 0},
                        headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "P"


def test_the_entity_schema_is_the_put_answer_then_the_create_answer_then_the_get_by_id_answer():
    thing, made, read = ({"title": name, "type": "object"} for name in ("Put", "Post", "Get"))
    paths = {PREFIX + "things/{id}": {"put": answer(thing), "get": answer(read)},
             PREFIX + "things": {"post": answer(made)}}
    assert entity_schema({"paths": paths}, "things") == thing
    del paths[PREFIX + "things/{id}"]["put"]
    assert entity_schema({"paths": paths}, "things") == made
    del paths[PREFIX + "things"]
    assert entity_schema({"paths": paths}, "things") == read
    # A path one level deeper, or not ending in a parameter, is not the entity's.
    assert entity_schema({"paths": {PREFIX + "things/{id}/runs": {"get": answer(read)},
                                    PREFIX + "things/{id}:go": {"get": answer(read)}}}, "things") is None


def test_the_entity_schema_of_a_list_only_resource_is_its_pages_item():
    item = {"$ref": "#/components/schemas/Thing"}
    spec = {"paths": {PREFIX + "things": {"get": answer({"$ref": "#/components/schemas/Page"})}},
            "components": {"schemas": {
                "Thing": {"type": "object", "properties": {"id": {"type": "string"}}},
                "Page": {"type": "object", "properties": {"data": {"type": "array", "items": item},
                                                          "nextToken": {"type": "string"}}}}}}
    assert entity_schema(spec, "things") == item
    # A singleton's GET answers the entity itself, not a page.
    spec["paths"][PREFIX + "things"]["get"] = answer({"$ref": "#/components/schemas/Thing"})
    assert entity_schema(spec, "things") == {"$ref": "#/components/schemas/Thing"}


def test_the_success_schema_follows_a_response_reference_and_is_none_without_json():
    schema = {"type": "object"}
    shared = {"paths": {}, "components": {"responses": {"Ok": {"content": {"application/json": {"schema": schema}}}}}}
    referenced = {"responses": {"400": {"description": "no"}, "200": {"$ref": "#/components/responses/Ok"}}}
    assert success_schema(shared, referenced) == schema
    assert success_schema({"paths": {}}, referenced) is None  # the spec has no shared responses
    assert success_schema({}, {"responses": {"200": {"content": {"text/csv": {"schema": schema}}}}}) is None
    assert success_schema({}, {"responses": {"404": {"content": {"application/json": {"schema": schema}}}}}) is None
    assert success_schema({}, None) is None


# -- seed fixtures ---------------------------------------------------------------------------------

def test_a_nested_entity_without_its_parent_is_refused_naming_the_organization_the_entity_and_the_field(client):
    response = client.post(f"/_mock/organizations/{ORG}/fixture", json={
        "balances/transactions": {"t1": {"amount": 5}}})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        "organization 'org-pinned-kit': balances/transactions 't1': balanceId: required: the balance this belongs "
        "to (a reference, or an id the organization holds)")


def test_loading_a_seed_file_logs_what_each_organization_received(app, tmp_path, caplog):
    path = tmp_path / "seed.yaml"
    path.write_text("organizations:\n  org-seeded:\n    products:\n      a: {name: A, code: a}\n"
                    "      b: {name: B, code: b}\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="m3ter_mock"):
        app.backend.seeding.load_files([(str(path), read_fixture_file(path))])
    assert f"seed file {str(path)!r}: organization 'org-seeded': 2 entities, 0 measurements" in caplog.messages


# -- the state file ----------------------------------------------------------------------------------

def test_the_state_file_saver_runs_in_a_thread_named_after_its_work(tmp_path):
    app = create_app(make_settings(state_file=str(tmp_path / "mock.state"), state_save_delay_seconds=3600))
    try:
        client = app.test_client()
        assert "m3ter-mock-state-file" not in {thread.name for thread in threading.enumerate()}
        response = client.post("/_mock/clock", json={"advanceSeconds": 1})
        assert response.status_code == 200, response.text
        app.backend.state.changed()
        assert "m3ter-mock-state-file" in {thread.name for thread in threading.enumerate()}
    finally:
        app.backend.state.close()


# -- the generic engine's reading of the spec (shapes) -----------------------------------------------

def mocked(action: str, resource: str | None = "things", **op) -> dict:
    return {"x-mock": {"action": action, **({"resource": resource} if resource else {})}, **op}


@pytest.mark.parametrize("paths, message", [
    ({"/things": {"get": mocked("frobnicate")}},
     "GET /things: x-mock action 'frobnicate' is not one of ('list', 'create', 'retrieve', 'update', 'delete', "
     "'read', 'replace', 'unimplemented')"),
    ({"/things": {"post": mocked("create", None)}}, "POST /things: x-mock action 'create' needs a resource"),
    ({"/things": {"get": mocked("list"), "put": mocked("replace")}},
     "resource 'things' mixes singleton and collection actions"),
    ({"/things": {"get": mocked("list")}, "/other": {"get": mocked("list")}},
     "resource 'things' has two 'list' operations"),
])
def test_a_spec_whose_x_mock_cannot_be_served_is_refused_naming_the_operation(paths, message):
    with pytest.raises(ValueError) as caught:
        derive_shapes({"paths": paths})
    assert str(caught.value) == message


def test_an_unimplemented_operation_needs_no_resource_and_never_makes_a_shape():
    spec = {"paths": {"/things:go": {"post": mocked("unimplemented", None)}, "/things": {"get": mocked("list")},
                      "/others:go": {"post": mocked("unimplemented", "others")}}}
    assert list(derive_shapes(spec)) == ["things"]
    [go, _] = [op for op in mock_operations(spec) if op.action == "unimplemented"]
    assert (go.method, go.path, go.resource) == ("POST", "/things:go", None)


def page_of(ref: str) -> dict:
    return {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": ref}}}}


@pytest.mark.parametrize("schema, label", [
    ({"$ref": "#/components/schemas/ThingResponse"}, "Thing"),
    ({"$ref": "#/components/schemas/Response"}, "Response"),
    ({"type": "object", "properties": {"id": {"type": "string"}}}, "Parts"),
])
def test_a_resources_label_is_its_response_schemas_name_else_its_last_word(schema, label):
    spec = {"paths": {"/things/{thingId}/parts/{id}": {"get": {
        "x-mock": {"action": "retrieve", "resource": "things/{thingId}/parts"}, **answer(schema)}}},
        "components": {"schemas": {"ThingResponse": {"type": "object"}, "Response": {"type": "object"}}}}
    shape = derive_shapes(spec)["things/{thingId}/parts"]
    assert (shape.label, shape.scope) == (label, ("thingId",))


def test_a_list_only_resource_takes_its_fields_from_the_pages_items_and_the_answer_by_status_order():
    thing = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"},
                                                                  "code": {"type": "string", "default": "c"}}}
    spec = {"paths": {"/things": {"get": mocked("list", responses={
        "default": {"content": {"application/json": {"schema": {"type": "string"}}}},
        "2XX": {"$ref": "#/components/responses/Page"}})}},
        "components": {"schemas": {"Thing": thing},
                       "responses": {"Page": {"content": {"application/json": {"schema": page_of(
                           "#/components/schemas/Thing")}}}}}}
    shape = derive_shapes(spec)["things"]
    assert (shape.label, shape.response_fields, shape.response_required, shape.response_defaults) == (
        "Thing", frozenset({"id", "code"}), frozenset({"id"}), {"code": "c"})


def test_schemas_follow_references_through_composition_and_stop_at_cycles():
    schemas = Schemas({"components": {"schemas": {
        "Loop": {"$ref": "#/components/schemas/Back"}, "Back": {"$ref": "#/components/schemas/Loop"},
        "Self": {"allOf": [{"$ref": "#/components/schemas/Self"}], "properties": {"a": {"type": "string"}}},
        "Either": {"oneOf": [{"properties": {"b": {"type": "integer"}}}, {"properties": {"b": {"type": "string"}}}],
                   "allOf": [{"required": ["c"], "properties": {"c": {"type": "integer"}}}]},
        "Typed": {"allOf": [{"description": "d"}, {"type": "integer"}]}}}})
    assert schemas.deref({"$ref": "#/components/schemas/Loop"}) == {"$ref": "#/components/schemas/Loop"}
    assert schemas.flatten({"$ref": "#/components/schemas/Self"}) == ({"a": {"type": "string"}}, set())
    assert schemas.flatten({"$ref": "#/components/schemas/Either"}) == (
        {"b": {"type": "integer"}, "c": {"type": "integer"}}, {"c"})
    assert schemas.type_of({"$ref": "#/components/schemas/Typed"}) == "integer"
    assert schemas.type_of({"description": "none"}) is None


FIELDS = frozenset({"id", "code", "accountId", "externalSystem", "dtCreated", "startDate", "active", "name"})


@pytest.mark.parametrize("name, is_array, type_, rule", [
    ("ids", True, "array", FilterRule("ids", "ids", "id", True)),
    ("codes", True, "array", FilterRule("codes", "in", "code", True)),
    ("name", True, "array", FilterRule("name", "in", "name", True)),  # no plural: the field itself
    ("code", False, "string", FilterRule("code", "equal", "code", False)),
    ("account", False, "string", FilterRule("account", "equal", "accountId", False)),
    ("externalSystemId", False, "string", FilterRule("externalSystemId", "equal", "externalSystem", False)),
    ("active", False, "boolean", FilterRule("active", "equal", "active", False, True)),
    ("dtCreatedStart", False, "string", FilterRule("dtCreatedStart", "from", "dtCreated")),
    ("dtCreatedEnd", False, "string", FilterRule("dtCreatedEnd", "before", "dtCreated")),
    ("date", False, "string", FilterRule("date", "on_date", "startDate")),
    ("costsEnd", False, "string", FilterRule("costsEnd", "ignored", None, False, False)),
    ("verbose", False, "boolean", FilterRule("verbose", "ignored", None, False, True)),
    ("tags", True, "array", FilterRule("tags", "ignored", None, True, False)),
])
def test_a_list_parameter_filters_by_the_field_its_name_names(name, is_array, type_, rule):
    assert filter_rule(QueryParameter(name, is_array, type_), FIELDS) == rule


def test_the_date_parameter_is_ignored_where_entities_have_no_start_date():
    assert filter_rule(QueryParameter("date", False, "string"), frozenset({"id"})) == FilterRule(
        "date", "ignored", None, False, False)


# -- seed files and fixtures --------------------------------------------------------------------------

def test_a_json_fixture_that_does_not_parse_names_its_line_and_column():
    with pytest.raises(ValueError) as caught:
        parse_fixture('{"organizations":\n  {"a": }}', "fixture.JSON")
    assert str(caught.value) == "not JSON: Expecting value (line 2, column 9)"


@pytest.mark.parametrize("text, message", [
    ("organizations:\n  a: {}\n  a: {}\n", "not YAML: 'a' is given twice in one mapping (line 3, column 3)"),
    ("? [a, b]\n: 1\n", "not YAML: found unhashable key (line 1, column 3)"),
    ("a: *missing\n", "not YAML: found undefined alias (line 1, column 4)"),
])
def test_a_yaml_fixture_that_cannot_be_read_says_why_and_where(text, message):
    with pytest.raises(ValueError) as caught:
        parse_fixture(text, "fixture.yaml")
    assert str(caught.value) == message


def test_a_yaml_fixture_keeps_dates_and_times_as_the_strings_they_are_written_as():
    assert parse_fixture("start: 2026-01-01\nat: 2026-01-01T10:00:00Z\n", "f.yml") == {
        "start": "2026-01-01", "at": "2026-01-01T10:00:00Z"}


def test_a_seed_file_that_is_not_utf8_is_refused_naming_it(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("organizations:\n  caf\xe9: {}\n".encode("latin-1"))
    with pytest.raises(SeedFileError) as caught:
        read_fixture_file(path)
    assert str(caught.value) == f"seed file {str(path)!r}: is not UTF-8 text"


def test_a_long_reason_in_a_fixture_is_cut_at_300_characters(client):
    response = client.post(f"/_mock/organizations/{ORG}/fixture", json={
        "products": {"p": {"name": "P", "code": "p"}},
        "plantemplates": {"t": {"name": "T", "productId": "@products/p", "billFrequency": "M" * 400,
                                "currency": "USD", "standingCharge": 0}}})
    assert response.status_code == 400, response.text
    prefix = "organization 'org-pinned-kit': plantemplates 't': billFrequency: "
    message = response.json()["message"]
    assert message.startswith(prefix + "'MMMM") and message.endswith("…")
    assert len(message) == len(prefix) + 300 + 1


def test_a_singleton_in_a_fixture_replaces_the_stored_one_whatever_its_version(client, auth):
    for date in ("2026-01-01", "2026-02-01"):
        response = client.post(f"/_mock/organizations/{ORG}/fixture", json={"billconfig": {"billLockDate": date}})
        assert response.status_code == 201, response.text
    config = client.get(f"/organizations/{ORG}/billconfig", headers=auth).json()
    assert (config["billLockDate"], config["version"]) == ("2026-02-01", 2)


def test_a_measurement_json_cannot_hold_is_refused_naming_it(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("organizations:\n  org-nan:\n    measurements:\n"
                    "      - {meter: m, account: a, ts: '2026-01-01T00:00:00Z', measure: {x: .nan}}\n",
                    encoding="utf-8")
    with pytest.raises(SeedFileError) as caught:
        Backend().seeding.load_files([(str(path), read_fixture_file(path))])
    assert str(caught.value) == (f"seed file {str(path)!r}: organization 'org-nan': measurements[0].measure.x: nan is "
                                 f"not a number JSON can hold")


# -- lenient mode: generated entities -------------------------------------------------------------------

def test_a_generated_entity_never_takes_a_code_the_organization_holds(lenient_app):
    http = lenient_app.test_client()
    auth = {"Authorization": "Bearer any-preset-token"}
    base = "/organizations/org-lenient-codes/products"

    def call(method: str, path: str, body=None) -> dict:
        response = getattr(http, method)(path, headers=auth, **({"json": body} if body is not None else {}))
        assert response.status_code == 200, response.text
        return response.json()

    code = call("get", f"{base}/placeholder")["code"]
    call("delete", f"{base}/placeholder")
    call("post", base, {"name": "Mine", "code": code})
    assert call("get", f"{base}/placeholder")["code"] == f"{code}_placeholder"
    call("delete", f"{base}/placeholder")
    call("post", base, {"name": "Mine too", "code": f"{code}_placeholder"})
    again = call("get", f"{base}/placeholder")
    assert again["id"] == "placeholder" and "code" not in again


# -- the generic engine called directly -------------------------------------------------------------------

def test_a_list_asked_for_a_filter_it_does_not_have_is_a_400_naming_it(app):
    with pytest.raises(MockError) as caught:
        app.backend.resources["products"].list(Caller(ORG, "test-client"), {"colour": "red"}, None, None)
    assert (caught.value.status, caught.value.message) == (400, "colour: not a filter of this list")


def test_a_nested_entity_read_without_its_parents_id_is_a_400_naming_the_parameter(app):
    transactions = app.backend.resources["balances/{balanceId}/transactions"]
    for scope in (None, {}, {"balanceId": ""}):
        with pytest.raises(MockError) as caught:
            transactions.get(Caller(ORG, "test-client"), "some-id", scope)
        assert (caught.value.status, caught.value.message) == (400, "balanceId: required")



def test_a_fixture_invites_a_user_as_the_seed_for_thirty_days(client):
    response = client.post("/_mock/organizations/org-kit-invite/fixture", json={
        "invitations": {"ann": {"email": "ann@example.com", "firstName": "Ann", "lastName": "Lee"}}})
    assert response.status_code == 201, response.text
    invitation_id = response.json()["ids"]["invitations/ann"]
    listed = client.get("/organizations/org-kit-invite/invitations", headers=bearer_for(client)).json()
    [invitation] = listed["data"]
    assert (invitation["id"], invitation["email"], invitation["accepted"], invitation["invitingPrincipalId"]) == (
        invitation_id, "ann@example.com", False, "m3ter-mock-seed")
    lifetime = from_iso(invitation["dtExpiry"]) - from_iso(invitation["dtCreated"])
    assert abs(lifetime - timedelta(days=30)) < timedelta(seconds=1)
