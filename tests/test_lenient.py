"""``m3ter-mock serve --lenient``: a Prism-compatible mock that keeps state (README, "The
lenient mode").

Driven the way m3ter's generated SDK suite drives a mock (tests/api_resources of the m3ter
sdist, run against the real thing by tools/sdk_suite.py): the official SDK with strict
response validation, the suite's placeholder credentials, preset token, organization and ids.
The mock is served in this process on a loopback port, with response validation on (so an
answer the spec does not allow is a 500, which the suite's guard fails on)."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
from pathlib import Path

import m3ter
import pytest

from mockserver import cli
from mockserver.app import create_app
from mockserver.domain.auth import parse_client_spec
from mockserver.backend.shapes import ORG_PREFIX
from mockserver.backend.state import read_state_file
from tests.conftest import make_settings
from tests.support import leaks
from tests.support.server import serve_in_thread

ORG = "My Org ID"  # the SDK suite's placeholders
TOKEN = "My Token"
KEY, SECRET = "My API Key", "My API Secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = f"/organizations/{ORG}"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lenient_app():
    leaks.remember(TOKEN, KEY, SECRET)
    return create_app(make_settings(lenient=True))


@pytest.fixture(scope="module")
def lenient_url(lenient_app):
    with serve_in_thread(lenient_app) as url:
        yield url


@pytest.fixture
def backend(lenient_app):
    lenient_app.backend.reset()
    return lenient_app.backend


@pytest.fixture
def sdk(lenient_url, backend):
    with m3ter.M3ter(base_url=lenient_url, api_key=KEY, api_secret=SECRET, token=TOKEN, org_id=ORG,
                     max_retries=0, _strict_response_validation=True) as client:
        yield client


@pytest.fixture
def http(lenient_app, backend):
    return lenient_app.test_client()


def stored(backend, collection: str) -> dict:
    return dict(backend.store.peek(ORG, collection).items)


# -- authentication ---------------------------------------------------------------------------

def test_any_bearer_token_is_accepted_and_the_default_mode_refuses_it(http, client):
    assert http.get(f"{PATH}/products", headers=AUTH).status_code == 200
    assert http.get(f"{PATH}/products", headers={"Authorization": "Bearer anything.at.all"}).status_code == 200
    assert client.get(f"{PATH}/products", headers=AUTH).status_code == 401  # the default mode


def test_a_request_without_a_token_is_still_401(http):
    response = http.get(f"{PATH}/products")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_token_endpoint_still_works_with_basic_and_with_a_bearer(sdk, http):
    by_basic = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                         auth=("ci-client", "ci-secret"))
    assert by_basic.status_code == 200 and by_basic.json()["expires_in"] == 18000
    issued = {"Authorization": f"Bearer {by_basic.json()['access_token']}"}
    assert http.get(f"{PATH}/products", headers=issued).status_code == 200
    # The SDK suite asks for a token with its preset bearer token.
    answer = sdk.authentication.get_bearer_token(grant_type="client_credentials")
    assert answer.token_type == "Bearer" and answer.expires_in == 18000


def test_a_bound_client_is_still_refused_elsewhere():
    app = create_app(make_settings(lenient=True, clients=[parse_client_spec("ro:ro-secret:org-a")]))
    leaks.remember_client("ro", "ro-secret")
    client = app.test_client()
    token = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                        auth=("ro", "ro-secret")).json()["access_token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert client.get("/organizations/org-a/products", headers=mine).status_code == 200
    assert client.get("/organizations/org-b/products", headers=mine).status_code == 403


# -- an id the organization does not hold --------------------------------------------------------

def test_a_placeholder_id_is_a_generated_entity_that_then_exists(sdk, backend, client, auth):
    account = sdk.accounts.retrieve("id")
    assert account.id == "id" and account.version == 1
    assert "@" in account.email_address and account.name and account.code
    assert account.parent_account_id is None  # a generated entity names no optional other one
    assert sdk.accounts.retrieve("id") == account  # the same entity again
    assert [a.id for a in sdk.accounts.list()] == ["id"]  # stored like any other
    assert set(stored(backend, "accounts")) == {"id"}
    assert client.get(f"{PATH}/accounts/id", headers=auth).status_code == 404  # the default mode


def test_the_generated_entity_is_the_same_for_the_same_organization_and_id(sdk, backend):
    first = sdk.products.retrieve("id").to_dict()
    backend.reset()  # forgotten: generated again, identically
    assert sdk.products.retrieve("id").to_dict() == first
    assert sdk.products.retrieve("id2").to_dict() != first
    with m3ter.M3ter(base_url=str(sdk.base_url), api_key=KEY, api_secret=SECRET, token=TOKEN, org_id="Other Org",
                     _strict_response_validation=True) as other:
        assert other.products.retrieve("id").to_dict() != first


def test_a_put_without_version_overwrites_a_placeholder_entity(sdk):
    sdk.products.retrieve("id")
    updated = sdk.products.update("id", code="storage", name="Storage")
    assert (updated.version, updated.name, updated.code) == (2, "Storage", "storage")
    assert sdk.products.retrieve("id").name == "Storage"
    # A stale version overwrites too: optimistic locking is a rule m3ter states in prose.
    assert sdk.products.update("id", code="storage", name="Storage 2", version=1).version == 3


def test_a_put_to_an_id_never_read_updates_the_generated_entity(sdk, backend):
    updated = sdk.meters.update("id", code="api_calls", name="API calls", derived_fields=[],
                                data_fields=[{"category": "MEASURE", "code": "calls", "name": "Calls"}])
    assert updated.version == 2 and updated.name == "API calls"
    assert stored(backend, "meters")["id"]["version"] == 2


def test_a_delete_of_an_id_never_read_answers_the_generated_entity(sdk, backend):
    deleted = sdk.commitments.delete("id")
    assert deleted.id == "id" and deleted.version == 1
    assert stored(backend, "commitments") == {}


def test_any_token_is_a_client_named_after_its_hash_never_the_token(sdk, backend):
    product = sdk.products.create(code="storage", name="Storage")
    expected = "bearer-" + hashlib.sha256(TOKEN.encode()).hexdigest()[:12]
    assert product.created_by == expected and product.last_modified_by == expected
    assert TOKEN not in str(backend.store.contents())


def test_a_snapshot_keeps_a_generated_entity(sdk, backend):
    first = sdk.accounts.retrieve("id")
    backend.state.take("with-placeholder")
    sdk.accounts.update("id", code="changed", email_address="a@example.com", name="Changed")
    backend.state.restore("with-placeholder")
    assert sdk.accounts.retrieve("id") == first


def test_create_update_without_version_list_delete(sdk):
    product = sdk.products.create(code="storage", name="Storage")
    assert product.version == 1
    assert sdk.products.update(product.id, code="storage", name="Storage GB").version == 2
    assert [p.name for p in sdk.products.list()] == ["Storage GB"]
    deleted = sdk.products.delete(product.id)
    assert deleted.id == product.id
    assert list(sdk.products.list()) == []


def test_a_generated_entity_is_saved_in_the_state_file_by_a_get(tmp_path):
    path = tmp_path / "mock.state"
    first = create_app(make_settings(lenient=True, state_file=str(path), state_save_delay_seconds=0))
    read = first.test_client().get(f"{PATH}/accounts/id", headers=AUTH).json()
    assert first.backend.state.file.wait_saved()  # a GET stored it: the saver heard of it
    assert read_state_file(path)[ORG].collections["accounts"].get("id") == read
    first.backend.state.close()
    second = create_app(make_settings(lenient=True, state_file=str(path)))
    assert second.test_client().get(f"{PATH}/accounts/id", headers=AUTH).json() == read
    second.backend.state.close()


def test_a_deleted_placeholder_is_gone_from_lists_and_generated_again_by_id(sdk):
    first = sdk.plans.retrieve("id")
    assert sdk.plans.delete("id").id == "id"
    assert list(sdk.plans.list()) == []
    # As with any id the organization does not hold (what a stateless mock's suite expects).
    assert sdk.plans.retrieve("id").to_dict() == first.to_dict()


def test_a_nested_resource_under_a_placeholder_parent(sdk, backend):
    transaction = sdk.balances.transactions.create(balance_id="balanceId", amount=25)
    assert transaction.amount == 25
    assert [t.id for t in sdk.balances.transactions.list(balance_id="balanceId")] == [transaction.id]
    assert sdk.balances.retrieve("balanceId").id == "balanceId"  # the parent was generated with it
    child = sdk.balances.transaction_schedules.retrieve("id", balance_id="balanceId")
    assert child.id == "id"
    assert set(stored(backend, "balances/balanceId/balancetransactionschedules")) == {"id"}


def test_a_singleton_reads_and_is_replaced_without_version(sdk):
    assert sdk.bill_config.retrieve().id
    assert sdk.bill_config.update(bill_lock_date="2026-01-31").version == 1
    assert sdk.bill_config.update(bill_lock_date="2026-02-28").version == 2  # no version sent either time
    assert str(sdk.bill_config.retrieve().bill_lock_date) == "2026-02-28"


def test_a_reference_to_an_unknown_id_names_an_entity_that_then_exists(sdk):
    template_id = "x" * 36  # the suite's placeholder where the spec wants 36 characters
    plan = sdk.plans.create(code="pro", name="Pro", plan_template_id=template_id)
    assert plan.plan_template_id == template_id
    assert [t.id for t in sdk.plan_templates.list()] == [template_id]
    assert sdk.plan_templates.retrieve(template_id).id == template_id


def test_prose_only_rules_are_relaxed(sdk):
    # A code m3ter calls unique, twice; both of a pricing's "exactly one of" pair.
    first, second = (sdk.products.create(code="same", name=f"Product {n}") for n in (1, 2))
    assert first.id != second.id
    pricing = sdk.pricings.create(plan_id="planId", plan_template_id="planTemplateId",
                                  start_date="2026-01-01T00:00:00Z",
                                  pricing_bands=[{"fixed_price": 0, "lower_limit": 0, "unit_price": 1}])
    assert pricing.plan_id == "planId" and pricing.plan_template_id == "planTemplateId"


def test_a_placeholder_next_token_reads_as_the_first_page(sdk):
    sdk.products.create(code="a", name="A")
    page = sdk.products.list(next_token="nextToken", page_size=1)
    assert [p.code for p in page.data] == ["a"]


def test_what_the_spec_states_is_still_enforced(http, backend):
    bad_enum = http.post(f"{PATH}/compoundaggregations", headers=AUTH, json={
        "name": "x", "code": "x", "rounding": "SIDEWAYS", "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})
    assert bad_enum.status_code == 400 and "rounding" in bad_enum.json()["message"]
    missing = http.post(f"{PATH}/products", headers=AUTH, json={"code": "x"})
    assert missing.status_code == 400 and "name" in missing.json()["message"]
    unknown_query = http.get(f"{PATH}/products?colour=red", headers=AUTH)
    assert unknown_query.status_code == 400
    assert http.get(f"{PATH}/nothinghere/id", headers=AUTH).status_code == 404
    assert http.patch(f"{PATH}/products/id", headers=AUTH, json={}).status_code == 405
    assert backend.store.contents() == {}  # nothing changed


def test_an_action_refused_by_a_rule_of_the_mock_answers_like_prism_and_changes_nothing(sdk, backend, client,
                                                                                        auth):
    # Events are recorded, never created: an unknown one is a generated answer, not stored.
    event = sdk.events.retrieve("id")
    assert event.id and event.event_name
    assert sdk.events.retrieve("id") == event  # deterministic
    assert list(sdk.events.list()) == []
    assert backend.store.contents() == {}
    assert client.get(f"{PATH}/events/id", headers=auth).status_code == 404  # the default mode


def test_generated_entities_start_in_their_first_state(sdk):
    assert sdk.bill_jobs.retrieve("id").status == "PENDING"
    assert sdk.bill_jobs.cancel("id").status == "CANCELLED"  # so the actions on them work
    revision = sdk.lookup_tables.lookup_table_revisions.retrieve("id", lookup_table_id="lookupTableId")
    assert revision.status == "DRAFT"
    bill = sdk.bills.retrieve("id")
    assert bill.locked is False and bill.status == "PENDING"


def test_every_entity_get_by_placeholder_id_is_schema_valid(lenient_app, http):
    """Every resource's GET by id (and a singleton's GET), checked by the mock's response
    validation (a schema-invalid answer would be a 500)."""
    backend = lenient_app.backend
    paths = []
    for key, service in backend.resources.items():
        base = ORG_PREFIX + key
        for path, item in backend.spec["paths"].items():
            if "get" in item and (path == base and service.kind.singleton or (
                    path.startswith(base + "/{") and path.count("/") == base.count("/") + 1)):
                paths.append(path)
    assert len(paths) >= 50
    for path in paths:
        url = path.replace("{orgId}", ORG)
        for parameter in [p for p in url.split("/") if p.startswith("{")]:
            url = url.replace(parameter, "id" if parameter == "{id}" else parameter[1:-1])
        response = http.get(url, headers=AUTH)
        assert response.status_code == 200, (path, response.text)
        if path.endswith("{id}"):
            assert response.json()["id"] == "id", path
            scope = {p[1:-1]: p[1:-1] for p in path.split("/") if p.startswith("{") and p not in ("{orgId}", "{id}")}
            service = backend.resources[next(k for k in backend.resources if path.startswith(ORG_PREFIX + k + "/{")
                                             and path.count("/") == (ORG_PREFIX + k).count("/") + 1)]
            assert backend.store.peek(ORG, service.kind.collection_name(scope)).get("id") is not None, path


# -- the flag ----------------------------------------------------------------------------------

class _Built(Exception):
    pass


def settings_served(monkeypatch, argv, environ):
    """The Settings ``m3ter-mock serve ARGV`` builds its app with (nothing is served)."""
    for name in [n for n in os.environ if n.startswith("M3TER_MOCK_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    built = []

    def record(settings):
        built.append(settings)
        raise _Built

    monkeypatch.setattr("mockserver.app.create_app", record)
    with pytest.raises(_Built):
        cli.main(["serve", *argv])
    return built[0]


@pytest.mark.parametrize("argv, environ", [(["--lenient"], {}), ([], {"M3TER_MOCK_LENIENT": "1"})])
def test_serve_lenient_and_its_variable_build_a_lenient_mock(monkeypatch, argv, environ):
    assert settings_served(monkeypatch, argv, environ).lenient is True


def test_the_default_is_faithful(monkeypatch):
    assert settings_served(monkeypatch, [], {}).lenient is False


def test_the_lenient_spec_relaxes_version_and_the_token_endpoint_only(http, client):
    served, default = http.get("/openapi.json").json(), client.get("/openapi.json").json()
    put = "/organizations/{orgId}/products/{id}"

    def put_body(spec):
        return spec["paths"][put]["put"]["requestBody"]["content"]["application/json"]["schema"]["allOf"]

    assert put_body(default)[1:] == [{"required": ["version"]}]
    assert put_body(served) == put_body(default)[:1]
    assert default["paths"]["/oauth/token"]["post"]["security"] == [{"BasicAuth": []}]
    assert served["paths"]["/oauth/token"]["post"]["security"] == [{"BasicAuth": []}, {"OAuth2": []}]
    assert default["components"]["schemas"]["Version"]["minimum"] == 1
    assert "minimum" not in served["components"]["schemas"]["Version"]
    for path in ("/organizations/{orgId}/products", "/organizations/{orgId}/plans"):
        assert served["paths"][path]["post"] == default["paths"][path]["post"]


# -- tools/sdk_suite.py ------------------------------------------------------------------------

def test_the_sdk_suite_tool_counts_outcomes_per_resource(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import sdk_suite
    finally:
        sys.path.remove(str(ROOT / "tools"))
    junit = tmp_path / "junit.xml"
    junit.write_text("""<testsuites><testsuite>
<testcase classname="tests.api_resources.test_products.TestProducts" name="test_method_list[strict]"/>
<testcase classname="tests.api_resources.test_products.TestProducts" name="test_method_create[strict]">
  <failure message="m3ter.BadRequestError: Error code: 400">trace</failure></testcase>
<testcase classname="tests.api_resources.balances.test_transactions.TestTransactions" name="test_method_list[loose]"/>
<testcase classname="tests.api_resources.balances.test_transactions.TestTransactions" name="test_x">
  <error message="fixture broke"/></testcase>
<testcase classname="tests.api_resources.test_products.TestProducts" name="test_skipped"><skipped/></testcase>
</testsuite></testsuites>""", encoding="utf-8")
    results = sdk_suite.read_results(junit)
    assert list(results) == ["balances/transactions", "products"]
    assert {k: results["products"][k] for k in ("passed", "failed", "errors", "skipped")} == {
        "passed": 1, "failed": 1, "errors": 0, "skipped": 1}
    assert results["products"]["failures"] == [("test_method_create[strict]", "m3ter.BadRequestError: Error code: 400")]
    assert results["balances/transactions"]["errors"] == 1
    totals = sdk_suite.print_report(results, show_failures=True)
    assert totals == {"passed": 2, "failed": 1, "errors": 1, "skipped": 1}
    out = capsys.readouterr().out
    assert "total" in out and "products test_method_create[strict]: m3ter.BadRequestError" in out
    lock = tmp_path / "requirements-dev.lock"
    lock.write_text("pytest==8.4.2\n    # via foo\npytest-asyncio==1.2.0\n", encoding="utf-8")
    assert sdk_suite.pinned(tmp_path, ("pytest", "pytest-asyncio", "respx")) == [
        "pytest==8.4.2", "pytest-asyncio==1.2.0", "respx"]


def test_the_sdk_suite_tool_says_when_nothing_answers(capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import sdk_suite
    finally:
        sys.path.remove(str(ROOT / "tools"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert sdk_suite.main(["--base-url", f"http://127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err.startswith(f"sdk_suite: nothing answers at http://127.0.0.1:{port}")
