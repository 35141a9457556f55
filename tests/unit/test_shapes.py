"""What the engine derives from a spec (``mockserver.backend.shapes``), on small spec
dicts, and the generic rules of ``CrudService`` on a backend built from such a spec."""

from __future__ import annotations

import uuid

import pytest

from mockserver.backend.core import Backend
from mockserver.backend.crud import Caller
from mockserver.backend.shapes import (FilterRule, QueryParameter, derive_shapes, fill, filter_rule,
                                       mock_operations, template_pattern)
from mockserver.domain.errors import MockError

ORG = "org-shapes"
ALICE = Caller(ORG, "alice")
BOB = Caller(ORG, "bob")
P = "/organizations/{orgId}"


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def body(name):
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def returns(schema):
    return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}


def query(name, schema):
    return {"name": name, "in": "query", "schema": schema}


def op(operation_id, resource, action, **more):
    return {"operationId": operation_id, "x-mock": {"resource": resource, "action": action}, **more}


def crud(key, label, *, list_parameters=(), path_parameters=()):
    """The five operations of a collection ``key`` whose schemas are ``<label>Request``/``Response``."""
    item = f"{P}/{key}/{{id}}"
    shared = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_parameters]
    return {
        f"{P}/{key}": {
            "parameters": shared,
            "get": op(f"List{label}", key, "list", parameters=list(list_parameters),
                      responses=returns(ref(f"Paginated{label}"))),
            "post": op(f"Post{label}", key, "create", requestBody=body(f"{label}Request"),
                       responses=returns(ref(f"{label}Response"))),
        },
        item: {
            "parameters": shared + [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": op(f"Get{label}", key, "retrieve", responses=returns(ref(f"{label}Response"))),
            "put": op(f"Put{label}", key, "update", requestBody=body(f"{label}Request"),
                      responses=returns(ref(f"{label}Response"))),
            "delete": op(f"Delete{label}", key, "delete", responses=returns(ref(f"{label}Response"))),
        },
    }


AUDITED = {"properties": {"id": {"type": "string"}, "version": {"type": "integer"},
                          "dtCreated": {"type": "string"}, "dtLastModified": {"type": "string"},
                          "createdBy": {"type": "string"}, "lastModifiedBy": {"type": "string"}}}
VERSIONED = {"properties": {"version": {"type": "integer"}}}


def entity(label, request_properties, response_properties=None, required=()):
    return {
        f"{label}Request": {"allOf": [VERSIONED, {"required": list(required), "properties": request_properties}]},
        f"{label}Response": {"allOf": [ref("Audited"), {"properties": {
            **request_properties, **(response_properties or {})}}]},
        f"Paginated{label}": {"properties": {"data": {"type": "array", "items": ref(f"{label}Response")},
                                             "nextToken": {"type": "string"}}},
    }


STRING = {"type": "string"}
SPEC = {
    "openapi": "3.0.3",
    "paths": {
        **crud("products", "Product", list_parameters=[query("ids", {"type": "array", "items": STRING}),
                                                       query("codes", {"type": "array", "items": STRING})]),
        **crud("meters", "Meter", list_parameters=[query("productId", STRING), query("pageSize", {"type": "integer"})]),
        **crud("balances", "Balance", list_parameters=[query("accountId", STRING), query("endDateStart", STRING),
                                                       query("endDateEnd", STRING)]),
        **crud("balances/{balanceId}/transactions", "BalanceTransaction", path_parameters=("balanceId",)),
        f"{P}/billconfig": {
            "get": op("GetBillConfig", "billconfig", "read", responses=returns(ref("BillConfigResponse"))),
            "put": op("UpdateBillConfig", "billconfig", "replace", requestBody=body("BillConfigRequest"),
                      responses=returns(ref("BillConfigResponse"))),
        },
        f"{P}/bills/preview": {"post": {"operationId": "PreviewBill", "responses": returns(STRING),
                                        "x-mock": {"action": "unimplemented", "reason": "later"}}},
    },
    "components": {"schemas": {
        "Audited": AUDITED,
        **entity("Product", {"name": STRING, "code": STRING, "customFields": {"type": "object"},
                             "secretId": {"type": "string", "readOnly": True}}, required=("name",)),
        **entity("Meter", {"name": STRING, "code": STRING, "productId": STRING}),
        **entity("Balance", {"name": STRING, "accountId": STRING, "endDate": STRING}, {"amount": {"type": "number"}}),
        **entity("BalanceTransaction", {"amount": {"type": "number"}}, {"balanceId": STRING}),
        **entity("BillConfig", {"billLockDate": {"type": "string", "default": "2020-01-01"}}),
    }},
}


# -- derivation ------------------------------------------------------------------------------

def test_each_resource_gets_its_label_writable_fields_and_scope():
    shapes = derive_shapes(SPEC)
    assert sorted(shapes) == ["balances", "balances/{balanceId}/transactions", "billconfig", "meters", "products"]
    product = shapes["products"]
    assert product.label == "Product"
    assert product.writable == ("name", "code", "customFields")  # no version, nothing read-only
    assert "dtCreated" in product.response_fields and "amount" not in product.response_fields
    assert sorted(product.operations) == ["create", "delete", "list", "retrieve", "update"]
    assert (product.singleton, product.scope) == (False, ())
    nested = shapes["balances/{balanceId}/transactions"]
    assert nested.scope == ("balanceId",)
    assert nested.collection({"balanceId": "b1"}) == "balances/b1/transactions"
    assert shapes["billconfig"].singleton
    assert shapes["billconfig"].response_defaults == {"billLockDate": "2020-01-01"}


def test_the_list_parameters_become_filters():
    filters = derive_shapes(SPEC)["balances"].filters
    assert filters == {
        "accountId": FilterRule("accountId", "equal", "accountId"),
        "endDateStart": FilterRule("endDateStart", "from", "endDate"),
        "endDateEnd": FilterRule("endDateEnd", "before", "endDate"),
    }
    assert "pageSize" not in derive_shapes(SPEC)["meters"].filters


@pytest.mark.parametrize(("name", "is_array", "type_", "expected"), [
    ("ids", True, "array", FilterRule("ids", "ids", "id", True)),
    ("codes", True, "array", FilterRule("codes", "in", "code", True)),
    ("accountIds", True, "array", FilterRule("accountIds", "in", "accountId", True)),
    ("productId", True, "array", FilterRule("productId", "in", "productId", True)),
    ("account", False, "string", FilterRule("account", "equal", "accountId")),
    ("externalSystemId", False, "string", FilterRule("externalSystemId", "equal", "externalSystem")),
    ("archived", False, "boolean", FilterRule("archived", "equal", "archived", False, True)),
    ("billDateStart", False, "string", FilterRule("billDateStart", "from", "billDate")),
    ("date", False, "string", FilterRule("date", "on_date", "startDate")),
    ("includeall", False, "boolean", FilterRule("includeall", "ignored", None, False, True)),
])
def test_a_filter_is_matched_to_a_field_by_its_name(name, is_array, type_, expected):
    fields = {"id", "code", "accountId", "productId", "externalSystem", "archived", "billDate", "startDate"}
    assert filter_rule(QueryParameter(name, is_array, type_), fields) == expected


def test_path_level_parameters_count_and_a_bad_action_is_refused():
    [nested_list] = [o for o in mock_operations(SPEC) if o.operation_id == "ListBalanceTransaction"]
    assert nested_list.path_parameters == ("balanceId",)
    [preview] = [o for o in mock_operations(SPEC) if o.operation_id == "PreviewBill"]
    assert (preview.action, preview.reason, preview.resource) == ("unimplemented", "later", None)
    broken = {"paths": {"/x": {"get": {"operationId": "X", "x-mock": {"resource": "x", "action": "fetch"}}}}}
    with pytest.raises(ValueError, match="fetch"):
        list(mock_operations(broken))


def test_collection_templates():
    assert fill("a/{x}/b/{y}/c", {"x": "1", "y": "2"}) == "a/1/b/2/c"
    pattern = template_pattern("a/{x}/b")
    assert pattern.fullmatch("a/123/b") and not pattern.fullmatch("a/1/2/b") and not pattern.fullmatch("a/1/bc")


# -- the engine over that spec --------------------------------------------------------------

@pytest.fixture
def backend():
    return Backend(spec=SPEC)


def test_the_backend_serves_every_resource_of_the_spec(backend):
    assert {"products", "meters", "balances", "balances/{balanceId}/transactions", "billconfig"} <= set(backend.resources)
    assert backend.resources["meters"].kind.references == {"productId": "products"}


def test_nulls_are_never_stored(backend):
    made = backend.resources["products"].create(ALICE, {"name": "P", "code": None, "customFields": {"a": None, "b": 1}})
    assert "code" not in made
    assert made["customFields"] == {"b": 1}


def test_a_missing_reference_is_a_400_naming_the_field(backend):
    with pytest.raises(MockError) as error:
        backend.resources["meters"].create(ALICE, {"name": "M", "productId": "nope"})
    assert (error.value.status, error.value.message) == (400, "productId: no Product with id 'nope'")
    assert len(backend.store.peek(ORG, "meters")) == 0


def test_a_referenced_entity_cannot_be_deleted(backend):
    products, meters = backend.resources["products"], backend.resources["meters"]
    product = products.create(ALICE, {"name": "P"})
    meter = meters.create(ALICE, {"name": "M", "productId": product["id"]})
    with pytest.raises(MockError) as error:
        products.delete(ALICE, product["id"])
    assert error.value.status == 409
    assert error.value.message == (f"Product {product['id']!r} is referenced by Meter {meter['id']!r} "
                                   f"(productId); delete that or change its productId first")
    meters.update(ALICE, meter["id"], {"name": "M", "version": 1})  # PUT without productId drops it
    products.delete(ALICE, product["id"])


def test_filters_select_by_field(backend):
    balances = backend.resources["balances"]
    a = balances.create(ALICE, {"name": "a", "accountId": "acc-1", "endDate": "2024-06-01"})
    b = balances.create(ALICE, {"name": "b", "accountId": "acc-2", "endDate": "2025-01-01"})

    def ids(**filters):
        return [e["id"] for e in balances.list(ALICE, filters, None, None)[0]]

    assert ids(accountId="acc-2") == [b["id"]]
    assert ids(endDateStart="2024-06-01") == [a["id"], b["id"]]  # on or after
    assert ids(endDateEnd="2025-01-01") == [a["id"]]  # before
    assert a["amount"] == 0  # the catalog's prepare: a new Balance holds nothing


def test_a_nested_entity_needs_its_parent_and_goes_with_it(backend):
    balances, transactions = backend.resources["balances"], backend.resources["balances/{balanceId}/transactions"]
    with pytest.raises(MockError) as error:
        transactions.create(ALICE, {"amount": 5}, {"balanceId": "missing"})
    assert (error.value.status, error.value.message) == (404, "No Balance with id 'missing'")
    balance = balances.create(ALICE, {"name": "a", "accountId": "acc"})
    other = balances.create(ALICE, {"name": "b", "accountId": "acc"})
    made = transactions.create(ALICE, {"amount": 5}, {"balanceId": balance["id"]})
    assert made["balanceId"] == balance["id"]  # the response shows it
    assert transactions.list(ALICE, {}, None, None, {"balanceId": other["id"]})[0] == []
    assert transactions.get(ALICE, made["id"], {"balanceId": balance["id"]}) == made
    balances.delete(ALICE, balance["id"])
    assert f"balances/{balance['id']}/transactions" not in backend.store.org(ORG).collections
    with pytest.raises(MockError) as gone:
        transactions.get(ALICE, made["id"], {"balanceId": balance["id"]})
    assert gone.value.message == f"No Balance with id {balance['id']!r}"


def test_a_singleton_reads_as_its_default_until_replaced(backend):
    config = backend.resources["billconfig"]
    default = config.read(ALICE)
    assert default == {"id": default["id"], "billLockDate": "2020-01-01"}
    assert uuid.UUID(default["id"]).version == 5
    assert config.read(Caller("another-org", "alice"))["id"] != default["id"]
    assert len(backend.store.peek(ORG, "billconfig")) == 0  # reading stored nothing

    first = config.replace(ALICE, {"billLockDate": "2024-01-01"})
    assert (first["id"], first["version"], first["createdBy"]) == (default["id"], 1, "alice")
    with pytest.raises(MockError) as missing:
        config.replace(BOB, {"billLockDate": "2024-02-01"})
    assert missing.value.status == 400
    with pytest.raises(MockError) as stale:
        config.replace(BOB, {"billLockDate": "2024-02-01", "version": 2})
    assert stale.value.status == 409
    second = config.replace(BOB, {"billLockDate": "2024-02-01", "version": 1})
    assert (second["version"], second["createdBy"], second["lastModifiedBy"]) == (2, "alice", "bob")
    assert config.read(ALICE) == second


def test_an_action_changes_fields_without_a_version_and_none_removes_one(backend):
    products = backend.resources["products"]
    made = products.create(ALICE, {"name": "P", "code": "p"})
    changed = products.modify(BOB, made["id"], {"code": None, "name": "Q"})
    assert (changed["name"], changed["version"], changed["lastModifiedBy"]) == ("Q", 1, "bob")
    assert "code" not in changed


def test_scanning_a_nested_resource_of_an_unknown_organization_creates_nothing(backend):
    transactions = backend.resources["balances/{balanceId}/transactions"]
    assert list(transactions.entities("nobody")) == []
    assert "nobody" not in backend.store.org_ids()
