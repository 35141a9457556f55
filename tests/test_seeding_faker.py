"""The Faker generator (README "Seed data"): ``m3ter-mock seed`` writes a fixture of a
coherent, realistic organization, and ``POST /_mock/organizations/{orgId}/seed`` fills one.
Deterministic for a seed, bounded in size, and made of data the API itself would accept:
replayed call by call through the HTTP API, every call succeeds; read back through the
official SDK with strict response validation, every entity matches m3ter's schemas; billed,
every account gets its bill."""

from __future__ import annotations

import httpx
import pytest

from mockserver import cli
from mockserver.backend.core import Backend
from mockserver.backend.seeding import read_fixture_file
from tests.conftest import bearer_for
from tests.support.nulls import strict_sdk

SMALL = {"seed": 11, "accounts": 6, "products": 3, "measurementsPerAccount": 40, "start": "2025-01-01", "days": 31}


def seed(client, org, body=None):
    response = client.post(f"/_mock/organizations/{org}/seed", json=body) if body is not None else \
        client.post(f"/_mock/organizations/{org}/seed")
    assert response.status_code == 201, response.text
    return response.json()


def listed(client, auth, org, resource):
    items, token = [], None
    while True:
        response = client.get(f"/organizations/{org}/{resource}", headers=auth,
                              params={"pageSize": 100, **({"nextToken": token} if token else {})})
        assert response.status_code == 200, response.text
        items += response.json()["data"]
        token = response.json().get("nextToken")
        if not token:
            return items


def write_fixture(tmp_path, name, *flags) -> str:
    path = str(tmp_path / name)
    assert cli.main(["seed", *flags, "--output", path]) == 0
    return path


# -- the command ----------------------------------------------------------------------------

def test_the_same_seed_writes_the_same_fixture_and_another_seed_another(tmp_path):
    flags = ("--accounts", "4", "--measurements-per-account", "20")
    first = write_fixture(tmp_path, "a.yaml", "--seed", "7", *flags)
    again = write_fixture(tmp_path, "b.yaml", "--seed", "7", *flags)
    other = write_fixture(tmp_path, "c.yaml", "--seed", "8", *flags)
    text = open(first, encoding="utf-8").read()
    assert text == open(again, encoding="utf-8").read()
    assert text != open(other, encoding="utf-8").read()
    organization = read_fixture_file(first)["organizations"]["my-test-org"]
    assert len(organization["accounts"]) == 4 and len(organization["measurements"]) == 80
    assert len(organization["products"]) == 3  # the default


def test_the_written_fixture_loads_as_serve_seed_loads_it(tmp_path):
    path = write_fixture(tmp_path, "org.json", "--org", "demo", "--accounts", "5", "--products", "2",
                         "--measurements-per-account", "10")
    [result] = Backend().seeding.load_files([(path, read_fixture_file(path))])
    assert result.org_id == "demo"
    assert (result.created["products"], result.created["accounts"], result.measurements) == (2, 5, 50)
    assert (result.created["meters"], result.created["plantemplates"], result.created["plans"]) == (2, 2, 4)


def test_sizes_beyond_their_maximum_are_refused_by_the_command(capsys):
    for flags, message in [
        (["--accounts", "1001"], "--accounts: 1001 is outside 1-1000"),
        (["--products", "9"], "--products: 9 is outside 1-8"),
        (["--accounts", "100", "--measurements-per-account", "2001"],
         "--measurements-per-account: --accounts x --measurements-per-account is 200100; at most 200000 "
         "measurements are made at once"),
        (["--start", "2025-13-01"], "--start: '2025-13-01' is not a date (YYYY-MM-DD)"),
    ]:
        assert cli.main(["seed", *flags]) == 2
        assert capsys.readouterr().err == f"m3ter-mock: {message}\n"


# -- the admin call -------------------------------------------------------------------------

def test_the_defaults_make_ten_accounts_on_three_products_with_a_hundred_measurements_each(client):
    result = seed(client, "org-default")
    assert (result["seed"], result["created"]["accounts"], result["created"]["products"],
            result["measurements"]) == (0, 10, 3, 1000)
    assert set(result["created"]) == {"products", "meters", "aggregations", "compoundaggregations", "plantemplates",
                                      "plans", "pricings", "accounts", "accountplans", "commitments"}


def test_the_same_seed_gives_the_same_data_and_ids(client):
    first, second = seed(client, "org-one", SMALL), seed(client, "org-two", SMALL)
    assert first["created"] == second["created"] and first["ids"] == second["ids"]
    other = seed(client, "org-three", {**SMALL, "seed": SMALL.get("seed", 0) + 1})
    assert set(first["ids"].values()).isdisjoint(other["ids"].values())  # another seed, other ids
    auth = bearer_for(client)
    shown = lambda org: [(a["name"], a["code"], a["emailAddress"], a["address"])  # noqa: E731
                         for a in listed(client, auth, org, "accounts")]
    assert shown("org-one") == shown("org-two")
    assert len({name for name, *_ in shown("org-one")}) == 6  # Faker's company names, each its own


def test_seeding_the_same_organization_twice_is_a_409_that_changes_nothing(app, client):
    seed(client, "org-twice", SMALL)
    before = app.backend.store.contents()
    response = client.post("/_mock/organizations/org-twice/seed", json=SMALL)
    assert response.status_code == 409
    assert response.json()["message"].startswith("organization 'org-twice': products ")
    assert app.backend.store.contents() == before


@pytest.mark.parametrize("body, message", [
    ({"accounts": 1001}, "accounts: 1001 is greater than the maximum of 1000"),
    ({"accounts": 0}, "accounts: 0 is less than the minimum of 1"),
    ({"products": 9}, "products: 9 is greater than the maximum of 8"),
    ({"measurementsPerAccount": 10001}, "measurementsPerAccount: 10001 is greater than the maximum of 10000"),
    ({"days": 367}, "days: 367 is greater than the maximum of 366"),
    ({"accounts": 201, "measurementsPerAccount": 1000},
     "measurementsPerAccount: accounts x measurementsPerAccount is 201000; at most 200000 measurements are made "
     "at once"),
    ({"start": "2025-02-30"}, "start: '2025-02-30' is not a 'date'"),
    ({"colour": "blue"}, "Additional properties are not allowed ('colour' was unexpected)"),
])
def test_sizes_beyond_their_maximum_are_a_400(app, client, body, message):
    response = client.post("/_mock/organizations/org-big/seed", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert "org-big" not in app.backend.store.org_ids()


# -- the data obeys every rule of the API ------------------------------------------------------

def _resolved(value, ids):
    if isinstance(value, str) and value.startswith("@"):
        return value[1:] if value.startswith("@@") else ids[value[1:]]
    if isinstance(value, dict):
        return {k: _resolved(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, ids) for v in value]
    return value


def test_the_generated_fixture_replayed_through_the_http_api_is_accepted_call_by_call(tmp_path, client):
    """Each entity POSTed as a client would (its references replaced by the ids the earlier
    answers gave), in the order the document lists them; then the measurements in batches."""
    path = write_fixture(tmp_path, "replay.json", "--org", "x", "--seed", "3", "--accounts", "8",
                         "--products", "8", "--measurements-per-account", "150")
    content = read_fixture_file(path)["organizations"]["x"]
    auth = bearer_for(client)
    ids, posted = {}, 0
    for resource, members in content.items():
        if resource == "measurements":
            continue
        for name, body in members.items():
            response = client.post(f"/organizations/org-replay/{resource}", json=_resolved(body, ids), headers=auth)
            assert response.status_code == 200, (resource, name, response.text)
            ids[f"{resource}/{name}"] = response.json()["id"]
            posted += 1
    rows = content["measurements"]
    for start in range(0, len(rows), 1000):
        response = client.post("/organizations/org-replay/measurements", json={"measurements": rows[start:start + 1000]},
                               headers=auth)
        assert response.status_code == 200, response.text
    assert posted > 8 * 9 and len(rows) == 1200
    # Nothing was made on the way (no skeleton account for an unknown code).
    assert len(listed(client, auth, "org-replay", "accounts")) == 8


def test_every_seeded_entity_reads_back_through_the_strict_sdk(live_url, live_app):
    live_app.backend.reset()
    response = httpx.post(f"{live_url}/_mock/organizations/org-strict/seed", json=SMALL, timeout=120)
    assert response.status_code == 201, response.text
    created = response.json()["created"]
    with strict_sdk(live_url, "org-strict") as sdk:
        counts = {
            "products": len(list(sdk.products.list(page_size=100))),
            "meters": len(list(sdk.meters.list(page_size=100))),
            "aggregations": len(list(sdk.aggregations.list(page_size=100))),
            "compoundaggregations": len(list(sdk.compound_aggregations.list(page_size=100))),
            "plantemplates": len(list(sdk.plan_templates.list(page_size=100))),
            "plans": len(list(sdk.plans.list(page_size=100))),
            "pricings": len(list(sdk.pricings.list(page_size=100))),
            "accounts": len(list(sdk.accounts.list(page_size=100))),
            "accountplans": len(list(sdk.account_plans.list(page_size=100))),
            "commitments": len(list(sdk.commitments.list(page_size=100))),
        }
        account = next(iter(sdk.accounts.list()))
        assert sdk.accounts.retrieve(account.id).address.country == "US"
    assert counts == created


def test_a_bill_job_over_the_seeded_organization_bills_every_account(client):
    result = seed(client, "org-bills", SMALL)
    client.post("/_mock/clock", json={"freeze": True, "at": "2025-02-01T06:00:00Z"})
    auth = bearer_for(client)
    job = client.post("/organizations/org-bills/billjobs", headers=auth,
                      json={"lastDateInBillingPeriod": "2025-01-31", "billingFrequency": "MONTHLY"})
    assert job.status_code == 200, job.text
    client.post("/_mock/clock", json={"advanceSeconds": 1})
    done = client.get(f"/organizations/org-bills/billjobs/{job.json()['id']}", headers=auth).json()
    assert done["status"] == "COMPLETE"
    bills = listed(client, auth, "org-bills", "bills")
    accounts = {v for k, v in result["ids"].items() if k.startswith("accounts/")}
    assert {b["accountId"] for b in bills} == accounts and len(done["billIds"]) == len(accounts) == 6
    usage = [item for b in bills for item in b.get("lineItems", []) if item["lineItemType"] == "USAGE"]
    assert usage and all(item["quantity"] >= 0 for item in usage)
    assert any(item["subtotal"] > 0 for item in usage)
