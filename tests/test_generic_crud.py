"""Every resource the spec serves through ``x-mock``, driven over HTTP by one table (not a
test per resource): create -> retrieve -> list (with a filter) -> update (the version rules)
-> delete, each response checked against the spec's schema; singletons read and replaced;
the relationships m3ter documents (a missing reference is a 400 naming the field, deleting
what something references a 409); and an Event for each entity type the catalogue has.
The spec is the one the mock ships (openapi/m3ter.yaml)."""

from __future__ import annotations

import copy
import uuid

import pytest
from openapi_schema_validator import OAS30Validator

from mockserver.api.registry import handlers_for
from mockserver.app import load_spec
from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for
from tests.support.bodies import BodyBuilder

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in spec["paths"].items()
            for method, op in item.items() if method in METHODS]


SPEC = load_spec()
ORG = "org-generic"
NOWHERE = "00000000-0000-4000-8000-00000000dead"  # an id no organization holds

# operationId -> handler; the engine's handlers carry the x-mock they were built from (a
# written handler, for an action the engine does not serve as CRUD, wins over them).
HANDLERS = handlers_for(SPEC)

# resource key -> action -> (METHOD, path template, operation), for what the engine serves
RESOURCES: dict[str, dict[str, tuple[str, str, dict]]] = {}
for _path, _method, _op in _operations(SPEC):
    _mock = _op.get("x-mock") or {}
    if (_mock.get("resource") and _mock.get("action") != "unimplemented"
            and getattr(HANDLERS.get(_op["operationId"]), "x_mock", None) is not None):
        RESOURCES.setdefault(_mock["resource"], {})[_mock["action"]] = (_method.upper(), _path, _op)

# What a create must name, as m3ter's reference and SDK state it: field -> the resource it
# names. Where m3ter wants one of two (a Plan or a Plan Template...), the first is used.
NEEDS = {
    "meters": {"productId": "products"},
    "aggregations": {"meterId": "meters"},
    "plantemplates": {"productId": "products"},
    "plans": {"planTemplateId": "plantemplates"},
    "plangrouplinks": {"planGroupId": "plangroups", "planId": "plans"},
    "pricings": {"planId": "plans", "aggregationId": "aggregations"},
    "counterpricings": {"counterId": "counters", "planId": "plans"},
    "accountplans": {"accountId": "accounts", "planId": "plans"},
    "commitments": {"accountId": "accounts"},
    "contracts": {"accountId": "accounts"},
    "balances": {"accountId": "accounts"},
    "charges": {"accountId": "accounts"},
    "counteradjustments": {"counterId": "counters", "accountId": "accounts"},
    "balances/{balanceId}/transactions": {"transactionTypeId": "picklists/transactiontypes"},
    "balances/{balanceId}/balancetransactionschedules": {"transactionTypeId": "picklists/transactiontypes"},
    "billjobs": {"accountIds": "accounts"},
    "statementjobs": {"billId": "bills"},
}
# The relationships the issue names: (resource, field, the resource the field names).
RELATIONSHIPS = [
    ("accountplans", "accountId", "accounts"),
    ("accountplans", "planId", "plans"),
    ("plans", "planTemplateId", "plantemplates"),
    ("plantemplates", "productId", "products"),
    ("pricings", "planId", "plans"),
    ("pricings", "aggregationId", "aggregations"),
    ("aggregations", "meterId", "meters"),
    ("meters", "productId", "products"),
    ("commitments", "accountId", "accounts"),
    ("contracts", "accountId", "accounts"),
    ("plangrouplinks", "planGroupId", "plangroups"),
    ("plangrouplinks", "planId", "plans"),
    ("counterpricings", "counterId", "counters"),
    ("counteradjustments", "counterId", "counters"),
    ("counteradjustments", "accountId", "accounts"),
    ("balances", "accountId", "accounts"),
]
# The Event entity of each resource, as the catalogue names them.
EVENTS = {
    "accounts": "configuration.account", "accountplans": "configuration.accountplan",
    "aggregations": "configuration.aggregation", "commitments": "configuration.commitment",
    "contracts": "configuration.contract", "meters": "configuration.meter", "plans": "configuration.plan",
    "plangroups": "configuration.plangroup", "plangrouplinks": "configuration.plangrouplink",
    "plantemplates": "configuration.plantemplate", "pricings": "configuration.pricing",
    "products": "configuration.product", "picklists/creditreasons": "configuration.creditreason",
    "picklists/transactiontypes": "configuration.transactiontype", "balances": "billing.balance",
    "billjobs": "billing.billjob",
}
SINGLETON_EVENTS = {"organizationconfig": "configuration.organizationconfig",
                    "customfields": "configuration.customfield", "billconfig": "billing.billconfig"}


def scope_of(key: str) -> list[tuple[str, str | None]]:
    """(path parameter, parent resource key) for each parameter of a nested key; the parent
    is None for a parameter that names no resource (``resourcegroups/{type}``)."""
    out = []
    for part in key.split("/"):
        if part.startswith("{"):
            prefix = key[:key.index(part)].rstrip("/")
            out.append((part[1:-1], prefix if prefix in RESOURCES else None))
    return out


def parents_of(key: str) -> list[tuple[str, str]]:
    return [(parameter, parent) for parameter, parent in scope_of(key) if parent is not None]


def creatable(key: str) -> bool:
    return ("create" in RESOURCES.get(key, {})
            and all(creatable(parent) for _, parent in parents_of(key))
            and all(creatable(target) for target in NEEDS.get(key, {}).values()))


COLLECTIONS = sorted(k for k, a in RESOURCES.items() if "read" not in a)
LIFECYCLE = [k for k in COLLECTIONS if creatable(k)]
READ_ONLY = [k for k in COLLECTIONS if not creatable(k)]
SINGLETONS = sorted(k for k, a in RESOURCES.items() if "read" in a)
VALIDATOR_ROOT = {"components": SPEC.get("components", {})}


# -- the mock, a client and helpers ---------------------------------------------------------

@pytest.fixture
def api(app):
    return Api(app)


class Api:
    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.headers = bearer_for(self.client)
        self.bodies = BodyBuilder(SPEC)

    def call(self, key: str, action: str, scope: dict | None = None, entity_id: str | None = None,
             body: dict | None = None, query: dict | None = None):
        method, template, _ = RESOURCES[key][action]
        path = template.replace("{orgId}", ORG)
        for name, value in (scope or {}).items():
            path = path.replace("{" + name + "}", value)
        if entity_id is not None:
            path = path[:path.rindex("{")] + entity_id
        return self.client.request(method, path, headers=self.headers, json=body, params=query)

    def ok(self, key: str, action: str, **kwargs) -> dict:
        response = self.call(key, action, **kwargs)
        assert response.status_code == 200, f"{key} {action}: {response.status_code} {response.text}"
        conforms(RESOURCES[key][action][2], response.json())
        return response.json()

    def body(self, key: str, given: dict | None = None) -> dict:
        action = "create" if "create" in RESOURCES[key] else "replace"
        op = RESOURCES[key][action][2]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        return self.bodies.body(schema, given)

    def make(self, key: str, **fields) -> tuple[dict, dict]:
        """A new entity of ``key`` with everything it needs created first: (entity, scope)."""
        scope = {}
        for parameter, parent in scope_of(key):
            scope[parameter] = self.make(parent)[0]["id"] if parent else "account"
        given = {}
        for name, target in NEEDS.get(key, {}).items():
            if name not in fields:
                made, _ = self.make(target)
                given[name] = [made["id"]] if name.endswith("Ids") else made["id"]
        entity = self.ok(key, "create", scope=scope, body=self.body(key, {**given, **fields}))
        return entity, scope

    def events(self, name: str) -> list[dict]:
        items, _ = self.app.backend.events.list(Caller(ORG, "test-client"), {"eventName": name}, 100, None)
        return items


def conforms(op: dict, body) -> None:
    """``body`` is valid against the operation's 200 response schema."""
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    OAS30Validator({**schema, **VALIDATOR_ROOT}).validate(body)


def writable_change(api: Api, key: str, body: dict) -> dict:
    """The body with a string field changed (``name`` when there is one)."""
    for name in ("name", "description", "code"):
        if isinstance(body.get(name), str):
            return {**body, name: body[name] + "-2"}
    return body


# -- the table ---------------------------------------------------------------------------

def test_the_spec_serves_the_resources_of_the_issue():
    for key in ("accounts", "accountplans", "aggregations", "balances", "balances/{balanceId}/transactions",
                "billconfig", "commitments", "contracts", "counters", "counteradjustments", "counterpricings",
                "picklists/creditreasons", "picklists/debitreasons", "picklists/currency", "customfields",
                "externalmappings", "lookuptables", "lookuptables/{lookupTableId}/revisions", "meters",
                "organizationconfig", "permissionpolicies", "plangroups", "plangrouplinks", "plantemplates",
                "plans", "pricings", "products", "resourcegroups/{type}", "scheduledevents/configurations",
                "statementdefinitions", "picklists/transactiontypes", "users", "invitations"):
        assert key in RESOURCES, key


@pytest.mark.parametrize("key", LIFECYCLE)
def test_lifecycle(api, key):
    actions = RESOURCES[key]
    entity, scope = api.make(key)
    assert uuid.UUID(entity["id"]).version == 4
    assert entity["version"] == 1
    assert None not in entity.values()

    if "retrieve" in actions:
        assert api.ok(key, "retrieve", scope=scope, entity_id=entity["id"]) == entity

    if "list" in actions:
        listed = api.ok(key, "list", scope=scope)
        assert [e["id"] for e in listed["data"]] == [entity["id"]]
        for name, value, absent in list_filters(actions["list"][2], entity):
            assert [e["id"] for e in api.ok(key, "list", scope=scope, query={name: value})["data"]] == [
                entity["id"]], name
            assert api.ok(key, "list", scope=scope, query={name: absent})["data"] == [], name

    if "update" in actions:
        body = writable_change(api, key, api.body(key, {k: entity[k] for k in NEEDS.get(key, {})}))
        missing = api.call(key, "update", scope=scope, entity_id=entity["id"], body=body)
        assert missing.status_code == 400 and "version" in missing.json()["message"], missing.text
        updated = api.ok(key, "update", scope=scope, entity_id=entity["id"], body={**body, "version": 1})
        assert updated["version"] == 2
        assert updated.get("dtCreated") == entity.get("dtCreated")
        stale = api.call(key, "update", scope=scope, entity_id=entity["id"], body={**body, "version": 1})
        assert stale.status_code == 409, stale.text
        entity = updated

    if "delete" in actions:
        assert api.ok(key, "delete", scope=scope, entity_id=entity["id"]) == entity
        gone = api.call(key, "retrieve", scope=scope, entity_id=entity["id"])
        assert gone.status_code == 404, gone.text


def list_filters(list_op: dict, entity: dict):
    """(parameter, a value that selects ``entity``, one that selects nothing) for the list's
    id, code and reference filters that the entity has a value for."""
    names = {p["name"] for p in list_op.get("parameters", []) if "name" in p}
    if "ids" in names:
        yield "ids", entity["id"], NOWHERE
    if "codes" in names and "code" in entity:
        yield "codes", entity["code"], "no-such-code"
    for name in sorted(names):
        if name.endswith("Id") and isinstance(entity.get(name), str):
            yield name, entity[name], NOWHERE


@pytest.mark.parametrize("key", READ_ONLY)
def test_what_cannot_be_created_yet_lists_empty_or_names_the_missing_parent(api, key):
    actions = RESOURCES[key]
    scope = {parameter: NOWHERE for parameter, _ in scope_of(key)}
    parents = [parent for _, parent in parents_of(key)]
    if "list" in actions:
        listed = api.call(key, "list", scope=scope)
        if parents:
            assert listed.status_code == 404, listed.text
            assert listed.json()["message"].startswith("No ") and NOWHERE in listed.json()["message"]
        else:
            assert listed.status_code == 200 and listed.json()["data"] == [], listed.text
    if "retrieve" in actions:
        assert api.call(key, "retrieve", scope=scope, entity_id=NOWHERE).status_code == 404


@pytest.mark.parametrize("key", SINGLETONS)
def test_singleton_read_and_replace(api, key):
    first = api.ok(key, "read")
    assert api.ok(key, "read") == first  # the default is stable
    body = api.body(key)
    replaced = api.ok(key, "replace", body=body)  # the first replace may leave version out
    assert (replaced["id"], replaced["version"]) == (first["id"], 1)
    missing = api.call(key, "replace", body=body)
    assert missing.status_code == 400 and missing.json()["message"].startswith("version:"), missing.text
    assert api.call(key, "replace", body={**body, "version": 7}).status_code == 409
    again = api.ok(key, "replace", body={**body, "version": 1})
    assert again["version"] == 2
    assert api.ok(key, "read") == again


# -- relationships --------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "field", "target"), RELATIONSHIPS)
def test_a_missing_reference_is_a_400_naming_the_field(api, key, field, target):
    needed = {}
    for name, other in NEEDS.get(key, {}).items():
        if name != field:
            needed[name] = api.make(other)[0]["id"]
    response = api.call(key, "create", body=api.body(key, {**needed, field: NOWHERE}))
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}: no "), response.text
    assert NOWHERE in response.json()["message"]


@pytest.mark.parametrize(("key", "field", "target"), RELATIONSHIPS)
def test_what_is_referenced_cannot_be_deleted(api, key, field, target):
    referrer, scope = api.make(key)
    target_id = referrer[field]
    refused = api.call(target, "delete", entity_id=target_id)
    assert refused.status_code == 409, refused.text
    assert referrer["id"] in refused.json()["message"]
    api.ok(key, "delete", scope=scope, entity_id=referrer["id"])
    assert api.call(target, "retrieve", entity_id=target_id).status_code == 200


def test_a_pricing_on_a_compound_aggregation_holds_it(api):
    made = api.client.post(f"/organizations/{ORG}/compoundaggregations", headers=api.headers, json={
        "name": "Storage", "rounding": "UP", "quantityPerUnit": 1, "unit": "GB", "calculation": "a"})
    assert made.status_code == 200, made.text
    aggregation_id = made.json()["id"]
    plan, _ = api.make("plans")
    pricing = api.ok("pricings", "create", body=api.body("pricings", {
        "planId": plan["id"], "compoundAggregationId": aggregation_id}))
    refused = api.client.delete(f"/organizations/{ORG}/compoundaggregations/{aggregation_id}", headers=api.headers)
    assert refused.status_code == 409 and pricing["id"] in refused.json()["message"]
    api.ok("pricings", "delete", entity_id=pricing["id"])
    gone = api.client.delete(f"/organizations/{ORG}/compoundaggregations/{aggregation_id}", headers=api.headers)
    assert gone.status_code == 200


def test_an_array_of_references_checks_each_id(api):
    product, _ = api.make("products")
    account, _ = api.make("accounts")
    response = api.call("commitments", "create", body=api.body("commitments", {
        "accountId": account["id"], "productIds": [product["id"], NOWHERE]}))
    assert response.status_code == 400
    assert response.json()["message"] == f"productIds: no Product with id '{NOWHERE}'"
    held = api.ok("commitments", "create", body=api.body("commitments", {
        "accountId": account["id"], "productIds": [product["id"]]}))
    refused = api.call("products", "delete", entity_id=product["id"])
    assert refused.status_code == 409 and held["id"] in refused.json()["message"]


def test_a_child_account_names_an_existing_parent_which_then_cannot_go(api):
    parent, _ = api.make("accounts")
    orphan = api.call("accounts", "create", body=api.body("accounts", {"parentAccountId": NOWHERE}))
    assert orphan.status_code == 400 and orphan.json()["message"].startswith("parentAccountId: no Account")
    child, _ = api.make("accounts", parentAccountId=parent["id"])
    assert api.call("accounts", "delete", entity_id=parent["id"]).status_code == 409
    loop = api.body("accounts", {"code": parent["code"], "parentAccountId": child["id"], "version": 1})
    refused = api.call("accounts", "update", entity_id=parent["id"], body=loop)
    assert refused.status_code == 400 and refused.json()["message"].startswith("parentAccountId:"), refused.text
    api.ok("accounts", "delete", entity_id=child["id"])
    api.ok("accounts", "delete", entity_id=parent["id"])


@pytest.mark.parametrize(("pair", "key"), [(("planId", "planTemplateId"), "pricings"),
                                           (("planId", "planGroupId"), "accountplans")])
def test_exactly_one_of_two_references(api, pair, key):
    plan, _ = api.make("plans")
    other_key = {"planTemplateId": "plantemplates", "planGroupId": "plangroups"}[pair[1]]
    other, _ = api.make(other_key)
    given = {name: api.make(target)[0]["id"] for name, target in NEEDS[key].items() if name not in pair}
    both = api.call(key, "create", body=api.body(key, {**given, pair[0]: plan["id"], pair[1]: other["id"]}))
    assert both.status_code == 400 and both.json()["message"].startswith(f"{pair[0]}: exactly one of")
    neither = api.call(key, "create", body=api.body(key, given))
    assert neither.status_code == 400 and neither.json()["message"].startswith(f"{pair[0]}: exactly one of")


def test_a_nested_entity_lives_under_its_parent(api):
    key = "balances/{balanceId}/balancechargeschedules"
    schedule, scope = api.make(key)
    assert schedule["balanceId"] == scope["balanceId"]
    other, _ = api.make("balances")
    assert api.ok(key, "list", scope={"balanceId": other["id"]})["data"] == []
    api.ok("balances", "delete", entity_id=scope["balanceId"])
    gone = api.call(key, "list", scope=scope)
    assert gone.status_code == 404
    assert gone.json()["message"] == f"No Balance with id '{scope['balanceId']}'"


def test_a_plan_shows_the_product_of_its_template(api):
    plan, _ = api.make("plans")
    template = api.ok("plantemplates", "retrieve", entity_id=plan["planTemplateId"])
    assert plan["productId"] == template["productId"]


# -- Events ---------------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(k for k in EVENTS if "create" in RESOURCES.get(k, {})))
def test_each_change_records_its_event(api, key):
    prefix = EVENTS[key]
    entity, scope = api.make(key)
    [created] = api.events(f"{prefix}.created")
    assert created["m3terEvent"]["eventData"]["newDto"]["id"] == entity["id"]
    if "update" in RESOURCES[key]:
        body = api.body(key, {k: entity[k] for k in NEEDS.get(key, {})})
        api.ok(key, "update", scope=scope, entity_id=entity["id"], body={**body, "version": 1})
        [updated] = api.events(f"{prefix}.updated")
        data = updated["m3terEvent"]["eventData"]
        assert (data["oldDto"]["version"], data["newDto"]["version"]) == (1, 2)
    if "delete" in RESOURCES[key]:
        api.ok(key, "delete", scope=scope, entity_id=entity["id"])
        [deleted] = api.events(f"{prefix}.deleted")
        assert deleted["m3terEvent"]["eventData"]["oldDto"]["id"] == entity["id"]
        assert "newDto" not in deleted["m3terEvent"]["eventData"]


@pytest.mark.parametrize("key", sorted(k for k in SINGLETON_EVENTS if "replace" in RESOURCES.get(k, {})))
def test_a_singleton_is_created_by_its_first_replace_and_updated_by_the_next(api, key):
    prefix = SINGLETON_EVENTS[key]
    body = api.body(key)
    api.ok(key, "replace", body=body)
    api.ok(key, "replace", body={**body, "version": 1})
    [created] = api.events(f"{prefix}.created")
    [updated] = api.events(f"{prefix}.updated")
    assert created["m3terEvent"]["eventData"]["newDto"]["version"] == 1
    assert updated["m3terEvent"]["eventData"]["newDto"]["version"] == 2


def test_a_rule_on_commitment_updated_fires_on_a_real_put(api):
    rule = api.client.post(f"/organizations/{ORG}/notifications/configurations", headers=api.headers, json={
        "name": "c", "code": "c", "description": "d", "eventName": "configuration.commitment.updated"})
    assert rule.status_code == 200, rule.text
    commitment, _ = api.make("commitments")
    body = api.body("commitments", {"accountId": commitment["accountId"]})
    api.ok("commitments", "update", entity_id=commitment["id"], body={**body, "version": 1})
    items, _ = api.app.backend.events.list(Caller(ORG, "test-client"), {"notificationId": rule.json()["id"]},
                                           10, None)
    assert [e["m3terEvent"]["eventData"]["newDto"]["id"] for e in items] == [commitment["id"]]


# -- an operation the mock does not serve ----------------------------------------------------

def test_an_operation_marked_unimplemented_is_a_501_that_says_why():
    """Every published operation is served today; the mechanism stays for the next one the spec
    adds before its rules exist, so it is checked on a copy of the spec with one op marked."""
    spec = copy.deepcopy(SPEC)
    operation = spec["paths"]["/organizations/{orgId}/products/{id}"]["get"]
    operation["x-mock"] = {"action": "unimplemented", "reason": "a reason written in the spec"}
    handler = handlers_for(spec)[operation["operationId"]]
    with pytest.raises(MockError) as refused:
        handler(orgId=ORG, id="p-1", user="test-client")
    assert refused.value.status == 501
    assert refused.value.message == ("GET /organizations/{orgId}/products/{id} is not implemented by m3ter-mock yet: "
                                     "a reason written in the spec")


def test_a_pricings_bands_have_ids_and_events_of_their_own(api):
    plan, _ = api.make("plans")
    aggregation, _ = api.make("aggregations")
    given = {"planId": plan["id"], "aggregationId": aggregation["id"]}

    def band(lower, price):
        return {"lowerLimit": lower, "fixedPrice": 0, "unitPrice": price}

    pricing = api.ok("pricings", "create", body=api.body("pricings", {
        **given, "pricingBands": [band(0, 1), band(100, 0.5)]}))
    first, second = pricing["pricingBands"]
    assert first["id"] != second["id"]
    assert len(api.events("configuration.pricingband.created")) == 2

    # Sent again without ids, a band keeps the id of the stored band with its lowerLimit.
    body = api.body("pricings", {**given, "pricingBands": [band(0, 2), band(200, 0.25)], "version": 1})
    updated = api.ok("pricings", "update", entity_id=pricing["id"], body=body)
    assert updated["pricingBands"][0]["id"] == first["id"]
    [changed] = api.events("configuration.pricingband.updated")
    assert (changed["m3terEvent"]["eventData"]["oldDto"]["unitPrice"],
            changed["m3terEvent"]["eventData"]["newDto"]["unitPrice"]) == (1, 2)
    [dropped] = api.events("configuration.pricingband.deleted")
    assert dropped["m3terEvent"]["eventData"]["oldDto"]["id"] == second["id"]
    assert len(api.events("configuration.pricingband.created")) == 3

    api.ok("pricings", "delete", entity_id=pricing["id"])
    assert len(api.events("configuration.pricingband.deleted")) == 3
