"""Bill runs over HTTP with the in-process app (every response checked against the spec):
bill jobs on the mock's clock, billing periods, recalculation in place, previews, line item
usage, commitments and balances drawn down (and given back), and scheduled runs.

Every amount is worked out by hand from the entities each test makes: a product "storage",
a meter with a MEASURE field ``gb``, a SUM aggregation, a monthly plan template in USD with
a standing charge of 10, a plan, a pricing of 2 per GB and an account plan from 2024-01-01.
The clock is frozen at 2024-04-02 unless a test says otherwise."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.conftest import bearer_for
from tests.support.org_calls import OrgCalls

ORG = "org-bill-runs"


class World(OrgCalls):
    org = ORG

    def __init__(self, app, client, auth):
        self.app = app
        self.client = client
        self.auth = auth
        app.backend.change_clock(freeze=True, at="2024-04-02T00:00:00Z")

    # -- calls --------------------------------------------------------------------------

    def fails(self, expected: int, method: str, path: str, body=None) -> str:
        response = self.call(method, path, body)
        assert response.status_code == expected, (response.status_code, response.text)
        return response.json()["message"]

    def advance(self, seconds: float) -> None:
        self.app.backend.change_clock(advance_seconds=seconds)

    def events(self, name: str) -> list[dict]:
        """The Events of that name, oldest first, as (oldDto, newDto)."""
        data = self.ok("get", "/events", eventName=name, pageSize=100)["data"]
        return [e["m3terEvent"]["eventData"] for e in reversed(data)]

    # -- the billing set-up -------------------------------------------------------------
    def setup(self, *, standing_charge=10, unit_price=2, account_code="acme", plan_start="2024-01-01T00:00:00Z"):
        self.product = self.ok("post", "/products", {"name": "Storage", "code": "storage"})
        self.meter = self.ok("post", "/meters", {
            "productId": self.product["id"], "name": "Storage", "code": "storage_meter",
            "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB", "unit": "GB"}], "derivedFields": []})
        self.aggregation = self.ok("post", "/aggregations", {
            "name": "GB stored", "code": "gb_stored", "meterId": self.meter["id"], "targetField": "gb",
            "aggregation": "SUM", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB"})
        self.template = self.ok("post", "/plantemplates", {
            "name": "Standard", "productId": self.product["id"], "billFrequency": "MONTHLY", "currency": "USD",
            "standingCharge": standing_charge})
        self.plan = self.ok("post", "/plans", {"name": "Standard", "code": "standard",
                                               "planTemplateId": self.template["id"]})
        self.pricing = self.ok("post", "/pricings", {
            "planId": self.plan["id"], "aggregationId": self.aggregation["id"], "startDate": "2024-01-01T00:00:00Z",
            "cumulative": True, "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": unit_price}]})
        self.account = self.add_account(account_code, plan_start)
        return self

    def add_account(self, code: str, plan_start="2024-01-01T00:00:00Z") -> dict:
        account = self.ok("post", "/accounts", {"name": code.title(), "code": code,
                                                "emailAddress": f"{code}@example.com"})
        self.ok("post", "/accountplans", {"accountId": account["id"], "planId": self.plan["id"],
                                          "startDate": plan_start})
        return account

    def measure(self, *days_and_gb, account="acme", uid="m"):
        """One measurement of ``gb`` at 10:00 on each (day of 2024, gb) pair."""
        body = {"measurements": [{"uid": f"{uid}-{day}-{n}", "meter": "storage_meter", "account": account,
                                  "ts": f"2024-{day}T10:00:00Z", "measure": {"gb": gb}}
                                 for n, (day, gb) in enumerate(days_and_gb)]}
        self.ok("post", "/measurements", body)

    def commitment(self, amount=1000, **fields) -> dict:
        return self.ok("post", "/commitments", {"accountId": self.account["id"], "amount": amount, "currency": "USD",
                                                "startDate": "2024-01-01", "endDate": "2025-01-01", **fields})

    def run(self, **body) -> dict:
        """A bill job, run to the end on the clock."""
        job = self.ok("post", "/billjobs", body)
        self.advance(1)
        return self.ok("get", f"/billjobs/{job['id']}")

    def bill(self, bill_id: str) -> dict:
        return self.ok("get", f"/bills/{bill_id}")


@pytest.fixture
def world(app, client, auth):
    return World(app, client, auth)


def lines(bill: dict) -> list[tuple]:
    return [(item["lineItemType"], item["quantity"], item["subtotal"]) for item in bill["lineItems"]]


# -- the job's lifecycle ------------------------------------------------------------------------

def test_a_bill_job_is_pending_then_runs_one_second_later_on_the_clock(world):
    world.setup()
    job = world.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2024-03-31", "billingFrequency": "MONTHLY"})
    assert (job["status"], job["type"], job["billIds"], job["total"], job["pending"]) == (
        "PENDING", "CREATE", [], 0, 0)
    assert (job["lastDateInBillingPeriod"], job["billingFrequency"]) == ("2024-03-31", "MONTHLY")
    world.advance(0.5)
    assert world.ok("get", f"/billjobs/{job['id']}")["status"] == "PENDING"
    assert world.ok("get", "/bills")["data"] == []
    world.advance(0.5)
    done = world.ok("get", f"/billjobs/{job['id']}")
    assert (done["status"], done["total"], done["pending"], len(done["billIds"])) == ("COMPLETE", 1, 0, 1)
    statuses = [(e.get("oldDto", {}).get("status"), e["newDto"]["status"])
                for e in world.events("billing.billjob.created") + world.events("billing.billjob.updated")]
    assert statuses == [(None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "RUNNING"), ("RUNNING", "COMPLETE")]
    [created] = world.events("billing.bill.created")
    assert created["newDto"]["id"] == done["billIds"][0]


def test_a_cancelled_job_bills_nothing(world):
    world.setup()
    job = world.ok("post", "/billjobs", {"lastDateInBillingPeriod": "2024-03-31"})
    assert world.ok("post", f"/billjobs/{job['id']}/cancel")["status"] == "CANCELLED"
    world.advance(5)
    assert world.ok("get", f"/billjobs/{job['id']}")["status"] == "CANCELLED"
    assert world.ok("get", "/bills")["data"] == []


def test_a_job_for_an_unknown_account_an_impossible_interval_or_date_is_a_400_and_stores_nothing(world):
    world.setup()
    assert world.fails(400, "post", "/billjobs", {"accountIds": ["nope"]}) == "accountIds: no Account with id 'nope'"
    assert world.fails(400, "post", "/billjobs", {"billFrequencyInterval": 0}) == \
        "billFrequencyInterval: 0 is not between 1 and 365 (the range of a plan template's)"
    assert world.fails(400, "post", "/billjobs", {"lastDateInBillingPeriod": "9999-12-31"}) == \
        "lastDateInBillingPeriod: 9999-12-31 is outside the dates the mock bills (years 1000 to 8999)"
    assert world.ok("get", "/billjobs")["data"] == []


def test_accounts_are_billed_in_steps_of_fifty(world):
    world.setup()
    for n in range(60):
        world.add_account(f"acct{n:02d}")
    job = world.run(lastDateInBillingPeriod="2024-03-31")
    assert (job["status"], job["total"], len(job["billIds"])) == ("COMPLETE", 61, 61)
    progress = [(e["newDto"]["status"], e["newDto"]["pending"]) for e in world.events("billing.billjob.updated")]
    assert progress == [("RUNNING", 61), ("RUNNING", 11), ("RUNNING", 0), ("COMPLETE", 0)]


# -- what a bill holds -------------------------------------------------------------------------

def test_a_bill_prices_the_period_standing_charge_usage_and_draws_the_commitment(world):
    world.setup()
    commitment = world.commitment(amount=1000)
    # March: 5 x 100 GB; one measurement in February and one in April are not March's.
    world.measure(("02-29", 7), ("03-01", 100), ("03-02", 100), ("03-10", 100), ("03-20", 100), ("03-31", 100),
                  ("04-01", 9))
    job = world.run(lastDateInBillingPeriod="2024-03-31", billingFrequency="MONTHLY")
    bill = world.bill(job["billIds"][0])
    assert {k: bill[k] for k in ("accountId", "accountCode", "startDate", "endDate", "billDate", "dueDate",
                                 "externalInvoiceDate", "billingFrequency", "billFrequencyInterval", "currency",
                                 "status", "locked", "billJobId")} == {
        "accountId": world.account["id"], "accountCode": "acme", "startDate": "2024-03-01",
        "endDate": "2024-04-01", "billDate": "2024-04-01", "dueDate": "2024-04-02",
        "externalInvoiceDate": "2024-04-01", "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
        "currency": "USD", "status": "PENDING", "locked": False, "billJobId": job["id"]}
    # 10 standing + 500 GB x 2 = 1010; the commitment of 1000 covers 1000 of it.
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 500, 1000),
                           ("COMMITMENT_CONSUMED", 1, -10), ("COMMITMENT_CONSUMED", 1, -990)]
    assert bill["billTotal"] == 10
    usage = bill["lineItems"][1]
    assert (usage["productId"], usage["planId"], usage["pricingId"], usage["aggregationId"], usage["meterId"]) == (
        world.product["id"], world.plan["id"], world.pricing["id"], world.aggregation["id"], world.meter["id"])
    assert (usage["servicePeriodStartDate"], usage["servicePeriodEndDate"]) == (
        "2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z")
    assert usage["usagePerPricingBand"][0]["bandUnits"] == 500
    # amountSpent counts all of the eligible 1010: the commitment is overspent by 10.
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 1010
    [change] = world.events("configuration.commitment.updated")
    assert ("amountSpent" in change["oldDto"], change["newDto"]["amountSpent"]) == (False, 1010)


def test_a_last_date_inside_the_period_bills_up_to_that_day(world):
    world.setup()
    world.measure(("03-01", 100), ("03-15", 50), ("03-16", 1000))
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-15")["billIds"][0])
    assert (bill["startDate"], bill["endDate"], bill["billDate"]) == ("2024-03-01", "2024-03-16", "2024-03-16")
    # the standing charge for 15 of March's 31 days: 10 x 15 / 31 = 4.838... -> 4.84
    assert lines(bill) == [("STANDING_CHARGE", 1, 4.84), ("USAGE", 150, 300)]
    # The whole month later: the same bill (same start), recalculated over all of March.
    again = world.bill(world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0])
    assert (again["id"], again["version"], again["endDate"]) == (bill["id"], 2, "2024-04-01")
    assert lines(again) == [("STANDING_CHARGE", 1, 10), ("USAGE", 1150, 2300)]


def test_without_a_last_date_the_current_period_is_billed(world):
    world.setup()
    world.measure(("04-01", 3))
    bill = world.bill(world.run()["billIds"][0])
    assert (bill["startDate"], bill["endDate"]) == ("2024-04-01", "2024-05-01")
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 3, 6)]


def test_an_account_plan_that_starts_inside_the_period_is_billed_for_its_part(world):
    world.setup(plan_start="2024-03-10T00:00:00Z")
    world.measure(("03-05", 100), ("03-12", 10))
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0])
    # 22 of 31 days: 10 x 22 / 31 = 7.096... -> 7.10; usage only from the 10th.
    assert lines(bill) == [("STANDING_CHARGE", 1, 7.1), ("USAGE", 10, 20)]


def test_only_the_accounts_and_frequency_asked_for_are_billed(world):
    world.setup()
    other = world.add_account("other")
    assert world.run(lastDateInBillingPeriod="2024-03-31", billingFrequency="WEEKLY")["billIds"] == []
    job = world.run(lastDateInBillingPeriod="2024-03-31", accountIds=[other["id"]])
    assert [world.bill(b)["accountCode"] for b in job["billIds"]] == ["other"]
    lonely = world.ok("post", "/accounts", {"name": "No plan", "code": "noplan", "emailAddress": "n@example.com"})
    assert world.run(accountIds=[lonely["id"]])["billIds"] == []


def test_epochs_and_due_days_shape_the_period_and_dates(world):
    world.setup()
    world.ok("put", "/organizationconfig", {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04",
                                            "monthEpoch": "2022-01-15", "yearEpoch": "2022-01-01",
                                            "timezone": "UTC", "daysBeforeBillDue": 14,
                                            "externalInvoiceDate": "LAST_DAY_OF_ARREARS"})
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-14")["billIds"][0])
    assert {k: bill[k] for k in ("startDate", "endDate", "billDate", "dueDate", "externalInvoiceDate")} == {
        "startDate": "2024-02-15", "endDate": "2024-03-15", "billDate": "2024-03-15", "dueDate": "2024-03-29",
        "externalInvoiceDate": "2024-03-14"}
    dated = world.bill(world.run(lastDateInBillingPeriod="2024-03-14", billDate="2024-03-20",
                                 dueDate="2024-04-30")["billIds"][0])
    assert (dated["id"], dated["billDate"], dated["dueDate"]) == (bill["id"], "2024-03-20", "2024-04-30")


# -- running again, recalculating, locking, deleting ----------------------------------------------

def test_running_a_period_again_updates_the_same_bill_and_counts_usage_once(world):
    world.setup()
    commitment = world.commitment(amount=5000)
    world.measure(("03-05", 100))
    first = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 210
    world.measure(("03-06", 50), uid="late")
    second = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert second == first
    bill = world.bill(first)
    assert (bill["version"], lines(bill)[:2]) == (2, [("STANDING_CHARGE", 1, 10), ("USAGE", 150, 300)])
    # 210 given back, 310 drawn: not 520.
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 310
    assert [(e["oldDto"].get("amountSpent"), e["newDto"]["amountSpent"])
            for e in world.events("configuration.commitment.updated")] == [(None, 210), (210, 310)]
    [updated] = world.events("billing.bill.updated")
    assert (updated["oldDto"]["billTotal"], updated["newDto"]["billTotal"]) == (0, 0)
    assert len(world.ok("get", "/bills")["data"]) == 1


def test_recalculation_reprices_the_named_bills_in_place(world):
    world.setup()
    world.measure(("03-05", 100))
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert world.bill(bill_id)["billTotal"] == 210
    world.ok("post", f"/bills/{bill_id}/statement/csv")
    world.measure(("03-07", 5), uid="more")
    job = world.ok("post", "/billjobs/recalculate", {"billIds": [bill_id]})
    assert (job["type"], job["status"], job["billIds"], job["total"]) == ("RECALCULATE", "PENDING", [bill_id], 1)
    world.advance(1)
    assert world.ok("get", f"/billjobs/{job['id']}")["status"] == "COMPLETE"
    bill = world.bill(bill_id)
    assert (bill["version"], bill["billTotal"], bill["billJobId"]) == (2, 220, job["id"])
    assert (bill["csvStatementGenerated"], bill["statementStale"]) == (True, True)


def test_recalculating_an_unknown_or_locked_bill_is_refused_and_makes_no_job(world):
    world.setup()
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert world.fails(400, "post", "/billjobs/recalculate", {"billIds": [bill_id, "nope"]}) == \
        "billIds: no Bill with id 'nope'"
    world.ok("put", f"/bills/{bill_id}/status", {"status": "APPROVED"})
    world.ok("put", f"/bills/{bill_id}/lock")
    assert world.fails(409, "post", "/billjobs/recalculate", {"billIds": [bill_id]}) == \
        f"Bill '{bill_id}' is locked: a locked bill cannot be changed"
    assert len(world.ok("get", "/billjobs")["data"]) == 1
    # A bill job leaves the locked bill as it is.
    world.measure(("03-05", 100))
    assert world.run(lastDateInBillingPeriod="2024-03-31")["billIds"] == []
    assert (world.bill(bill_id)["version"], world.bill(bill_id)["billTotal"]) == (1, 10)


def test_an_update_of_the_commitment_keeps_what_was_spent(world):
    world.setup()
    commitment = world.commitment(amount=100)
    world.measure(("03-05", 10))
    world.run(lastDateInBillingPeriod="2024-03-31")
    stored = world.ok("get", f"/commitments/{commitment['id']}")
    body = {k: stored[k] for k in ("accountId", "amount", "currency", "startDate", "endDate")}
    updated = world.ok("put", f"/commitments/{commitment['id']}", {**body, "amount": 200, "version": stored["version"]})
    assert (updated["amount"], updated["amountSpent"]) == (200, 30)
    world.run(lastDateInBillingPeriod="2024-03-31")  # recalculated: still 30, not 60 nor 0
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 30


def test_deleting_a_bill_gives_back_what_it_drew(world):
    world.setup()
    commitment = world.commitment(amount=100)
    world.measure(("03-05", 10))
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 30
    world.ok("delete", f"/bills/{bill_id}")
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 0
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 30


# -- balances ------------------------------------------------------------------------------------

def test_a_balance_pays_what_is_left_and_records_its_draw(world):
    world.setup()
    balance = world.ok("post", "/balances", {
        "accountId": world.account["id"], "code": "prepaid", "name": "Prepaid", "currency": "USD",
        "startDate": "2024-01-01T00:00:00Z", "endDate": "2025-01-01T00:00:00Z"})
    world.ok("post", f"/balances/{balance['id']}/transactions", {"amount": 100})
    world.measure(("03-05", 20))  # 10 + 40 = 50
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0])
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 20, 40), ("BALANCE_CONSUMED", 1, -10),
                           ("BALANCE_CONSUMED", 1, -40)]
    assert bill["billTotal"] == 0
    assert world.ok("get", f"/balances/{balance['id']}")["amount"] == 50
    drawn = [t for t in world.ok("get", f"/balances/{balance['id']}/transactions")["data"] if t["amount"] < 0]
    assert [(t["amount"], t["entityType"], t["entityId"]) for t in drawn] == [(-50, "BILL", bill["id"])]
    assert [(e["oldDto"]["amount"], e["newDto"]["amount"]) for e in world.events("billing.balanceamount.updated")] \
        == [(100, 50)]
    assert [(e["oldDto"]["amount"], e["newDto"]["amount"]) for e in world.events("billing.balance.updated")] == [
        (0, 100), (100, 50)]  # the credit posted, then the bill's draw
    # Recalculated with more usage: the first draw is given back, then 100 is drawn (all there is).
    world.measure(("03-06", 40), uid="more")  # 10 + 120 = 130
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0])
    assert bill["billTotal"] == 30
    assert world.ok("get", f"/balances/{balance['id']}")["amount"] == 0
    drawn = [t["amount"] for t in world.ok("get", f"/balances/{balance['id']}/transactions")["data"]
             if t["amount"] < 0]
    assert drawn == [-100]


# -- preview and line item usage -------------------------------------------------------------------

def test_a_preview_prices_without_storing_anything(world):
    world.setup()
    commitment = world.commitment(amount=50)
    world.measure(("03-05", 100))
    body = {"accountIds": [world.account["id"]], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
            "lastDateInBillingPeriod": "2024-03-31"}
    before = world.app.backend.store.contents()
    preview = world.ok("post", "/bills/preview", body)
    assert world.app.backend.store.contents() == before
    assert (preview["startDate"], preview["endDate"], preview["status"], preview["billTotal"]) == (
        "2024-03-01", "2024-04-01", "PENDING", 160)
    assert lines(preview)[:2] == [("STANDING_CHARGE", 1, 10), ("USAGE", 100, 200)]
    assert world.ok("get", f"/commitments/{commitment['id']}").get("amountSpent") is None
    # Once billed, the preview is of that bill (its id) and counts the commitment once.
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    again = world.ok("post", "/bills/preview", body)
    assert (again["id"], again["billTotal"]) == (bill_id, 160)


@pytest.mark.parametrize("body, message", [
    ({"billingFrequency": "MONTHLY", "billFrequencyInterval": 1},
     "accountIds: a preview is for exactly one account (given 0)"),
    ({"accountIds": ["a", "b"], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1},
     "accountIds: a preview is for exactly one account (given 2)"),
    ({"accountIds": ["a"], "billFrequencyInterval": 1}, "billingFrequency: required for a preview"),
    ({"accountIds": ["a"], "billingFrequency": "MONTHLY"}, "billFrequencyInterval: required for a preview"),
    ({"accountIds": ["a"], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1},
     "accountIds: no Account with id 'a'"),
])
def test_a_preview_needs_one_account_and_its_frequency(world, body, message):
    assert world.fails(400, "post", "/bills/preview", body) == message


def test_a_usage_line_item_has_its_usage_as_a_json_download(world):
    world.setup()
    world.measure(("03-05", 100))
    bill = world.bill(world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0])
    standing, usage = bill["lineItems"]
    url = world.ok("get", f"/bills/{bill['id']}/lineitems/{usage['id']}/usage/json")["downloadUrl"]
    parts = urlsplit(url)
    document = json.loads(world.client.get(parts.path).content)
    assert {k: document[k] for k in ("billId", "accountCode", "aggregationId", "meterId", "quantity", "subtotal",
                                     "servicePeriodStartDate")} == {
        "billId": bill["id"], "accountCode": "acme", "aggregationId": world.aggregation["id"],
        "meterId": world.meter["id"], "quantity": 100, "subtotal": 200,
        "servicePeriodStartDate": "2024-03-01T00:00:00.000Z"}
    assert [(b["lowerLimit"], b["unitPrice"], b["bandUnits"]) for b in document["bandUsage"]] == [(0, 2, 100)]
    assert world.fails(404, "get", f"/bills/{bill['id']}/lineitems/{standing['id']}/usage/json") == (
        f"Bill line item {standing['id']!r} is a STANDING_CHARGE line: only a usage line has usage")
    assert world.fails(404, "get", f"/bills/{bill['id']}/lineitems/nope/usage/json").startswith("No ")


# -- scheduled runs --------------------------------------------------------------------------------

def test_scheduled_runs_bill_each_period_as_the_clock_passes_its_end(world):
    world.setup()
    world.app.backend.change_clock(freeze=True, at="2024-03-20T00:00:00Z")
    world.measure(("03-21", 10))
    world.advance(31 * 86400)  # scheduling is off by default: nothing
    assert world.ok("get", "/bills")["data"] == []
    world.ok("put", "/organizationconfig", {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04",
                                            "monthEpoch": "2022-01-01", "yearEpoch": "2022-01-01",
                                            "timezone": "UTC", "daysBeforeBillDue": 1,
                                            "scheduledBillInterval": 24, "scheduledBillOffset": 2})
    world.advance(86400)  # the run at 2024-04-20T02:00 makes April's bill (so far); March ended before
    [april] = world.ok("get", "/bills")["data"]
    assert (april["startDate"], april["createdBy"], april["billTotal"]) == ("2024-04-01", "m3ter-scheduler", 10)
    world.measure(("04-21", 4), uid="april")
    world.advance(5 * 86400)  # the next run takes the new usage in
    assert world.bill(april["id"])["billTotal"] == 18
    versions = world.bill(april["id"])["version"]
    world.advance(2 * 86400)  # nothing changed: the bill is not rewritten
    assert world.bill(april["id"])["version"] == versions
    world.advance(4 * 86400)  # 2024-05-03: April closed, May's bill begun
    bills = sorted(world.ok("get", "/bills")["data"], key=lambda b: b["startDate"])
    assert [(b["startDate"], b["endDate"], b["billTotal"]) for b in bills] == [
        ("2024-04-01", "2024-05-01", 18), ("2024-05-01", "2024-06-01", 10)]


def test_a_scheduled_run_closes_one_period_and_opens_the_next_drawing_the_commitment_once_each(world):
    world.setup()
    commitment = world.commitment(amount=5000)
    world.app.backend.change_clock(freeze=True, at="2024-04-29T12:00:00Z")
    world.measure(("04-10", 100))
    world.ok("put", "/organizationconfig", {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04",
                                            "monthEpoch": "2022-01-01", "yearEpoch": "2022-01-01",
                                            "timezone": "UTC", "daysBeforeBillDue": 1,
                                            "scheduledBillInterval": 24, "scheduledBillOffset": 2})
    world.advance(86400)  # the run at 04-30T02:00: April so far, 10 + 200
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 210
    world.measure(("04-30", 5), uid="last-day")  # 10:00 on the 30th, after that run
    world.advance(86400)  # the run at 05-01T02:00: April closed (220) and May begun (10)
    bills = sorted(world.ok("get", "/bills")["data"], key=lambda b: b["startDate"])
    assert [(b["startDate"], b["billTotal"]) for b in bills] == [("2024-04-01", 0), ("2024-05-01", 0)]
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 230


def test_turning_scheduling_off_stops_the_runs(world):
    world.setup()
    config = {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04", "monthEpoch": "2022-01-01",
              "yearEpoch": "2022-01-01", "timezone": "UTC", "daysBeforeBillDue": 1, "scheduledBillInterval": 1}
    world.ok("put", "/organizationconfig", config)
    world.ok("put", "/organizationconfig", {**config, "scheduledBillInterval": 0, "version": 1})
    world.advance(40 * 86400)
    assert world.ok("get", "/bills")["data"] == []


def test_another_client_sees_the_same_bills(world, client):
    world.setup()
    bill_id = world.run(lastDateInBillingPeriod="2024-03-31")["billIds"][0]
    other = bearer_for(client, "someone-else", "secret")
    response = client.get(f"/organizations/{ORG}/bills/{bill_id}", headers=other)
    assert response.status_code == 200 and response.json()["billTotal"] == 10
