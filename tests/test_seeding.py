"""Seed fixtures (README "Seed data"): ``m3ter-mock serve --seed FILE`` and ``POST
/_mock/organizations/{orgId}/fixture``. Entities by resource and reference name, created in
the order their references need through the API's rules; a bad file stops start-up with one
line naming the file, the entity and the field, and nothing of it is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.backend.core import Backend
from mockserver.backend.crud import Caller
from mockserver.backend.seeding import SeedFileError, read_fixture_file
from tests.conftest import bearer_for, make_settings
from tests.support import leaks
from tests.support.receiver import receiving

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "seed.yaml"
ORG = "my-test-org"
BASE = f"/organizations/{ORG}"


@pytest.fixture(scope="module")
def seeded():
    """A mock started with the README's example fixture."""
    leaks.remember("my-secret")  # its webhook's secret: never in a log
    return create_app(make_settings(seed_files=(str(EXAMPLE),)))


def get(client, auth, path):
    response = client.get(path, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def by_code(client, auth, resource):
    return {e["code"]: e for e in get(client, auth, f"{BASE}/{resource}?pageSize=100")["data"]}


def fixture_file(tmp_path, text: str, name: str = "fixture.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def start_up_error(path: str, *, app: bool = False) -> str:
    """What stops start-up: building the app (``app``), or, cheaper, what it calls (the file
    read, then the backend's load)."""
    with pytest.raises(SeedFileError) as caught:
        if app:
            create_app(make_settings(seed_files=(path,)))
        else:
            Backend().seeding.load_files([(path, read_fixture_file(path))])
    return str(caught.value)


PRODUCT = "    products:\n      storage: {name: Storage, code: storage}\n"


# -- the example file ------------------------------------------------------------------------

def test_the_example_fixture_is_loaded_at_start_up_with_its_references_linked(seeded):
    client = seeded.test_client()
    auth = bearer_for(client)
    products, accounts = by_code(client, auth, "products"), by_code(client, auth, "accounts")
    meters, plans = by_code(client, auth, "meters"), by_code(client, auth, "plans")
    assert set(products) == {"storage", "api"}
    assert meters["storage"]["productId"] == products["storage"]["id"]
    assert plans["api_plan"]["standingCharge"] == 49
    labs = accounts["acme-labs"]
    assert labs["parentAccountId"] == accounts["acme"]["id"]
    assert labs["purchaseOrderNumber"] == "@PO-2024-17"  # "@@PO-2024-17" in the file
    assert labs["createdBy"] == "m3ter-mock-seed" and labs["version"] == 1
    pricings = get(client, auth, f"{BASE}/pricings")["data"]
    aggregations = by_code(client, auth, "aggregations")
    assert {(p["planId"], p["aggregationId"]) for p in pricings} == {
        (plans["storage_plan"]["id"], aggregations["gb_stored"]["id"]),
        (plans["api_plan"]["id"], aggregations["api_calls"]["id"])}
    config = get(client, auth, f"{BASE}/organizationconfig")
    assert (config["currency"], config["daysBeforeBillDue"], config["version"]) == ("USD", 14, 1)
    # The transaction went through the action: the Balance's amount moved by it.
    balance = get(client, auth, f"{BASE}/balances")["data"][0]
    assert balance["amount"] == 500
    transactions = get(client, auth, f"{BASE}/balances/{balance['id']}/transactions")["data"]
    assert [(t["amount"], t["description"]) for t in transactions] == [(500, "Initial top-up")]
    link = get(client, auth, f"{BASE}/integrationconfigs")["data"][0]
    assert link["entityId"] == get(client, auth, f"{BASE}/notifications/configurations")["data"][0]["id"]
    # Creating went through the services: each entity recorded its Event.
    created = get(client, auth, f"{BASE}/events?eventName=configuration.product.created")["data"]
    assert len(created) == 2


def test_the_example_fixture_bills_as_the_readme_worked_example_does(seeded):
    """March's 950 GB at 1 USD per GB, drawn from the 1000 USD commitment: the seeded
    measurements, plans, pricings and commitment work together as if made by API calls."""
    client = seeded.test_client()
    client.post("/_mock/clock", json={"freeze": True, "at": "2024-04-01T06:00:00Z"})
    auth = bearer_for(client)
    job = client.post(f"{BASE}/billjobs", json={"lastDateInBillingPeriod": "2024-03-31",
                                                "billingFrequency": "MONTHLY"}, headers=auth)
    assert job.status_code == 200, job.text
    client.post("/_mock/clock", json={"advanceSeconds": 1})
    acme = by_code(client, auth, "accounts")["acme"]
    bill = get(client, auth, f"{BASE}/bills/latest/{acme['id']}")
    assert {(i["lineItemType"], i["subtotal"]) for i in bill["lineItems"]} == {
        ("USAGE", 950), ("COMMITMENT_CONSUMED", -950)}
    assert get(client, auth, f"{BASE}/commitments")["data"][0]["amountSpent"] == 950


def test_the_readmes_fixture_loads_as_written(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Fixture files"):]
    snippet = section[section.index("```yaml\n") + len("```yaml\n"):section.index("```\n", section.index("```yaml"))]
    path = fixture_file(tmp_path, snippet, "readme.yaml")
    backend = Backend()
    [result] = backend.seeding.load_files([(path, read_fixture_file(path))])
    assert result.created == {"organizationconfig": 1, "products": 1, "meters": 1, "accounts": 2, "balances": 1,
                              "balances/transactions": 1}
    assert result.measurements == 1
    labs = backend.resources["accounts"].find(Caller(ORG, "t"), result.ids["accounts/acme-labs"])
    assert (labs["parentAccountId"], labs["purchaseOrderNumber"]) == (result.ids["accounts/acme"], "@PO-17")


def test_seed_files_come_from_m3ter_mock_seed_as_from_the_flag(monkeypatch):
    from mockserver import cli

    served = []
    monkeypatch.setattr(cli, "serve_forever", lambda args: served.append(args.seed) or 0)
    for name in [n for n in os.environ if n.startswith("M3TER_MOCK_")]:
        monkeypatch.delenv(name)
    assert cli.main(["serve", "--seed", "a.yaml", "--seed", "b.json"]) == 0
    monkeypatch.setenv("M3TER_MOCK_SEED", "a.yaml b.json")
    assert cli.main(["serve"]) == 0
    assert served == [["a.yaml", "b.json"], ["a.yaml", "b.json"]]


def test_an_example_file_in_json_loads_the_same(tmp_path):
    import yaml

    document = yaml.safe_load(EXAMPLE.read_text())
    path = fixture_file(tmp_path, json.dumps(document), "seed.json")
    backend = Backend()
    [result] = backend.seeding.load_files([(path, read_fixture_file(path))])
    assert result.created["products"] == 2 and result.measurements == 3
    assert sorted(result.ids)[:3] == ["accountplans/acme-labs-api", "accountplans/acme-storage", "accounts/acme"]


# -- a bad file: one line naming the file, the entity and the field; nothing loaded ----------------

def test_a_body_that_breaks_the_spec_names_file_entity_and_field(tmp_path):
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n" + PRODUCT + (
        "    meters:\n      storage:\n        productId: '@products/storage'\n        name: Storage\n"
        "        code: storage\n        derivedFields: []\n"
        "        dataFields: [{category: SIZE, code: gb, name: GB}]\n"))
    assert start_up_error(path, app=True) == (
        f"seed file {path!r}: organization 'org-a': meters 'storage': dataFields[0].category: 'SIZE' is not one of "
        f"['WHO', 'WHERE', 'WHAT', 'OTHER', 'METADATA', 'MEASURE', 'INCOME', 'COST']")


def test_a_missing_required_field_and_a_field_the_request_does_not_have(tmp_path):
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n    products:\n      storage: {name: Storage}\n")
    assert start_up_error(path) == (
        f"seed file {path!r}: organization 'org-a': products 'storage': 'code' is a required property")
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n    products:\n"
                                  "      storage: {name: Storage, code: storage, colour: blue}\n")
    assert start_up_error(path) == (
        f"seed file {path!r}: organization 'org-a': products 'storage': colour: not a field of PostProduct's "
        f"request body")


def test_unknown_references_cycles_wrong_kinds_and_repeated_names_stop_start_up(tmp_path):
    cases = {
        "    meters:\n      m: {productId: '@products/nothing', name: M, code: m, dataFields: [], derivedFields: []}\n":
            "organization 'org-a': meters 'm': productId: @products/nothing names no entity of this organization's "
            "fixture (it has no products)",
        "    accounts:\n      a: {name: A, code: a, emailAddress: a@a.example, parentAccountId: '@accounts/b'}\n"
        "      b: {name: B, code: b, emailAddress: b@b.example, parentAccountId: '@accounts/a'}\n":
            "organization 'org-a': accounts 'a': its references go round in a cycle (accounts 'a' -> accounts 'b' -> "
            "accounts 'a'); one of them must be created without the reference",
        "    accounts:\n      a: {name: A, code: a, emailAddress: a@a.example}\n"
        "    plantemplates:\n      t: {productId: '@accounts/a', name: T, billFrequency: MONTHLY, currency: USD, "
        "standingCharge: 0}\n":
            "organization 'org-a': plantemplates 't': productId: @accounts/a is one of accounts; productId names one "
            "of products",
        "    products:\n      p: {name: P, code: p}\n      p: {name: Q, code: q}\n":
            "not YAML: 'p' is given twice in one mapping (line 5, column 7)",
    }
    for body, message in cases.items():
        path = fixture_file(tmp_path, "organizations:\n  org-a:\n" + body)
        assert start_up_error(path) == f"seed file {path!r}: {message}"


def test_a_file_that_cannot_be_read_or_parsed(tmp_path):
    missing = str(tmp_path / "missing.yaml")
    assert start_up_error(missing, app=True) == f"seed file {missing!r}: cannot be read (No such file or directory)"
    broken = fixture_file(tmp_path, "organizations: [\n", "broken.yaml")
    assert start_up_error(broken).startswith(f"seed file {broken!r}: not YAML: ")
    duplicated = fixture_file(tmp_path, '{"organizations": {"a": {}, "a": {}}}', "twice.json")
    assert start_up_error(duplicated) == f"seed file {duplicated!r}: 'a' is given twice in one object"


def test_a_rule_broken_half_way_loads_nothing_of_any_organization(tmp_path):
    """The second organization's second product repeats a code (a 409 from the service, found
    only when creating): the first organization, loaded by then, is not kept either."""
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n" + PRODUCT + "  org-b:\n" + PRODUCT
                        + "      again: {name: Storage again, code: storage}\n")
    backend = Backend()
    with pytest.raises(SeedFileError) as caught:
        backend.seeding.load_files([(path, read_fixture_file(path))])
    assert str(caught.value).startswith(
        f"seed file {path!r}: organization 'org-b': products 'again': code 'storage' is already used by Product ")
    assert backend.store.contents() == {}


def test_a_measurement_is_named_by_its_place_in_the_whole_list(tmp_path):
    good = "      - {meter: storage, account: acme, ts: '2024-03-05T12:00:00Z', measure: {gb: 1}}\n"
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n" + PRODUCT + (
        "    meters:\n      storage:\n        productId: '@products/storage'\n        name: Storage\n"
        "        code: storage\n        derivedFields: []\n"
        "        dataFields: [{category: MEASURE, code: gb, name: GB}]\n"
        "    measurements:\n") + good * 1001 + "      - {meter: storage, account: acme, ts: '2024-03-05T12:00:00Z', "
                                              "measure: {tb: 1}}\n")
    message = start_up_error(path)
    assert message.startswith(f"seed file {path!r}: organization 'org-a': measurements[1001].measure.tb: ")


def test_measurements_are_checked_against_the_spec_before_anything_is_loaded(tmp_path):
    good = "      - {meter: storage, account: acme, ts: '2024-03-05T12:00:00Z'}\n"
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n" + PRODUCT + "    measurements:\n" + good * 1500
                        + "      - {meter: storage, account: acme, ts: '2024-03-05 noon'}\n" + good)
    assert start_up_error(path) == (
        f"seed file {path!r}: organization 'org-a': measurements[1500].ts: '2024-03-05 noon' is not a 'date-time'")


def test_serve_with_a_bad_seed_file_exits_2_with_one_line(tmp_path):
    path = fixture_file(tmp_path, "organizations:\n  org-a:\n    products:\n      storage: {name: Storage}\n")
    done = subprocess.run([sys.executable, "-m", "mockserver", "serve", "--port", "1", "--seed", path],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == (f"m3ter-mock: seed file {path!r}: organization 'org-a': products 'storage': 'code' is a "
                           f"required property\n")


# -- with a state file; at runtime --------------------------------------------------------------

def test_an_organization_the_state_file_holds_is_not_seeded_again(tmp_path):
    state, seed = str(tmp_path / "mock.state"), fixture_file(tmp_path, "organizations:\n  org-a:\n" + PRODUCT)
    first = create_app(make_settings(state_file=state, seed_files=(seed,)))
    first.backend.state.close()  # saved, as at shutdown
    again = create_app(make_settings(state_file=state, seed_files=(seed,)))  # its code would be a 409 otherwise
    client = again.test_client()
    products = get(client, bearer_for(client), "/organizations/org-a/products")["data"]
    assert [p["code"] for p in products] == ["storage"]
    again.backend.state.close()


def test_a_fixture_is_loaded_at_runtime_and_answers_the_ids(client):
    response = client.post("/_mock/organizations/org-r/fixture", json={
        "products": {"storage": {"name": "Storage", "code": "storage"}},
        "plantemplates": {"monthly": {"productId": "@products/storage", "name": "Storage", "billFrequency": "MONTHLY",
                                      "currency": "USD", "standingCharge": 0}}})
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["orgId"], result["created"], result["measurements"]) == (
        "org-r", {"products": 1, "plantemplates": 1}, 0)
    auth = bearer_for(client)
    template = get(client, auth, f"/organizations/org-r/plantemplates/{result['ids']['plantemplates/monthly']}")
    assert template["productId"] == result["ids"]["products/storage"]


def test_a_refused_fixture_at_runtime_leaves_the_organization_as_it_was(app, client):
    auth = bearer_for(client)
    kept = client.post("/organizations/org-r/products", json={"name": "Kept", "code": "kept"}, headers=auth)
    assert kept.status_code == 200
    before = app.backend.store.contents()
    response = client.post("/_mock/organizations/org-r/fixture", json={
        "products": {"new": {"name": "New", "code": "new"}, "clash": {"name": "Clash", "code": "kept"}}})
    assert response.status_code == 409
    assert response.json()["message"].startswith(
        "organization 'org-r': products 'clash': code 'kept' is already used by Product ")
    assert app.backend.store.contents() == before  # no product "new", and no Event of it


def test_a_refused_fixture_sends_no_webhook_for_what_it_created_on_the_way(app, client):
    """A rule, its webhook and their link come first; the first product's created Event fires
    the rule; the second product's code is taken (409): the delivery goes with the rest."""
    leaks.remember("seed-hook-secret")
    with receiving() as receiver:
        response = client.post("/_mock/organizations/org-w/fixture", json={
            "notifications/configurations": {"on-product": {
                "name": "on product", "code": "on_product", "description": "d",
                "eventName": "configuration.product.created", "alwaysFireEvent": True}},
            "integrationdestinations/webhooks": {"hook": {
                "name": "hook", "description": "d", "url": receiver.url,
                "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "seed-hook-secret"}}},
            "integrationconfigs": {"link": {
                "entityType": "Notification", "entityId": "@notifications/configurations/on-product",
                "destination": "Webhook", "destinationId": "@integrationdestinations/webhooks/hook"}},
            "products": {"first": {"name": "First", "code": "same"}, "second": {"name": "Second", "code": "same"}}})
        assert response.status_code == 409
        attempts = client.get("/_mock/deliveries?orgId=org-w&wait=true").json()["data"]
        assert attempts == [] and receiver.requests == []
    assert "org-w" not in app.backend.store.org_ids()


def test_the_fixture_call_follows_the_admin_token_rule():
    app = create_app(make_settings(admin_token="seed-admin-token"))
    client = app.test_client()
    body = {"products": {"p": {"name": "P", "code": "p"}}}
    assert client.post("/_mock/organizations/org-t/fixture", json=body).status_code == 401
    assert client.post("/_mock/organizations/org-t/seed", json={}).status_code == 401
    allowed = client.post("/_mock/organizations/org-t/fixture", json=body,
                          headers={"Authorization": "Bearer seed-admin-token"})
    assert allowed.status_code == 201
