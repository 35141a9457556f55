"""Bills, bill jobs, statement jobs and the data explorer, over HTTP with the in-process app
(and, for a few operations, the official SDK with strict response validation). Every 200
body is checked against the operation's response schema in the spec.

Bills come from bill runs, which need the pricing engine (issue 11); the tests store them
through the backend's ``store_bill`` (never an HTTP endpoint) and then drive every action
over HTTP. Statement jobs run on the mock's clock: the tests freeze it and move it."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from urllib.parse import urlsplit

import m3ter
import pytest
from openapi_schema_validator import OAS30Validator

from mockserver.app import load_spec
from mockserver.backend.actions import billing
from mockserver.backend.crud import Caller
from tests.conftest import bearer_for
from tests.support.org_calls import OrgCalls

METHODS = ("get", "put", "post", "delete", "patch")
ORG = "org-billing"
CLIENT = "test-client"
NOWHERE = "00000000-0000-4000-8000-00000000dead"


def _operations(spec: dict) -> dict[str, dict]:
    return {op["operationId"]: op for item in spec["paths"].values()
            for method, op in item.items() if method in METHODS and "operationId" in op}


SPEC = load_spec()
OPERATIONS = _operations(SPEC)


class Api(OrgCalls):
    org = ORG

    def __init__(self, app):
        self.app = app
        self.backend = app.backend
        self.client = app.test_client()
        self.auth = bearer_for(self.client)
        self.caller = Caller(ORG, CLIENT)

    def ok(self, operation_id: str, method: str, path: str, body=None, **query):
        response = self.call(method, path, body, **query)
        assert response.status_code == 200, (operation_id, response.status_code, response.text)
        conforms(operation_id, response.json())
        return response.json()

    def fails(self, expected: int, method: str, path: str, body=None, **query) -> str:
        response = self.call(method, path, body, **query)
        assert response.status_code == expected, (response.status_code, response.text)
        return response.json()["message"]

    def account(self, code: str = "acme", **fields) -> dict:
        body = {"name": code.title(), "code": code, "emailAddress": f"{code}@example.com", **fields}
        response = self.call("post", "/accounts", body)
        assert response.status_code == 200, response.text
        return response.json()

    def bill(self, account: dict, start="2024-09-01", end="2024-10-01", items=None, **fields) -> dict:
        if items is None:
            items = [{"lineItemType": "USAGE", "subtotal": "10.10", "quantity": 3, "meterId": "meter-1"},
                     {"lineItemType": "STANDING_CHARGE", "subtotal": "5"}]
        return self.service.store_bill(self.caller, account["id"], start, end, items, **fields)

    @property
    def service(self) -> billing.BillingActions:
        return billing.service(self.backend)

    def freeze(self) -> None:
        self.backend.change_clock(freeze=True)

    def advance(self, seconds: float) -> None:
        self.backend.advance_to(self.backend.clock.now() + timedelta(seconds=seconds))
        self.settle()

    def settle(self) -> None:
        """Wait (on conditions, never a sleep) until the work due by the clock has run."""
        self.backend.run_due()
        self.service.queue.wait_idle()

    def events(self, name: str) -> list[dict]:
        # Read from the event log: the Events API's own shape is another test's business.
        items, _ = self.backend.events.list(self.caller, {"eventName": name}, 100, None)
        return items

    def download(self, url: str):
        return self.client.get(urlsplit(url).path)


def conforms(operation_id: str, body) -> None:
    """``body`` is valid against the operation's 200 response schema."""
    schema = OPERATIONS[operation_id]["responses"]["200"]["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": SPEC.get("components", {})}).validate(body)


@pytest.fixture
def api(app):
    return Api(app)


# -- approve, lock, status ---------------------------------------------------------------------

def test_a_bill_is_approved_then_locked_and_a_locked_bill_refuses_changes(api):
    bill = api.bill(api.account())
    path = f"/bills/{bill['id']}"
    assert (bill["status"], bill["locked"]) == ("PENDING", False)

    message = api.fails(409, "put", f"{path}/lock")
    assert bill["id"] in message and "approve it first" in message
    assert api.ok("GetBill", "get", path)["locked"] is False

    approved = api.ok("UpdateBillStatus", "put", f"{path}/status", {"status": "APPROVED"})
    assert (approved["status"], approved["approvedBy"], approved["version"]) == ("APPROVED", CLIENT, 1)
    assert "dtApproved" in approved
    pending = api.ok("UpdateBillStatus", "put", f"{path}/status", {"status": "PENDING"})
    assert pending["status"] == "PENDING" and "dtApproved" not in pending and "approvedBy" not in pending

    assert api.ok("ApproveBills", "post", "/bills/approve", {"billIds": [bill["id"]]}) == {"message": "1 bill approved"}
    assert api.ok("ApproveBills", "post", "/bills/approve", {"billIds": [bill["id"]]}) == {
        "message": "0 bills approved; 1 was already approved"}

    locked = api.ok("LockBill", "put", f"{path}/lock")
    assert (locked["locked"], locked["lockedBy"], locked["status"]) == (True, CLIENT, "APPROVED")
    assert "dtLocked" in locked
    assert api.ok("LockBill", "put", f"{path}/lock") == locked  # locking a locked bill changes nothing

    message = api.fails(409, "put", f"{path}/status", {"status": "PENDING"})
    assert message == f"Bill '{bill['id']}' is locked: a locked bill cannot be changed"
    assert api.ok("GetBill", "get", path)["status"] == "APPROVED"


def test_each_real_bill_change_records_a_billing_event_and_a_non_change_none(api):
    bill = api.bill(api.account())
    assert [e["m3terEvent"]["eventData"]["newDto"]["id"] for e in api.events("billing.bill.created")] == [bill["id"]]
    api.ok("ApproveBills", "post", "/bills/approve", {"billIds": [bill["id"]]})
    api.ok("ApproveBills", "post", "/bills/approve", {"billIds": [bill["id"]]})  # no change
    api.ok("LockBill", "put", f"/bills/{bill['id']}/lock")
    api.ok("LockBill", "put", f"/bills/{bill['id']}/lock")  # no change
    updates = api.events("billing.bill.updated")  # newest first
    assert [(e["m3terEvent"]["eventData"]["oldDto"]["status"], e["m3terEvent"]["eventData"]["newDto"]["locked"])
            for e in updates] == [("APPROVED", True), ("PENDING", False)]
    assert updates[1]["m3terEvent"]["eventData"]["newDto"]["status"] == "APPROVED"


def test_approving_an_unknown_bill_is_a_400_and_approves_none(api):
    bill = api.bill(api.account())
    message = api.fails(400, "post", "/bills/approve", {"billIds": [bill["id"], NOWHERE]})
    assert message == f"billIds: no Bill with id '{NOWHERE}'"
    assert api.ok("GetBill", "get", f"/bills/{bill['id']}")["status"] == "PENDING"


def test_status_and_lock_of_an_unknown_bill_are_404s(api):
    assert api.fails(404, "put", f"/bills/{NOWHERE}/lock") == f"No Bill with id '{NOWHERE}'"
    assert api.fails(404, "put", f"/bills/{NOWHERE}/status", {"status": "APPROVED"}) == f"No Bill with id '{NOWHERE}'"


# -- bills by account and by billing period ------------------------------------------------------

def test_bills_of_an_account_page_by_page_and_its_latest_bill(api):
    acme, other = api.account("acme"), api.account("other")
    september = api.bill(acme, "2024-09-01", "2024-10-01")
    october = api.bill(acme, "2024-10-01", "2024-11-01")
    api.bill(other, "2024-09-01", "2024-10-01")
    first = api.ok("GetAllBillsForAccount", "get", f"/bills/accountid/{acme['id']}", pageSize=1)
    assert [b["id"] for b in first["data"]] == [september["id"]]
    second = api.ok("GetAllBillsForAccount", "get", f"/bills/accountid/{acme['id']}", pageSize=1,
                    nextToken=first["nextToken"])
    assert [b["id"] for b in second["data"]] == [october["id"]] and "nextToken" not in second

    assert api.ok("GetLatestBill", "get", f"/bills/latest/{acme['id']}")["id"] == october["id"]
    assert api.fails(404, "get", f"/bills/latest/{NOWHERE}") == f"No Account with id '{NOWHERE}'"
    assert api.fails(404, "get", f"/bills/accountid/{NOWHERE}") == f"No Account with id '{NOWHERE}'"
    idle = api.account("idle")
    assert api.fails(404, "get", f"/bills/latest/{idle['id']}") == f"No Bill for Account '{idle['id']}'"


def test_a_billing_period_is_named_by_its_last_date_and_frequency(api):
    acme = api.account()
    september = api.bill(acme, "2024-09-01", "2024-10-01")
    api.bill(acme, "2024-10-01", "2024-11-01")
    weekly = api.bill(acme, "2024-09-24", "2024-10-01", billingFrequency="WEEKLY")
    listed = api.ok("GetAllBillsInBillingPeriod", "get", "/bills/billingperiod/2024-09-30/monthly")
    assert [b["id"] for b in listed["data"]] == [september["id"]]
    assert [b["id"] for b in api.ok("GetAllBillsInBillingPeriod", "get",
                                    "/bills/billingperiod/2024-09-30/WEEKLY")["data"]] == [weekly["id"]]
    assert api.ok("GetAllBillsInBillingPeriod", "get", "/bills/billingperiod/2024-10-01/monthly")["data"] == []

    assert api.ok("ApproveAllBillsInBillingPeriod", "post", "/bills/billingperiod/2024-09-30/monthly/approve") == {
        "message": "1 bill approved"}
    statuses = {b["id"]: b["status"] for b in api.ok("ListBills", "get", "/bills")["data"]}
    assert list(statuses.values()) == ["APPROVED", "PENDING", "PENDING"]

    assert api.fails(400, "get", "/bills/billingperiod/30-09-2024/monthly").startswith("lastDateInBillingPeriod: ")
    assert api.fails(400, "get", "/bills/billingperiod/2024-09-30/fortnightly") == (
        "billingFrequency: 'fortnightly' is not one of ['DAILY', 'WEEKLY', 'MONTHLY', 'ANNUALLY', 'daily', 'weekly', "
        "'monthly', 'annually']")


# -- line items ------------------------------------------------------------------------------

def test_line_items_of_a_bill_and_across_bills(api):
    acme = api.account()
    first = api.bill(acme, items=[{"lineItemType": "USAGE", "subtotal": "0.1", "commitmentId": "c-1"},
                                  {"lineItemType": "STANDING_CHARGE", "subtotal": "0.2"}])
    second = api.bill(acme, "2024-10-01", "2024-11-01", items=[{"lineItemType": "USAGE", "subtotal": 7}])
    assert first["billTotal"] == 0.3  # summed as decimals: 0.1 + 0.2 in floats is 0.30000000000000004
    assert [i["lineItemType"] for i in first["lineItems"]] == ["USAGE", "STANDING_CHARGE"]

    items = api.ok("ListBillLineItems", "get", f"/bills/{first['id']}/lineitems", additional="anything")["data"]
    assert [(i["billId"], i["subtotal"]) for i in items] == [(first["id"], 0.1), (first["id"], 0.2)]
    one = api.ok("GetBillLineItem", "get", f"/bills/{first['id']}/lineitems/{items[0]['id']}")
    assert (one["currency"], one["servicePeriodStartDate"]) == ("USD", "2024-09-01T00:00:00.000Z")
    assert api.fails(404, "get", f"/bills/{NOWHERE}/lineitems") == f"No Bill with id '{NOWHERE}'"

    every = api.ok("ListLineItems", "get", "/lineitems", pageSize=2)
    rest = api.ok("ListLineItems", "get", "/lineitems", pageSize=2, nextToken=every["nextToken"])
    assert [i["subtotal"] for i in every["data"] + rest["data"]] == [0.1, 0.2, 7]
    usage = api.ok("ListLineItems", "get", "/lineitems", lineItemType="USAGE")["data"]
    assert [i["billId"] for i in usage] == [first["id"], second["id"]]
    assert [i["subtotal"] for i in api.ok("ListLineItems", "get", "/lineitems", billId=second["id"])["data"]] == [7]
    assert [i["subtotal"] for i in api.ok("ListLineItems", "get", "/lineitems", commitmentId="c-1")["data"]] == [0.1]
    assert api.ok("ListLineItems", "get", "/lineitems", billId=NOWHERE)["data"] == []

    api.ok("DeleteBill", "delete", f"/bills/{first['id']}")
    assert [i["billId"] for i in api.ok("ListLineItems", "get", "/lineitems")["data"]] == [second["id"]]


# -- statements ------------------------------------------------------------------------------

def test_a_statement_job_runs_on_the_clock_and_makes_the_statements(api):
    api.freeze()
    bill = api.bill(api.account())
    job = api.ok("CreateStatementJob", "post", "/statementjobs", {"billId": bill["id"], "includeCsvFormat": True})
    assert (job["statementJobStatus"], job["billId"], job["orgId"]) == ("PENDING", bill["id"], ORG)
    assert "no JSON statement yet" in api.fails(404, "get", f"/bills/{bill['id']}/statement/json")
    api.settle()
    assert api.ok("GetStatementJob", "get", f"/statementjobs/{job['id']}")["statementJobStatus"] == "PENDING"

    api.advance(1)
    done = api.ok("GetStatementJob", "get", f"/statementjobs/{job['id']}")
    assert (done["statementJobStatus"], done["jsonStatementStatus"], done["csvStatementStatus"]) == (
        "COMPLETE", "LATEST", "LATEST")
    shown = api.ok("GetBill", "get", f"/bills/{bill['id']}")
    assert (shown["jsonStatementGenerated"], shown["csvStatementGenerated"]) == (True, True)

    statement = api.download(done["presignedJsonStatementUrl"])
    assert statement.status_code == 200 and statement.headers["content-type"].startswith("application/json")
    document = statement.json()
    assert document["bill"]["id"] == bill["id"]
    assert [i["subtotal"] for i in document["lineItems"]] == [10.1, 5]
    rows = list(csv.DictReader(io.StringIO(api.download(done["presignedCsvStatementUrl"]).text)))
    assert [(r["billId"], r["lineItemType"], r["subtotal"]) for r in rows] == [
        (bill["id"], "USAGE", "10.1"), (bill["id"], "STANDING_CHARGE", "5")]
    url = api.ok("GetBillJsonStatement", "get", f"/bills/{bill['id']}/statement/json")["downloadUrl"]
    assert json.loads(api.download(url).text)["bill"]["id"] == bill["id"]

    assert [e["m3terEvent"]["eventData"]["newDto"]["statementJobStatus"]
            for e in api.events("billing.statementjob.updated")] == ["COMPLETE"]
    assert len(api.events("billing.statementjob.created")) == 1


def test_a_statement_filter_keeps_the_line_items_of_those_meters(api):
    api.freeze()
    bill = api.bill(api.account())
    job = api.ok("CreateStatementJob", "post", "/statementjobs",
                 {"billId": bill["id"], "filters": {"meterIds": ["meter-1"]}})
    api.advance(1)
    done = api.ok("GetStatementJob", "get", f"/statementjobs/{job['id']}")
    assert "presignedCsvStatementUrl" not in done
    assert [i["meterId"] for i in api.download(done["presignedJsonStatementUrl"]).json()["lineItems"]] == ["meter-1"]


def test_a_pending_statement_job_can_be_cancelled_and_then_never_runs(api):
    api.freeze()
    bill = api.bill(api.account())
    job = api.ok("CreateStatementJob", "post", "/statementjobs", {"billId": bill["id"]})
    cancelled = api.ok("CancelStatementJob", "post", f"/statementjobs/{job['id']}/cancel")
    assert cancelled["statementJobStatus"] == "CANCELLED"
    api.advance(5)
    assert api.ok("GetStatementJob", "get", f"/statementjobs/{job['id']}")["statementJobStatus"] == "CANCELLED"
    assert api.ok("GetBill", "get", f"/bills/{bill['id']}")["jsonStatementGenerated"] is False
    message = api.fails(409, "post", f"/statementjobs/{job['id']}/cancel")
    assert message == f"StatementJob '{job['id']}' is CANCELLED: only a job that is PENDING or RUNNING can be cancelled"
    assert api.fails(404, "post", f"/statementjobs/{NOWHERE}/cancel") == f"No StatementJob with id '{NOWHERE}'"


def test_statement_jobs_name_existing_bills_one_or_a_batch(api):
    bill, other = api.bill(api.account()), api.bill(api.account("other"))
    assert api.fails(400, "post", "/statementjobs", {"billId": NOWHERE}) == f"billId: no Bill with id '{NOWHERE}'"
    assert api.fails(400, "post", "/statementjobs/batch", {"billIds": [bill["id"], NOWHERE]}) == (
        f"billIds: no Bill with id '{NOWHERE}'")
    assert api.ok("ListStatementJobs", "get", "/statementjobs")["data"] == []
    jobs = api.ok("CreateStatementJobBatch", "post", "/statementjobs/batch",
                  {"billIds": [bill["id"], other["id"]], "includeCsvFormat": True})
    assert [(j["billId"], j["includeCsvFormat"], j["statementJobStatus"]) for j in jobs] == [
        (bill["id"], True, "PENDING"), (other["id"], True, "PENDING")]


def test_statement_job_lists_take_one_filter_at_a_time(api):
    api.freeze()
    bill, other = api.bill(api.account()), api.bill(api.account("other"))
    done = api.ok("CreateStatementJob", "post", "/statementjobs", {"billId": bill["id"]})
    api.advance(1)
    waiting = api.ok("CreateStatementJob", "post", "/statementjobs", {"billId": other["id"]})

    def listed(**query):
        return [j["id"] for j in api.ok("ListStatementJobs", "get", "/statementjobs", **query)["data"]]

    assert listed() == [done["id"], waiting["id"]]
    assert listed(active="true") == [waiting["id"]] and listed(active="false") == [done["id"], waiting["id"]]
    assert listed(status="COMPLETE") == [done["id"]]
    assert listed(billId=other["id"]) == [waiting["id"]]
    assert api.fails(400, "get", "/statementjobs", active="true", billId=bill["id"]) == (
        "billId: use only one of active, status and billId (given: active, billId)")
    assert api.fails(400, "get", "/statementjobs", status="DONE").startswith("status: 'DONE' is not one of")
    assert api.fails(400, "get", "/statementjobs", active="yes") == "active: 'yes' is not one of ['true', 'false']"


def test_a_csv_statement_is_made_on_request_and_then_served(api):
    bill = api.bill(api.account())
    path = f"/bills/{bill['id']}/statement/csv"
    assert "no CSV statement yet" in api.fails(404, "get", path)
    made = api.ok("CreateBillCsvStatement", "post", path)["downloadUrl"]
    rows = list(csv.DictReader(io.StringIO(api.download(made).text)))
    assert [r["lineItemType"] for r in rows] == ["USAGE", "STANDING_CHARGE"]
    again = api.ok("GetBillCsvStatement", "get", path)["downloadUrl"]
    assert again != made and api.download(again).text == api.download(made).text
    assert api.ok("GetBill", "get", f"/bills/{bill['id']}")["csvStatementGenerated"] is True
    assert api.fails(404, "post", f"/bills/{NOWHERE}/statement/csv") == f"No Bill with id '{NOWHERE}'"


def test_download_urls_last_fifteen_minutes(api):
    api.freeze()
    bill = api.bill(api.account())
    url = api.ok("CreateBillCsvStatement", "post", f"/bills/{bill['id']}/statement/csv")["downloadUrl"]
    api.advance(14 * 60)
    assert api.download(url).status_code == 200
    api.advance(60)
    expired = api.download(url)
    assert expired.status_code == 403 and "expired" in expired.json()["message"]


# -- the bills CSV ---------------------------------------------------------------------------

def test_the_bills_csv_holds_a_row_per_line_item_of_the_period(api):
    acme = api.account()
    september = api.bill(acme, "2024-09-01", "2024-10-01")  # billDate 2024-10-01
    api.bill(acme, "2024-10-01", "2024-11-01")  # billDate 2024-11-01: outside
    api.bill(acme, "2024-09-15", "2024-10-15", items=[])  # an empty bill: no row
    url = api.ok("DownloadBillsCsvUrl", "post", "/bills/download/csv/url",
                 {"startDate": "2024-10-01T00:00:00Z", "endDate": "2024-10-31T00:00:00Z"})["downloadUrl"]
    rows = list(csv.DictReader(io.StringIO(api.download(url).text)))
    assert [(r["billId"], r["lineItemType"], r["billTotal"]) for r in rows] == [
        (september["id"], "USAGE", "15.1"), (september["id"], "STANDING_CHARGE", "15.1")]
    xero = api.ok("DownloadBillsCsvUrl", "post", "/bills/download/csv/url",
                  {"startDate": "2024-10-01T00:00:00Z", "endDate": "2024-10-31T00:00:00Z",
                   "externalSystem": "XERO"})["downloadUrl"]
    header = api.download(xero).text.splitlines()[0]
    assert header == "ContactName,InvoiceNumber,InvoiceDate,DueDate,Description,Quantity,UnitAmount,LineAmount,Currency"

    assert api.fails(400, "post", "/bills/download/csv/url",
                     {"startDate": "2024-10-01T00:00:00Z", "endDate": "2024-11-02T00:00:00Z"}) == (
        "endDate: a download covers at most 31 days")
    assert api.fails(400, "post", "/bills/download/csv/url", {}).startswith("startDate: required")
    assert api.fails(400, "post", "/bills/download/csv/url", {"startDate": "2024-10-01T00:00:00Z"}) == (
        "endDate: required with startDate")


# -- the data explorer -----------------------------------------------------------------------

def test_the_data_explorer_selects_line_items_by_type_period_and_dimension(api):
    acme, other = api.account("acme"), api.account("other")
    api.bill(acme)
    api.bill(other)
    api.bill(acme, "2024-10-01", "2024-11-01")
    query = {"startDate": "2024-09-01T00:00:00Z", "endDate": "2024-10-01T00:00:00Z", "lineItemTypes": ["USAGE"]}
    values = api.ok("PostQueryBillData", "post", "/dataexplorer/bills", query)["values"]
    assert [(v["dimensions"]["account"], v["measures"]["subtotal"]) for v in values] == [("acme", 10.1),
                                                                                         ("other", 10.1)]
    assert values[0]["billDetails"]["yearMonth"] == "2024-09" and values[0]["dimensions"]["accountName"] == "Acme"
    narrowed = api.ok("PostQueryBillData", "post", "/dataexplorer/bills",
                      {**query, "dimensions": [{"name": "account", "filter": ["other"]}]})["values"]
    assert [v["dimensions"]["accountId"] for v in narrowed] == [other["id"]]
    assert len(api.ok("PostQueryBillData", "post", "/dataexplorer/bills", {**query, "limit": 1})["values"]) == 1
    unknown = {**query, "dimensions": [{"name": "colour", "filter": ["x"]}]}
    message = api.fails(400, "post", "/dataexplorer/bills", unknown)
    assert message.startswith("dimensions.0.name: 'colour' is not one of ['account', ")


# -- bill jobs -------------------------------------------------------------------------------

def test_bill_jobs_are_listed_by_state_and_an_active_one_can_be_cancelled(api):
    running = api.service.store_bill_job(api.caller, status="RUNNING")
    complete = api.service.store_bill_job(api.caller, status="COMPLETE")

    def listed(**query):
        return [j["id"] for j in api.ok("ListBillJobs", "get", "/billjobs", **query)["data"]]

    assert listed(active="true") == [running["id"]]
    assert listed(active="false") == listed() == [running["id"], complete["id"]]
    assert listed(status="COMPLETE") == [complete["id"]]
    assert api.fails(400, "get", "/billjobs", status="FINISHED").startswith("status: 'FINISHED' is not one of")

    cancelled = api.ok("CancelBillJob", "post", f"/billjobs/{running['id']}/cancel")
    assert (cancelled["status"], cancelled["version"]) == ("CANCELLED", 1)
    assert api.ok("GetBillJob", "get", f"/billjobs/{running['id']}")["status"] == "CANCELLED"
    [event] = api.events("billing.billjob.updated")
    change = event["m3terEvent"]["eventData"]
    assert (change["oldDto"]["status"], change["newDto"]["status"]) == ("RUNNING", "CANCELLED")
    assert api.fails(409, "post", f"/billjobs/{complete['id']}/cancel") == (
        f"BillJob '{complete['id']}' is COMPLETE: "
        "only a job that is PENDING or INITIALIZING or RUNNING can be cancelled")
    assert api.fails(404, "post", f"/billjobs/{NOWHERE}/cancel") == f"No BillJob with id '{NOWHERE}'"


# -- the official SDK, strict ------------------------------------------------------------------

@pytest.fixture
def strict_sdk(live_url, live_app):
    live_app.backend.reset()
    with m3ter.M3ter(base_url=live_url, api_key="sdk-client", api_secret="sdk-secret", org_id=ORG, max_retries=0,
                     _strict_response_validation=True) as client:
        yield client


def test_the_sdk_approves_locks_and_makes_statements(live_app, strict_sdk):
    api = Api(live_app)
    api.freeze()
    bill = api.bill(api.account())
    assert strict_sdk.bills.approve(bill_ids=[bill["id"]]).message == "1 bill approved"
    assert strict_sdk.bills.lock(bill["id"]).locked is True
    with pytest.raises(m3ter.ConflictError):
        strict_sdk.bills.update_status(bill["id"], status="PENDING")
    assert strict_sdk.bills.latest_by_account(bill["accountId"]).id == bill["id"]
    job = strict_sdk.statements.statement_jobs.create(bill_id=bill["id"])
    assert job.statement_job_status == "PENDING"
    assert [j.id for j in strict_sdk.statements.statement_jobs.list(active="true")] == [job.id]
    api.advance(1)
    assert strict_sdk.statements.statement_jobs.retrieve(job.id).statement_job_status == "COMPLETE"
    assert strict_sdk.statements.get_json(bill["id"]).download_url.startswith("http://127.0.0.1:")
    items = strict_sdk.bills.line_items.list(bill["id"])
    assert [i.line_item_type for i in items] == ["USAGE", "STANDING_CHARGE"]
