"""Behaviour of the action modules (accounts and access, billing, the platform operations)
and of bill runs that mutation testing found unpinned, or no test ran:

* billing: a bill's line items page by page (per bill and across bills), a bill's status set
  to the one it has, a statement made again, statement URLs of a deleted bill, what a
  recalculation keeps and when statements go stale, the latest of two bills on one date,
  the bills CSV's range and its 5000-bill limit from both sides, ``store_bill``'s refusals;
* queued work after a snapshot restore: pending statement jobs, pending bill jobs and the
  scheduled runs start again from the restore;
* bill runs: a recalculation that waits its second and recalculates the bill it names, a cut
  period recalculated, previews in full and of an account without a plan (its bill epoch),
  the interval and start of the plans a job bills, the day a job made before midnight bills,
  scheduled runs that leave out AD_HOC plans and stale configurations and log an account they
  cannot bill, a deleted bill's balance draw given back;
* platform: integration run lists (entity, destination, order), the latest run among ids and
  on a tie, run logs, the catalogue and mapping configuration in full, Lookup data answers
  (fields, versions, writers, status moves, copies onto itself, uploads and downloads whose
  job or revision is gone), charge schedule previews;
* access: search sorted on a number, two invitations to one email, an invitation's expiry
  boundary.

Expected values are written as the README and the spec state them. Everything goes through
the API, except bills stored through the billing service's public ``store_bill`` (as
tests/test_actions_billing.py does)."""

from __future__ import annotations

import base64
import logging

import pytest

from mockserver.backend.actions import billing
from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for
from tests.support.org_calls import AppCalls

ORG = "org-pinned-actions"
OTHER_ORG = "org-pinned-actions-other"
CLIENT = "test-client"
START = "2024-04-02T00:00:00Z"


class Api(AppCalls):
    org = ORG
    caller = Caller(ORG, CLIENT)

    def bill(self, account: dict, start: str, end: str, items=None, **fields) -> dict:
        items = [{"lineItemType": "STANDING_CHARGE", "subtotal": "5"}] if items is None else items
        return billing.service(self.backend).store_bill(self.caller, account["id"], start, end, items, **fields)


@pytest.fixture
def api(app, client, auth):
    app.backend.change_clock(freeze=True, at=START)
    yield Api(app, client, auth)
    app.backend.deliveries.local_answer = None


# -- statement jobs and line items -------------------------------------------------------------------

def test_a_bills_line_items_come_page_by_page(api):
    acme = api.account("acme")
    items = [{"lineItemType": "STANDING_CHARGE", "subtotal": n, "description": f"line {n}"} for n in (1, 2, 3)]
    bill = api.bill(acme, "2024-03-01", "2024-04-01", items)
    api.bill(acme, "2024-02-01", "2024-03-01")  # another bill's line is never listed
    first = api.ok("get", f"/bills/{bill['id']}/lineitems", pageSize=2)
    assert [i["description"] for i in first["data"]] == ["line 1", "line 2"]
    rest = api.ok("get", f"/bills/{bill['id']}/lineitems", pageSize=2, nextToken=first["nextToken"])
    assert [i["description"] for i in rest["data"]] == ["line 3"] and "nextToken" not in rest


def test_a_pending_statement_job_runs_after_its_organization_is_restored(api):
    bill = api.bill(api.account("acme"), "2024-03-01", "2024-04-01")
    job = api.ok("post", "/statementjobs", {"billId": bill["id"]})
    taken = api.client.post("/_mock/snapshots", json={"name": "pinned-actions", "orgId": ORG})
    assert taken.status_code == 201, taken.text
    try:
        restored = api.client.post("/_mock/snapshots/pinned-actions/restore")
        assert restored.status_code == 200, restored.text
        api.advance(0.5)
        assert api.ok("get", f"/statementjobs/{job['id']}")["statementJobStatus"] == "PENDING"
        api.advance(0.5)  # one second from the restore
        done = api.ok("get", f"/statementjobs/{job['id']}")
        assert done["statementJobStatus"] == "COMPLETE" and done["jsonStatementStatus"] == "LATEST"
    finally:
        api.client.delete("/_mock/snapshots/pinned-actions")


# -- integration runs ----------------------------------------------------------------------------------

def _wired(api: Api, code: str, event: str) -> tuple[dict, dict, dict]:
    """A webhook at ``https://hooks.example.com/<code>`` and a rule on ``event`` linked to it."""
    hook = api.ok("post", "/integrationdestinations/webhooks", {
        "name": f"Receiver {code}", "description": "d", "url": f"https://hooks.example.com/{code}",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "pinned-actions-secret"}})
    rule = api.ok("post", "/notifications/configurations", {"name": code, "code": code, "description": "d",
                                                           "eventName": event, "alwaysFireEvent": True})
    config = api.ok("post", "/integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                                   "destination": "Webhook", "destinationId": hook["id"]})
    return hook, rule, config


def _two_runs_of_one_rule(api: Api) -> tuple[dict, dict, dict, dict]:
    """A rule with two configurations to one webhook, each run once by one Event: the hook, the
    rule and the two configurations."""
    api.backend.deliveries.local_answer = lambda url, headers, body: 200
    hook, rule, first = _wired(api, "first", "configuration.compoundaggregation.created")
    second = api.ok("post", "/integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                                   "destination": "Webhook", "destinationId": hook["id"]})
    api.ok("post", "/compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP",
                                             "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})
    api.backend.run_due()
    return hook, rule, first, second


def test_a_run_list_holds_only_the_runs_of_the_entity_or_destination_it_names(api):
    api.backend.deliveries.local_answer = lambda url, headers, body: 200
    hook_a, rule_a, config_a = _wired(api, "first", "configuration.compoundaggregation.created")
    hook_b, rule_b, config_b = _wired(api, "second", "configuration.compoundaggregation.created")
    api.ok("post", "/compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP",
                                             "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})
    api.backend.run_due()
    for rule, config in ((rule_a, config_a), (rule_b, config_b)):
        runs = api.ok("get", f"/integrationruns/Notification/{rule['id']}")["data"]
        assert [r["id"] for r in runs] == [config["id"]]
    for hook, config in ((hook_a, config_a), (hook_b, config_b)):
        runs = api.ok("get", f"/integrationruns/destinations/{hook['id']}")["data"]
        assert [r["id"] for r in runs] == [config["id"]]


# -- lookup data ----------------------------------------------------------------------------------------

def test_a_revisions_data_answer_holds_its_items_version_and_audit_fields_and_no_id(api):
    table = api.ok("post", "/lookuptables", {"name": "Rates", "code": "rates"})
    revision = api.ok("post", f"/lookuptables/{table['id']}/revisions", {
        "name": "R1", "fields": [{"name": "region", "type": "STRING"}, {"name": "rate", "type": "NUMBER"}],
        "keys": ["region"]})
    path = f"/lookuptables/{table['id']}/revisions/{revision['id']}/data"
    written = api.ok("put", path, {"items": [{"region": "eu", "rate": 1.5}]})
    expected = {"items": [{"region": "eu", "rate": 1.5}], "version": 1, "dtCreated": "2024-04-02T00:00:00.000Z",
                "dtLastModified": "2024-04-02T00:00:00.000Z", "createdBy": CLIENT, "lastModifiedBy": CLIENT}
    assert written == expected
    assert api.ok("get", path) == expected


# -- bill runs -------------------------------------------------------------------------------------------

def test_the_empty_preview_of_an_account_without_a_plan_follows_the_accounts_bill_epoch(api):
    lonely = api.account("lonely", billEpoch="2024-01-15")
    preview = api.ok("post", "/bills/preview", {"accountIds": [lonely["id"]], "billingFrequency": "MONTHLY",
                                                "billFrequencyInterval": 1})
    assert (preview["startDate"], preview["endDate"]) == ("2024-03-15", "2024-04-15")
    cut = api.ok("post", "/bills/preview", {"accountIds": [lonely["id"]], "billingFrequency": "MONTHLY",
                                            "billFrequencyInterval": 1, "lastDateInBillingPeriod": "2024-02-20"})
    assert (cut["startDate"], cut["endDate"]) == ("2024-02-15", "2024-02-21")


def test_a_recalculation_job_waits_one_second_on_the_clock(api):
    bill = api.bill(api.account("acme"), "2024-03-01", "2024-04-01")
    job = api.ok("post", "/billjobs/recalculate", {"billIds": [bill["id"]]})
    assert (job["status"], job["type"], job["billIds"]) == ("PENDING", "RECALCULATE", [bill["id"]])
    api.backend.run_due()
    api.advance(0.999)
    assert api.ok("get", f"/billjobs/{job['id']}")["status"] == "PENDING"
    assert api.ok("get", f"/bills/{bill['id']}")["version"] == 1
    api.advance(0.001)
    done = api.ok("get", f"/billjobs/{job['id']}")
    assert (done["status"], done["billIds"], done["pending"]) == ("COMPLETE", [bill["id"]], 0)
    assert api.ok("get", f"/bills/{bill['id']}")["version"] == 2


def test_a_recalculation_recalculates_the_bill_it_names_of_two_for_one_period(api):
    acme = api.account("acme")
    named = api.bill(acme, "2024-03-01", "2024-04-01")
    twin = api.bill(acme, "2024-03-01", "2024-04-01")
    api.ok("post", "/billjobs/recalculate", {"billIds": [named["id"]]})
    api.advance(1)
    assert api.ok("get", f"/bills/{named['id']}")["version"] == 2
    assert api.ok("get", f"/bills/{twin['id']}")["version"] == 1


# -- accounts, search and users ---------------------------------------------------------------------------

def test_commitments_sorted_on_an_amount_come_in_number_order(api):
    acme = api.account("acme")
    for amount in (100, 9, 25):
        api.ok("post", "/commitments", {"accountId": acme["id"], "amount": amount, "currency": "USD",
                                        "startDate": "2024-01-01", "endDate": "2025-01-01"})
    ascending = api.ok("get", "/commitments/search", sortBy="amount")["data"]
    assert [c["amount"] for c in ascending] == [9, 25, 100]  # as text: 100, 25, 9
    descending = api.ok("get", "/commitments/search", sortBy="amount", sortOrder="DESC")["data"]
    assert [c["amount"] for c in descending] == [100, 25, 9]


def test_of_two_invitations_to_one_email_only_the_first_accepted_makes_the_user(api):
    first = api.ok("post", "/invitations", {"firstName": "Ada", "lastName": "L", "email": "ada@example.com"})
    second = api.ok("post", "/invitations", {"firstName": "Ada", "lastName": "L", "email": "ADA@example.com"})
    accepted = api.client.post(f"/_mock/organizations/{ORG}/invitations/{first['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    user = accepted.json()
    refused = api.client.post(f"/_mock/organizations/{ORG}/invitations/{second['id']}/accept")
    assert (refused.status_code, refused.json()["message"]) == (
        409, f"email: 'ADA@example.com' is already OrgUser {user['id']!r}")
    assert api.ok("get", f"/invitations/{second['id']}")["accepted"] is False
    assert [u["id"] for u in api.ok("get", "/users")["data"]] == [user["id"]]


# -- bills ----------------------------------------------------------------------------------------------------

def test_setting_a_bill_to_the_status_it_has_changes_nothing(api):
    bill = api.bill(api.account("acme"), "2024-03-01", "2024-04-01")
    api.advance(60)
    same = api.ok("put", f"/bills/{bill['id']}/status", {"status": "PENDING"})
    assert (same["status"], same["dtLastModified"]) == ("PENDING", "2024-04-02T00:00:00.000Z")
    assert api.ok("get", "/events", eventName="billing.bill.updated")["data"] == []


def test_a_csv_statement_made_again_leaves_its_bill_as_it_is(api):
    bill = api.bill(api.account("acme"), "2024-03-01", "2024-04-01")
    api.ok("post", f"/bills/{bill['id']}/statement/csv")
    flagged = api.ok("get", f"/bills/{bill['id']}")
    assert (flagged["csvStatementGenerated"], flagged["dtLastModified"]) == (True, "2024-04-02T00:00:00.000Z")
    api.advance(60)
    api.ok("post", f"/bills/{bill['id']}/statement/csv")
    assert api.ok("get", f"/bills/{bill['id']}") == flagged


def test_a_statement_url_of_a_deleted_bill_is_refused(api):
    bill = api.bill(api.account("acme"), "2024-03-01", "2024-04-01")
    url = api.ok("post", f"/bills/{bill['id']}/statement/csv")["downloadUrl"]
    api.ok("delete", f"/bills/{bill['id']}")
    gone = api.client.get(url.replace("http://testserver", ""))
    assert (gone.status_code, gone.json()["message"]) == (
        403, "the file of this download URL is no longer kept (its bill was deleted, or newer files replaced it)")


def test_a_bill_is_stored_only_for_an_account_of_the_organization_and_a_period_that_ends_after_it_starts(api):
    acme = api.account("acme")
    service = billing.service(api.backend)
    with pytest.raises(MockError) as unknown:
        service.store_bill(Caller(OTHER_ORG, CLIENT), acme["id"], "2024-03-01", "2024-04-01")
    assert (unknown.value.status, unknown.value.message) == (400, f"accountId: no Account with id {acme['id']!r}")
    for end in ("2024-03-01", "2024-02-29"):
        with pytest.raises(MockError) as backwards:
            service.store_bill(api.caller, acme["id"], "2024-03-01", end)
        assert (backwards.value.status, backwards.value.message) == (400, "endDate: must be later than startDate")
    stored = service.store_bill(api.caller, acme["id"], "2024-03-01", "2024-03-02")
    assert (stored["startDate"], stored["endDate"], stored["billTotal"]) == ("2024-03-01", "2024-03-02", 0)


# -- lookup data ----------------------------------------------------------------------------------------------

def _revision(api: Api) -> tuple[str, str]:
    table = api.ok("post", "/lookuptables", {"name": "Rates", "code": "rates"})
    revision = api.ok("post", f"/lookuptables/{table['id']}/revisions", {
        "name": "R1", "fields": [{"name": "region", "type": "STRING"}, {"name": "rate", "type": "NUMBER"}],
        "keys": ["region"]})
    return table["id"], revision["id"]


def test_moving_a_revision_to_the_status_it_has_answers_it_unchanged(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}"
    before = api.ok("get", path)
    api.advance(60)
    assert api.ok("put", f"{path}/status", {"status": "DRAFT"}) == before
    api.ok("put", f"{path}/status", {"status": "PUBLISHED"})
    published = api.ok("get", path)
    api.advance(60)
    assert api.ok("put", f"{path}/status", {"status": "PUBLISHED"}) == published
    assert api.ok("get", f"{path}/data/jobs")["data"] == []  # no ARCHIVE job either


def test_a_revisions_data_cannot_be_copied_onto_itself(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}/data"
    api.ok("put", path, {"items": [{"region": "eu", "rate": 1}]})
    assert api.refused(400, "post", f"{path}/copy", {"revisionId": revision}) == \
        "revisionId: names the source revision itself"
    assert api.ok("get", f"{path}/jobs")["data"] == []
    assert api.ok("get", path)["version"] == 1


def test_an_upload_whose_job_was_deleted_is_refused_and_leaves_the_data(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}/data"
    content = b"region,rate\neu,2\n"
    answer = api.ok("post", f"{path}/generateuploadurl", {"fileName": "rates.csv", "contentType": "text/csv",
                                                  "contentLength": len(content)})
    api.ok("delete", f"{path}/jobs/{answer['jobId']}")
    sent = api.client.put(answer["url"].replace("http://testserver", ""), content=content,
                          headers={"Content-Type": "text/csv"})
    assert (sent.status_code, sent.json()["message"]) == (
        403, "the upload job of this URL (or its revision) no longer exists")
    assert api.ok("get", path) == {"items": []}


# -- integration runs -----------------------------------------------------------------------------------------

def test_the_latest_run_for_ids_is_the_latest_among_those_ids_only(api):
    api.backend.deliveries.local_answer = lambda url, headers, body: 200
    _, early_rule, early = _wired(api, "early", "configuration.compoundaggregation.created")
    _, late_rule, late = _wired(api, "late", "configuration.aggregation.created")
    api.ok("post", "/compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP",
                                             "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})
    api.backend.run_due()
    api.advance(60)
    meter = api.ok("post", "/meters", {"name": "M", "code": "m", "dataFields": [
        {"category": "MEASURE", "code": "gb", "name": "GB", "unit": "GB"}], "derivedFields": []})
    api.ok("post", "/aggregations", {"name": "A", "code": "a", "meterId": meter["id"], "targetField": "gb",
                                     "aggregation": "SUM", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB"})
    api.backend.run_due()
    assert api.ok("get", "/integrationruns/Notification/latest", ids=[late_rule["id"], early_rule["id"]])["id"] == \
        late["id"]
    only_early = api.ok("get", "/integrationruns/Notification/latest", ids=[early_rule["id"]])
    assert (only_early["id"], only_early["dtStarted"]) == (early["id"], "2024-04-02T00:00:00.000Z")
    assert api.ok("get", "/integrationruns/Notification/latest")["id"] == late["id"]


# -- bill runs: which plans a run bills, and the queue after a restore -------------------------------------

CONFIG = {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04", "monthEpoch": "2022-01-01",
          "yearEpoch": "2022-01-01", "timezone": "UTC", "daysBeforeBillDue": 1}


def _billed(api: Api, code: str, frequency: str = "MONTHLY", start: str = "2024-01-01T00:00:00Z") -> dict:
    """An account on a plan with a standing charge of 10 (its template billed ``frequency``)."""
    product = api.ok("post", "/products", {"name": code.title(), "code": f"{code}_product"})
    template = api.ok("post", "/plantemplates", {"name": code.title(), "productId": product["id"],
                                                 "billFrequency": frequency, "currency": "USD", "standingCharge": 10})
    plan = api.ok("post", "/plans", {"name": code.title(), "code": f"{code}_plan", "planTemplateId": template["id"]})
    account = api.account(code)
    api.ok("post", "/accountplans", {"accountId": account["id"], "planId": plan["id"], "startDate": start})
    return account


def _job(api: Api, **body) -> dict:
    job = api.ok("post", "/billjobs", body)
    api.advance(1)
    return api.ok("get", f"/billjobs/{job['id']}")


def test_a_bill_job_bills_only_the_plans_of_the_interval_asked_that_run_in_the_period(api):
    _billed(api, "acme")
    assert _job(api, lastDateInBillingPeriod="2024-03-31", billFrequencyInterval=2)["billIds"] == []
    assert _job(api, lastDateInBillingPeriod="2023-12-31")["billIds"] == []  # the plan starts 2024-01-01
    assert api.ok("get", "/bills")["data"] == []
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-31", billFrequencyInterval=1)["billIds"]
    bill = api.ok("get", f"/bills/{bill_id}")
    assert (bill["startDate"], bill["endDate"], bill["billTotal"]) == ("2024-03-01", "2024-04-01", 10)


def _restore_org(api: Api) -> None:
    taken = api.client.post("/_mock/snapshots", json={"name": "pinned-actions", "orgId": ORG})
    assert taken.status_code == 201, taken.text
    try:
        restored = api.client.post("/_mock/snapshots/pinned-actions/restore")
        assert restored.status_code == 200, restored.text
    finally:
        api.client.delete("/_mock/snapshots/pinned-actions")


def test_a_pending_bill_job_runs_one_second_after_its_organization_is_restored(api):
    _billed(api, "acme")
    api.advance(0.5)
    job = api.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2024-03-31"})
    api.advance(0.25)
    _restore_org(api)
    api.advance(0.75)  # when it was due before the restore
    assert api.ok("get", f"/billjobs/{job['id']}")["status"] == "PENDING"
    api.advance(0.25)  # one second from the restore
    done = api.ok("get", f"/billjobs/{job['id']}")
    assert done["status"] == "COMPLETE" and len(done["billIds"]) == 1


def test_scheduled_runs_go_on_after_a_restore(api):
    _billed(api, "acme")
    api.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24})
    _restore_org(api)
    api.advance(86399)
    assert api.ok("get", "/bills")["data"] == []
    api.advance(1)  # 2024-04-03T00:00: the run bills April so far
    [april] = api.ok("get", "/bills")["data"]
    assert (april["startDate"], april["createdBy"]) == ("2024-04-01", "m3ter-scheduler")


def test_scheduled_runs_leave_out_ad_hoc_plans_and_plans_not_started(api):
    # Made first: a run that took them would reach them before the one account it bills.
    _billed(api, "adhoc", frequency="AD_HOC")
    _billed(api, "later", start="2024-05-01T00:00:00Z")
    _billed(api, "acme")
    api.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24})
    api.advance(86400)
    assert [b["accountCode"] for b in api.ok("get", "/bills")["data"]] == ["acme"]


def test_a_queued_scheduled_run_of_a_changed_configuration_bills_nothing(api):
    _billed(api, "acme")
    config = api.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24})
    api.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 48, "version": config["version"]})
    api.advance(86400)  # the run the first configuration queued: stale
    assert api.ok("get", "/bills")["data"] == []
    api.advance(86400)  # 2024-04-04T00:00, every 48 hours from midnight
    assert len(api.ok("get", "/bills")["data"]) == 1


# -- messages a user sees ----------------------------------------------------------------------------------

def test_the_bills_csv_needs_a_range_of_bill_dates_or_of_external_invoice_dates(api):
    assert api.refused(400, "post", "/bills/download/csv/url", {}) == (
        "startDate: required (with endDate), unless externalInvoiceDateStart and externalInvoiceDateEnd are given")


def test_a_data_download_url_of_a_deleted_revision_is_refused(api):
    table, revision = _revision(api)
    api.ok("put", f"/lookuptables/{table}/revisions/{revision}/data", {"items": [{"region": "eu", "rate": 1}]})
    started = api.ok("post", f"/lookuptables/{table}/revisions/{revision}/data/jobs/download",
                     {"contentType": "text/csv"})
    job = api.ok("get", f"/lookuptables/{table}/revisions/{revision}/data/jobs/{started['jobId']}")
    path = job["downloadUrl"].replace("http://testserver", "")
    assert api.client.get(path).status_code == 200
    api.ok("delete", f"/lookuptables/{table}/revisions/{revision}")
    gone = api.client.get(path)
    assert (gone.status_code, gone.json()["message"]) == (
        403, "the Lookup Table Revision of this download URL no longer exists")


def test_no_latest_run_is_a_404_naming_the_entity_type_and_ids(api):
    assert api.refused(404, "get", "/integrationruns/Notification/latest/n-1") == \
        "No IntegrationRun for a Notification with id n-1"
    assert api.refused(404, "get", "/integrationruns/Bill/latest", ids=["b-1", "b-2"]) == \
        "No IntegrationRun for a Bill with id b-1, b-2"
    assert api.refused(404, "get", "/integrationruns/Bill/latest") == "No IntegrationRun for a Bill"


def test_the_webhook_integration_has_no_configuration_options(api):
    assert api.refused(404, "get", "/integrationconfigs/values/webhook/region") == \
        "No configuration option 'region' for Webhook (it has none)"


def test_the_bills_csv_holds_at_most_5000_bills(api):
    acme = api.account("acme")
    for _ in range(5000):
        api.bill(acme, "2024-03-01", "2024-03-02", items=[])
    body = {"startDate": "2024-03-01T00:00:00Z", "endDate": "2024-03-31T00:00:00Z"}
    url = api.ok("post", "/bills/download/csv/url", body)["downloadUrl"]
    assert api.client.get(url.replace("http://testserver", "")).status_code == 200
    api.bill(acme, "2024-03-01", "2024-03-02", items=[])
    assert api.refused(400, "post", "/bills/download/csv/url", body) == (
        "endDate: the period holds 5001 bills; a download holds at most 5000")


# -- the integration catalogue, mapping configuration and run logs in full ----------------------------------

def test_the_available_configuration_is_the_webhook_for_notifications_in_full(api):
    empty = {"empty": True}
    assert api.ok("get", "/integrationconfigs/available", entityType="notification") == {
        "supportedEntities": {"Notification": {
            "readableName": "Notification", "entityConfigurationOptions": empty, "released": True,
            "destinations": [{"apiName": "WEBHOOK", "destination": "Webhook", "displayName": "Webhook",
                              "destinationConfigOptions": empty, "authConfigOptions": empty, "released": True,
                              "authType": "M3TER_SIGNED_REQUEST", "categories": []}]}},
        "selectedConfigurations": {}, "globalConfigurationOptions": empty}


def test_the_external_mapping_configuration_in_full(api):
    assert api.ok("get", "/externalmappingconfiguration") == {
        "m3terEntities": ["Account", "AccountPlan", "Aggregation", "Bill", "Commitment", "CompoundAggregation",
                          "Contract", "Meter", "Plan", "PlanGroup", "PlanTemplate", "Pricing", "Product"],
        "externalSystems": [{"name": name, "tables": [], "allowCustomExternalTables": True}
                            for name in ("Chargebee", "NetSuite", "Paddle", "QuickBooks", "Salesforce", "Stripe",
                                         "Xero")]}


def test_a_failing_runs_log_names_the_run_each_attempt_and_the_error(api):
    api.backend.deliveries.local_answer = lambda url, headers, body: 503
    hook, rule, config = _wired(api, "failing", "configuration.compoundaggregation.created")
    api.ok("post", "/compoundaggregations", {"name": "Storage", "code": "storage", "rounding": "UP",
                                             "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})
    api.backend.run_due()
    log = base64.b64decode(api.ok("get", f"/integrationruns/logs/{config['id']}")["Payload"]).decode()
    assert log == (
        f"2024-04-02T00:00:00.000Z run of Notification {rule['id']} to Webhook {hook['id']}\n"
        "2024-04-02T00:00:00.000Z attempt 1: POST https://hooks.example.com/failing -> HTTP 503, retrying\n"
        "status AWAITING_RETRY: HTTP 503\n")


# -- what a recalculation keeps, the latest bill, line items of one bill across the list ----------------------

def test_a_recalculated_bill_keeps_who_made_and_approved_it_and_its_statements_go_stale(api):
    acme = api.account("acme")
    plain = api.bill(acme, "2024-02-01", "2024-03-01")
    stated = api.bill(acme, "2024-03-01", "2024-04-01")
    api.advance(60)
    api.ok("put", f"/bills/{stated['id']}/status", {"status": "APPROVED"})
    api.ok("post", f"/bills/{stated['id']}/statement/csv")
    api.advance(60)
    api.ok("post", "/billjobs/recalculate", {"billIds": [stated["id"], plain["id"]]})
    api.advance(1)
    bill = api.ok("get", f"/bills/{stated['id']}")
    expected = {"id": stated["id"], "version": 2, "dtCreated": "2024-04-02T00:00:00.000Z", "createdBy": CLIENT,
                "createdDate": "2024-04-02T00:00:00.000Z", "status": "APPROVED",
                "dtApproved": "2024-04-02T00:01:00.000Z", "approvedBy": CLIENT, "csvStatementGenerated": True,
                "jsonStatementGenerated": False, "statementStale": True,
                "lastCalculatedDate": "2024-04-02T00:02:01.000Z", "dtLastModified": "2024-04-02T00:02:01.000Z"}
    assert {k: bill.get(k) for k in expected} == expected
    assert api.ok("get", f"/bills/{plain['id']}")["statementStale"] is False  # it had no statement
    api.ok("post", f"/bills/{stated['id']}/statement/csv")
    assert api.ok("get", f"/bills/{stated['id']}")["statementStale"] is False


def test_of_two_bills_on_one_bill_date_the_later_stored_is_the_latest(api):
    acme = api.account("acme")
    api.bill(acme, "2024-03-01", "2024-04-01")
    later = api.bill(acme, "2024-03-15", "2024-04-01")
    api.bill(acme, "2024-02-01", "2024-03-01")  # stored last, billed earlier
    assert api.ok("get", f"/bills/latest/{acme['id']}")["id"] == later["id"]


def test_line_items_of_one_bill_across_the_list_come_page_by_page_and_filtered(api):
    acme = api.account("acme")
    api.bill(acme, "2024-02-01", "2024-03-01", [{"lineItemType": "USAGE", "subtotal": 9}])
    bill = api.bill(acme, "2024-03-01", "2024-04-01", [
        {"lineItemType": "USAGE", "subtotal": 1}, {"lineItemType": "STANDING_CHARGE", "subtotal": 2},
        {"lineItemType": "USAGE", "subtotal": 3}])
    first = api.ok("get", "/lineitems", billId=bill["id"], pageSize=2)
    assert [i["subtotal"] for i in first["data"]] == [1, 2]
    rest = api.ok("get", "/lineitems", billId=bill["id"], pageSize=2, nextToken=first["nextToken"])
    assert [i["subtotal"] for i in rest["data"]] == [3] and "nextToken" not in rest
    usage = api.ok("get", "/lineitems", billId=bill["id"], lineItemType="USAGE")["data"]
    assert [i["subtotal"] for i in usage] == [1, 3]
    refused = api.call("get", "/lineitems", pageSize=2, nextToken=first["nextToken"])  # another filter set
    assert refused.status_code == 400 and refused.json()["message"].startswith("nextToken: not a token issued by")


def test_an_invitation_expires_no_earlier_than_a_millisecond_after_now(api):
    assert api.refused(400, "post", "/invitations", {"firstName": "A", "lastName": "L", "email": "a@example.com",
                                                     "dtExpiry": START}) == \
        "dtExpiry: must be a date-time after now (2024-04-02T00:00:00.000Z)"
    brief = api.ok("post", "/invitations", {"firstName": "A", "lastName": "L", "email": "a@example.com",
                                            "dtExpiry": "2024-04-02T00:00:00.001Z"})
    accepted = api.client.post(f"/_mock/organizations/{ORG}/invitations/{brief['id']}/accept")
    assert accepted.status_code == 200, accepted.text


def test_a_run_list_comes_in_the_configurations_order_or_the_reverse(api):
    hook, rule, first, second = _two_runs_of_one_rule(api)
    path = f"/integrationruns/Notification/{rule['id']}"
    assert [r["id"] for r in api.ok("get", path)["data"]] == [first["id"], second["id"]]
    assert [r["id"] for r in api.ok("get", path, order="ASC")["data"]] == [first["id"], second["id"]]
    assert [r["id"] for r in api.ok("get", path, order="DESC")["data"]] == [second["id"], first["id"]]
    newest = api.ok("get", f"/integrationruns/destinations/{hook['id']}", order="DESC", pageSize=1)
    assert [r["id"] for r in newest["data"]] == [second["id"]]
    rest = api.ok("get", f"/integrationruns/destinations/{hook['id']}", order="DESC", pageSize=1,
                  nextToken=newest["nextToken"])
    assert [r["id"] for r in rest["data"]] == [first["id"]]


# -- lookup data: versions, who wrote it, what may change ----------------------------------------------------

def test_the_data_keeps_its_first_writer_and_moves_its_version_and_last_writer(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}/data"
    api.ok("put", path, {"items": [{"region": "eu", "rate": 1}]})
    api.advance(60)
    other = Api(api.app, api.client, bearer_for(api.client, "pinned-actions-writer", "writer-secret"))
    second = other.ok("put", f"{path}/us", {"version": 1, "item": {"rate": 2}})
    expected = {"version": 2, "dtCreated": "2024-04-02T00:00:00.000Z", "dtLastModified": "2024-04-02T00:01:00.000Z",
                "createdBy": CLIENT, "lastModifiedBy": "pinned-actions-writer"}
    assert {k: second.get(k) for k in expected} == expected
    assert api.ok("get", path) == {"items": [{"region": "eu", "rate": 1}, {"region": "us", "rate": 2}], **expected}
    assert api.ok("get", f"/lookuptables/{table}/revisions/{revision}")["itemCount"] == 2


def test_a_stale_data_version_names_the_version_held_or_that_there_is_none(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}/data"
    assert api.refused(409, "put", path, {"version": 1, "items": [{"region": "eu", "rate": 1}]}) == (
        f"version 1 is stale: the data of Lookup Table Revision {revision!r} has no data yet, so no version; "
        f"fetch it again and resend")
    api.ok("put", path, {"items": [{"region": "eu", "rate": 1}]})
    assert api.refused(409, "put", f"{path}/us", {"version": 2, "item": {"rate": 2}}) == (
        f"version 2 is stale: the data of Lookup Table Revision {revision!r} is at version 1; "
        f"fetch it again and resend")
    assert api.ok("get", path)["items"] == [{"region": "eu", "rate": 1}]


def test_deleting_the_data_drops_its_version_and_a_published_revisions_data_cannot_change(api):
    table, revision = _revision(api)
    path = f"/lookuptables/{table}/revisions/{revision}/data"
    api.ok("put", path, {"items": [{"region": "eu", "rate": 1}, {"region": "us", "rate": 2}]})
    api.ok("put", path, {"version": 1, "items": [{"region": "eu", "rate": 3}]})
    assert api.ok("delete", path) == {"result": f"deleted 2 data item(s) of Lookup Table Revision {revision}"}
    assert api.ok("get", path) == {"items": []}
    assert api.ok("get", f"/lookuptables/{table}/revisions/{revision}")["itemCount"] == 0
    assert api.ok("put", path, {"items": [{"region": "eu", "rate": 4}]})["version"] == 1
    api.ok("put", f"/lookuptables/{table}/revisions/{revision}/status", {"status": "PUBLISHED"})
    assert api.refused(409, "put", path, {"items": [{"region": "eu", "rate": 5}]}) == (
        f"Lookup Table Revision {revision!r} is PUBLISHED: only a DRAFT revision's data can change (copy it to a "
        f"new revision to edit the data)")


# -- bill runs: a cut period recalculated, a preview in full --------------------------------------------------

def test_a_recalculated_bill_cut_short_keeps_its_standing_charge_prorated_to_the_whole_period(api):
    _billed(api, "acme")
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-15")["billIds"]
    cut = api.ok("get", f"/bills/{bill_id}")
    # 10 for 15 of March's 31 days: 4.838... -> 4.84
    assert [(i["lineItemType"], i["subtotal"]) for i in cut["lineItems"]] == [("STANDING_CHARGE", 4.84)]
    api.ok("post", "/billjobs/recalculate", {"billIds": [bill_id]})
    api.advance(1)
    again = api.ok("get", f"/bills/{bill_id}")
    assert (again["version"], again["startDate"], again["endDate"]) == (2, "2024-03-01", "2024-03-16")
    assert [(i["lineItemType"], i["subtotal"]) for i in again["lineItems"]] == [("STANDING_CHARGE", 4.84)]


def test_a_preview_is_a_new_bill_until_one_is_stored_and_then_that_bill_at_its_version(api):
    acme = _billed(api, "acme")
    body = {"accountIds": [acme["id"]], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
            "lastDateInBillingPeriod": "2024-03-31"}
    preview = api.ok("post", "/bills/preview", body)
    expected = {"version": 1, "startDateTimeUTC": "2024-03-01T00:00:00.000Z",
                "endDateTimeUTC": "2024-04-01T00:00:00.000Z", "createdDate": "2024-04-02T00:00:00.000Z",
                "lastCalculatedDate": "2024-04-02T00:00:00.000Z", "billTotal": 10}
    assert {k: preview.get(k) for k in expected} == expected
    assert "billJobId" not in preview and not [k for k in preview if k.startswith("_")]
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    _job(api, lastDateInBillingPeriod="2024-03-31")  # recalculated in place: version 2
    again = api.ok("post", "/bills/preview", body)
    assert (again["id"], again["version"]) == (bill_id, 2)


def test_deleting_a_bill_gives_its_balance_draw_back_and_removes_that_draw_only(api):
    acme = _billed(api, "acme")
    balance = api.ok("post", "/balances", {"accountId": acme["id"], "code": "prepaid", "name": "Prepaid",
                                           "currency": "USD", "startDate": "2024-01-01T00:00:00Z",
                                           "endDate": "2025-01-01T00:00:00Z"})
    api.ok("post", f"/balances/{balance['id']}/transactions", {"amount": 100})
    [february] = _job(api, lastDateInBillingPeriod="2024-02-29")["billIds"]
    [march] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    assert api.ok("get", f"/balances/{balance['id']}")["amount"] == 80
    api.ok("delete", f"/bills/{march}")
    assert api.ok("get", f"/balances/{balance['id']}")["amount"] == 90
    assert [(t["amount"], t.get("entityId")) for t in
            api.ok("get", f"/balances/{balance['id']}/transactions")["data"]] == [(100, CLIENT), (-10, february)]
    [given_back, *_] = api.ok("get", "/events", eventName="billing.balanceamount.updated")["data"]  # newest first
    shown = {"id": balance["id"], "balanceId": balance["id"], "accountId": acme["id"], "currency": "USD"}
    data = given_back["m3terEvent"]["eventData"]
    assert ({k: data["oldDto"].get(k) for k in (*shown, "amount")},
            {k: data["newDto"].get(k) for k in (*shown, "amount")}) == (
        {**shown, "amount": 80}, {**shown, "amount": 90})


def test_a_scheduled_run_logs_an_account_it_cannot_bill_and_bills_the_others(api, caplog):
    broken_account = _billed(api, "broken")
    broken = api.ok("post", "/compoundaggregations", {"name": "Broken", "code": "broken_agg", "rounding": "NONE",
                                                      "quantityPerUnit": 1, "unit": "u",
                                                      "calculation": "aggregation.nowhere * 2"})
    [plan] = [p for p in api.ok("get", "/plans")["data"] if p["code"] == "broken_plan"]
    api.ok("post", "/pricings", {"planId": plan["id"], "compoundAggregationId": broken["id"],
                                 "startDate": "2024-01-01T00:00:00Z", "cumulative": True,
                                 "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]})
    _billed(api, "acme")
    api.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24})
    with caplog.at_level(logging.WARNING, logger="m3ter_mock"):
        api.advance(86400)
    assert [b["accountCode"] for b in api.ok("get", "/bills")["data"]] == ["acme"]
    assert (f"scheduled bill run: account {broken_account['id']} not billed: CompoundAggregation 'broken_agg': "
            f"calculation: no Aggregation with code 'nowhere'") in caplog.messages


# -- balances: schedule previews ---------------------------------------------------------------------------

CHARGE = {"name": "Fee", "code": "fee", "currency": "USD", "chargeDescription": "Platform fee", "amount": 20,
          "servicePeriodStartDate": "2024-05-01T00:00:00Z", "servicePeriodEndDate": "2024-08-01T00:00:00Z",
          "billFrequency": "MONTHLY", "billFrequencyInterval": 1, "billInAdvance": True}


def test_a_charge_schedule_preview_needs_the_callers_balance_and_one_all_to_come_has_no_previous_run(api):
    acme = api.account("acme")
    balance = api.ok("post", "/balances", {"accountId": acme["id"], "code": "prepaid", "name": "Prepaid",
                                           "currency": "USD", "startDate": "2024-01-01T00:00:00Z",
                                           "endDate": "2025-01-01T00:00:00Z"})
    path = f"/balances/{balance['id']}/balancechargeschedules/preview"
    preview = api.ok("post", path, CHARGE)
    assert (preview["nextRun"], preview["balanceId"], preview["amount"]) == (
        "2024-05-01T00:00:00.000Z", balance["id"], 20)
    assert "previousRun" not in preview
    other = Api(api.app, api.client, api.auth)
    other.org = OTHER_ORG
    assert other.refused(404, "post", path, CHARGE) == f"No Balance with id {balance['id']!r}"


def test_of_runs_started_at_one_moment_the_latest_is_the_first_configurations_and_a_destination_narrows(api):
    hook, rule, first, second = _two_runs_of_one_rule(api)
    runs = api.ok("get", f"/integrationruns/Notification/{rule['id']}")["data"]
    assert [r["dtStarted"] for r in runs] == ["2024-04-02T00:00:00.000Z"] * 2
    assert api.ok("get", f"/integrationruns/Notification/latest/{rule['id']}")["id"] == first["id"]
    path = f"/integrationruns/destinations/{hook['id']}"
    assert [r["id"] for r in api.ok("get", path, destination="WEBHOOK")["data"]] == [first["id"], second["id"]]
    assert api.ok("get", path, destination="Email")["data"] == []


def test_a_bill_job_made_before_midnight_bills_the_period_of_the_day_it_was_made(api):
    _billed(api, "acme")
    api.backend.change_clock(freeze=True, at="2024-03-31T23:59:59.500Z")
    job = api.ok("post", "/billjobs", {})
    api.advance(1)  # it runs on 2024-04-01
    [bill_id] = api.ok("get", f"/billjobs/{job['id']}")["billIds"]
    bill = api.ok("get", f"/bills/{bill_id}")
    assert (bill["startDate"], bill["endDate"]) == ("2024-03-01", "2024-04-01")



def test_an_account_plan_of_an_empty_plan_group_bills_nothing_and_leaves_the_accounts_other_plans_billed(api):
    acme = _billed(api, "acme")
    group = api.ok("post", "/plangroups", {"name": "Empty", "code": "empty", "currency": "USD"})
    api.ok("post", "/accountplans", {"accountId": acme["id"], "planGroupId": group["id"],
                                     "startDate": "2024-01-01T00:00:00Z"})
    job = _job(api, lastDateInBillingPeriod="2024-03-31")
    assert (job["status"], job["total"]) == ("COMPLETE", 1)
    [bill_id] = job["billIds"]
    assert api.ok("get", f"/bills/{bill_id}")["billTotal"] == 10


def test_a_recalculation_leaves_out_a_bill_deleted_before_it_runs(api):
    _billed(api, "acme")
    [february] = _job(api, lastDateInBillingPeriod="2024-02-29")["billIds"]
    [march] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    job = api.ok("post", "/billjobs/recalculate", {"billIds": [february, march]})
    assert (job["total"], job["pending"]) == (2, 2)
    api.ok("delete", f"/bills/{february}")
    api.advance(1)
    done = api.ok("get", f"/billjobs/{job['id']}")
    assert (done["status"], done["total"], done["pending"], done["billIds"]) == (
        "COMPLETE", 1, 0, [february, march])
    assert [(b["id"], b["version"]) for b in api.ok("get", "/bills")["data"]] == [(march, 2)]


def test_a_bill_whose_balance_was_deleted_is_deleted_all_the_same(api):
    acme = _billed(api, "acme")
    balance = api.ok("post", "/balances", {"accountId": acme["id"], "code": "prepaid", "name": "Prepaid",
                                           "currency": "USD", "startDate": "2024-01-01T00:00:00Z",
                                           "endDate": "2025-01-01T00:00:00Z"})
    api.ok("post", f"/balances/{balance['id']}/transactions", {"amount": 100})
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    assert api.ok("delete", f"/balances/{balance['id']}")["amount"] == 90
    assert api.ok("delete", f"/bills/{bill_id}")["id"] == bill_id
    assert api.ok("get", "/bills")["data"] == [] and api.ok("get", "/balances")["data"] == []


def test_a_pricing_that_starts_after_the_period_prices_none_of_its_usage(api):
    product = api.ok("post", "/products", {"name": "Storage", "code": "storage"})
    meter = api.ok("post", "/meters", {"productId": product["id"], "name": "Storage", "code": "storage_meter",
                                       "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB",
                                                       "unit": "GB"}], "derivedFields": []})
    aggregation = api.ok("post", "/aggregations", {
        "name": "GB stored", "code": "gb_stored", "meterId": meter["id"], "targetField": "gb", "aggregation": "SUM",
        "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB"})
    template = api.ok("post", "/plantemplates", {"name": "Standard", "productId": product["id"],
                                                 "billFrequency": "MONTHLY", "currency": "USD", "standingCharge": 10})
    plan = api.ok("post", "/plans", {"name": "Standard", "code": "standard", "planTemplateId": template["id"]})
    for start, price in (("2024-01-01T00:00:00Z", 2), ("2024-04-15T00:00:00Z", 100)):
        api.ok("post", "/pricings", {"planId": plan["id"], "aggregationId": aggregation["id"], "startDate": start,
                                     "cumulative": True,
                                     "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": price}]})
    acme = api.account("acme")
    api.ok("post", "/accountplans", {"accountId": acme["id"], "planId": plan["id"],
                                     "startDate": "2024-01-01T00:00:00Z"})
    api.ok("post", "/measurements", {"measurements": [{"uid": "m-1", "meter": "storage_meter", "account": "acme",
                                                       "ts": "2024-03-05T10:00:00Z", "measure": {"gb": 10}}]})
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    bill = api.ok("get", f"/bills/{bill_id}")
    assert [(i["lineItemType"], i["subtotal"]) for i in bill["lineItems"]] == [("STANDING_CHARGE", 10), ("USAGE", 20)]


def test_an_accounts_plans_of_one_period_make_one_bill(api):
    acme = _billed(api, "acme")
    product = api.ok("post", "/products", {"name": "Support", "code": "support"})
    template = api.ok("post", "/plantemplates", {"name": "Support", "productId": product["id"],
                                                 "billFrequency": "MONTHLY", "currency": "USD", "standingCharge": 5})
    plan = api.ok("post", "/plans", {"name": "Support", "code": "support_plan", "planTemplateId": template["id"]})
    api.ok("post", "/accountplans", {"accountId": acme["id"], "planId": plan["id"],
                                     "startDate": "2024-02-01T00:00:00Z"})
    [bill_id] = _job(api, lastDateInBillingPeriod="2024-03-31")["billIds"]
    bill = api.ok("get", f"/bills/{bill_id}")
    assert [(i["productName"], i["subtotal"]) for i in bill["lineItems"]] == [("Acme", 10), ("Support", 5)]
    assert bill["billTotal"] == 15

