"""Bill runs behaviour that mutation testing found unpinned, through the API: every date a
bill job takes checked against the years the mock bills, the bill fields a job or an account
sets (external invoice date, timezone, purchase order number, currency conversions), previews
(their account code, and the period of an account with no plan), a bill's line items in full
and a usage line item's usage document, plan groups, the organization's Currency rounding, the
bill's currency, the account's credit application order, balances in another currency and a
balance draw's transaction and Event, pricing minimum spends, standing charges on every n-th
bill, tiers that span the plan, the latest of two pricings and a plan's own pricing over its
template's, compound aggregations, segments no pricing names, commitment fees of a billing
plan billed every n months, a commitment that no longer covers a recalculated period, AD_HOC
plans, when scheduled runs fall and that they leave an unchanged bill alone, and a bill job
that keeps going (or ends) when billing one account fails.

Every amount is worked out by hand from the entities each test makes (as in
tests/test_bill_runs.py): a product, a meter with a MEASURE field ``gb``, a SUM aggregation,
a monthly plan template in USD with a standing charge of 10, a plan, a pricing of 2 per GB
from 2024-01-01 and an account plan from 2024-01-01; the clock is frozen at 2024-04-02."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from mockserver.backend import bill_runs
from tests.support.org_calls import OrgCalls

ORG = "org-pinned-billruns"
YEAR_CHECKED = ("lastDateInBillingPeriod", "billDate", "dueDate", "externalInvoiceDate", "yearEpoch", "monthEpoch",
                "weekEpoch", "dayEpoch")
CONFIG = {"currency": "USD", "dayEpoch": "2022-01-01", "weekEpoch": "2022-01-04", "monthEpoch": "2022-01-01",
          "yearEpoch": "2022-01-01", "timezone": "UTC", "daysBeforeBillDue": 1}


class World(OrgCalls):
    org = ORG

    def __init__(self, app, client, auth):
        self.app = app
        self.client = client
        self.auth = auth
        app.backend.change_clock(freeze=True, at="2024-04-02T00:00:00Z")


    def advance(self, seconds: float) -> None:
        self.app.backend.change_clock(advance_seconds=seconds)

    def setup(self, *, template=None, account=None, pricing=None, plan_start="2024-01-01T00:00:00Z"):
        self.product = self.ok("post", "/products", {"name": "Storage", "code": "storage"})
        self.meter = self.ok("post", "/meters", {
            "productId": self.product["id"], "name": "Storage", "code": "storage_meter",
            "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB", "unit": "GB"},
                           {"category": "WHERE", "code": "region", "name": "Region"}], "derivedFields": []})
        self.aggregation = self.ok("post", "/aggregations", {
            "name": "GB stored", "code": "gb_stored", "meterId": self.meter["id"], "targetField": "gb",
            "aggregation": "SUM", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB"})
        self.template = self.ok("post", "/plantemplates", {
            "name": "Standard", "productId": self.product["id"], "billFrequency": "MONTHLY", "currency": "USD",
            "standingCharge": 10, **(template or {})})
        self.plan = self.ok("post", "/plans", {"name": "Standard", "code": "standard",
                                               "planTemplateId": self.template["id"]})
        self.pricing = self.price(self.plan, unit_price=2, **(pricing or {}))
        self.account = self.add_account("acme", plan_start=plan_start, **(account or {}))
        return self

    def price(self, plan: dict, *, unit_price=2, start="2024-01-01T00:00:00Z", **fields) -> dict:
        return self.ok("post", "/pricings", {
            "planId": plan["id"], "aggregationId": self.aggregation["id"], "startDate": start, "cumulative": True,
            "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": unit_price}], **fields})

    def add_account(self, code: str, *, plan=None, plan_start="2024-01-01T00:00:00Z", **fields) -> dict:
        account = self.ok("post", "/accounts", {"name": code.title(), "code": code,
                                                "emailAddress": f"{code}@example.com", **fields})
        self.ok("post", "/accountplans", {"accountId": account["id"], "planId": (plan or self.plan)["id"],
                                          "startDate": plan_start})
        return account

    def measure(self, *days_and_gb, account="acme", uid="m", region=None):
        """One measurement of ``gb`` at 10:00 on each (day of 2024, gb) pair."""
        where = {"where": {"region": region}} if region else {}
        body = {"measurements": [{"uid": f"{uid}-{day}-{n}", "meter": "storage_meter", "account": account,
                                  "ts": f"2024-{day}T10:00:00Z", "measure": {"gb": gb}, **where}
                                 for n, (day, gb) in enumerate(days_and_gb)]}
        self.ok("post", "/measurements", body)

    def run(self, **body) -> dict:
        """A bill job, run to the end on the clock."""
        job = self.ok("post", "/billjobs", body)
        self.advance(1)
        return self.ok("get", f"/billjobs/{job['id']}")

    def bill(self, bill_id: str) -> dict:
        return self.ok("get", f"/bills/{bill_id}")

    def march(self, **body) -> dict:
        """The March 2024 bill of the account ``acme`` (the only bill the job makes)."""
        [bill_id] = self.run(lastDateInBillingPeriod="2024-03-31", **body)["billIds"]
        return self.bill(bill_id)

    def balance(self, currency="USD", credit=100, **fields) -> dict:
        balance = self.ok("post", "/balances", {
            "accountId": self.account["id"], "code": f"prepaid_{currency.lower()}", "name": "Prepaid",
            "currency": currency, "startDate": "2024-01-01T00:00:00Z", "endDate": "2025-01-01T00:00:00Z", **fields})
        self.ok("post", f"/balances/{balance['id']}/transactions", {"amount": credit})
        return balance


@pytest.fixture
def world(app, client, auth):
    return World(app, client, auth)


def lines(bill: dict) -> list[tuple]:
    return [(item["lineItemType"], item["quantity"], item["subtotal"]) for item in bill["lineItems"]]


# -- what a bill job accepts ---------------------------------------------------------------------

@pytest.mark.parametrize("name", YEAR_CHECKED)
def test_every_date_of_a_bill_job_must_fall_in_the_years_1000_to_8999(world, name):
    for inside in ("1000-01-01", "8999-12-31"):
        assert world.call("post", "/billjobs", {name: inside}).status_code == 200
    for outside in ("0999-12-31", "9000-01-01"):
        refused = world.call("post", "/billjobs", {name: outside})
        assert refused.status_code == 400
        assert refused.json()["message"] == \
            f"{name}: {outside} is outside the dates the mock bills (years 1000 to 8999)"
    assert len(world.ok("get", "/billjobs")["data"]) == 2


def test_a_bill_jobs_interval_runs_from_1_to_365(world):
    assert world.call("post", "/billjobs", {"billFrequencyInterval": 365}).status_code == 200
    refused = world.call("post", "/billjobs", {"billFrequencyInterval": 366})
    assert (refused.status_code, refused.json()["message"]) == (
        400, "billFrequencyInterval: 366 is not between 1 and 365 (the range of a plan template's)")


# -- the fields of a bill ---------------------------------------------------------------------------

def test_a_bill_takes_the_jobs_dates_timezone_and_conversions_and_the_accounts_purchase_order(world):
    world.setup(account={"purchaseOrderNumber": "PO-2024-17"})
    conversions = [{"from": "EUR", "to": "USD", "multiplier": 1.1}]
    bill = world.march(externalInvoiceDate="2024-04-20", timezone="Europe/Paris", currencyConversions=conversions)
    assert {k: bill.get(k) for k in ("externalInvoiceDate", "billDate", "dueDate", "timezone", "purchaseOrderNumber",
                                     "currencyConversions")} == {
        "externalInvoiceDate": "2024-04-20", "billDate": "2024-04-01", "dueDate": "2024-04-02",
        "timezone": "Europe/Paris", "purchaseOrderNumber": "PO-2024-17", "currencyConversions": conversions}
    # Without them: the first day of the next period, UTC, and no purchase order number.
    other = world.add_account("other")
    [bill_id] = world.run(lastDateInBillingPeriod="2024-03-31", accountIds=[other["id"]])["billIds"]
    plain = world.bill(bill_id)
    assert (plain["externalInvoiceDate"], plain["timezone"]) == ("2024-04-01", "UTC")
    assert "purchaseOrderNumber" not in plain and "currencyConversions" not in plain


def test_a_preview_is_the_bill_the_job_would_make_account_code_included(world):
    world.setup(account={"purchaseOrderNumber": "PO-9"})
    world.measure(("03-05", 100))
    body = {"accountIds": [world.account["id"]], "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
            "lastDateInBillingPeriod": "2024-03-31"}
    preview = world.ok("post", "/bills/preview", body)
    expected = {"accountId": world.account["id"], "accountCode": "acme", "startDate": "2024-03-01",
                "endDate": "2024-04-01", "billDate": "2024-04-01", "dueDate": "2024-04-02",
                "externalInvoiceDate": "2024-04-01", "billingFrequency": "MONTHLY", "billFrequencyInterval": 1,
                "currency": "USD", "timezone": "UTC", "purchaseOrderNumber": "PO-9", "status": "PENDING",
                "locked": False, "billTotal": 210}
    assert {k: preview.get(k) for k in expected} == expected
    bill = world.march()
    assert {k: bill.get(k) for k in expected} == expected


@pytest.mark.parametrize("body, period", [
    ({"billingFrequency": "MONTHLY", "lastDateInBillingPeriod": "2024-03-15"}, ("2024-03-01", "2024-03-16")),
    ({"billingFrequency": "MONTHLY"}, ("2024-04-01", "2024-05-01")),  # the period holding today, 2024-04-02
    ({"billingFrequency": "AD_HOC", "lastDateInBillingPeriod": "2024-03-15"}, ("2024-03-15", "2024-03-16")),
])
def test_the_preview_of_an_account_without_a_plan_is_an_empty_bill_of_the_period_asked_for(world, body, period):
    lonely = world.ok("post", "/accounts", {"name": "No plan", "code": "noplan", "emailAddress": "n@example.com"})
    preview = world.ok("post", "/bills/preview", {"accountIds": [lonely["id"]], "billFrequencyInterval": 1, **body})
    assert (preview["startDate"], preview["endDate"], preview["billingFrequency"], preview["billFrequencyInterval"],
            preview["accountCode"], preview["lineItems"], preview["billTotal"]) == (
        *period, body["billingFrequency"], 1, "noplan", [], 0)


def test_a_bills_line_items_say_what_they_charge_for_in_full(world):
    world.setup()
    world.measure(("03-05", 100))
    bill = world.march()
    period = {"servicePeriodStartDate": "2024-03-01T00:00:00.000Z", "servicePeriodEndDate": "2024-04-01T00:00:00.000Z"}
    product = {"productId": world.product["id"], "productName": "Storage", "productCode": "storage",
               "planId": world.plan["id"], "currency": "USD", "conversionRate": 1, **period}
    standing = {**product, "lineItemType": "STANDING_CHARGE", "description": "Standing charge", "unit": "",
                "quantity": 1, "units": 1, "averageUnitPrice": 10, "subtotal": 10, "convertedSubtotal": 10}
    bands = [{"pricingBandId": world.pricing["pricingBands"][0]["id"], "lowerLimit": 0, "fixedPrice": 0,
              "unitPrice": 2, "bandUnits": 100, "bandQuantity": 100, "unitSubtotal": 200, "bandSubtotal": 200}]
    usage = {**product, "lineItemType": "USAGE", "description": "GB stored", "unit": "GB", "quantity": 100,
             "units": 100, "averageUnitPrice": 2, "subtotal": 200, "convertedSubtotal": 200,
             "pricingId": world.pricing["id"], "aggregationId": world.aggregation["id"], "meterId": world.meter["id"]}
    assert [{k: v for k, v in item.items() if k != "id"} for item in bill["lineItems"]] == [
        standing, {**usage, "usagePerPricingBand": bands}]
    audit = {"billId": bill["id"], "version": 1, "dtCreated": "2024-04-02T00:00:01.000Z",
             "dtLastModified": "2024-04-02T00:00:01.000Z", "createdBy": "test-client", "lastModifiedBy": "test-client"}
    items = world.ok("get", f"/bills/{bill['id']}/lineitems")["data"]
    assert [item["id"] for item in items] == [item["id"] for item in bill["lineItems"]]
    assert [{k: v for k, v in item.items() if k != "id"} for item in items] == [
        {**standing, **audit}, {**usage, "bandUsage": bands, **audit}]


def test_a_usage_line_items_usage_document_holds_every_field_of_the_line(world):
    world.setup()
    world.measure(("03-05", 100))
    bill = world.march()
    usage = bill["lineItems"][1]
    url = world.ok("get", f"/bills/{bill['id']}/lineitems/{usage['id']}/usage/json")["downloadUrl"]
    document = json.loads(world.client.get(urlsplit(url).path).content)
    assert document == {
        "id": usage["id"], "billId": bill["id"], "accountId": world.account["id"], "accountCode": "acme",
        "lineItemType": "USAGE", "description": "GB stored", "productId": world.product["id"], "productName": "Storage",
        "planId": world.plan["id"], "pricingId": world.pricing["id"], "aggregationId": world.aggregation["id"],
        "meterId": world.meter["id"], "servicePeriodStartDate": "2024-03-01T00:00:00.000Z",
        "servicePeriodEndDate": "2024-04-01T00:00:00.000Z", "quantity": 100, "units": 100, "unit": "GB",
        "subtotal": 200, "currency": "USD", "bandUsage": document["bandUsage"]}
    assert [(b["lowerLimit"], b["unitPrice"], b["bandUnits"], b["bandSubtotal"]) for b in document["bandUsage"]] == [
        (0, 2, 100, 200)]


# -- what is billed ---------------------------------------------------------------------------------

def test_an_account_plan_of_a_plan_group_bills_the_groups_plans(world):
    world.setup()
    group = world.ok("post", "/plangroups", {"name": "Bundle", "code": "bundle", "currency": "USD"})
    world.ok("post", "/plangrouplinks", {"planGroupId": group["id"], "planId": world.plan["id"]})
    grouped = world.ok("post", "/accounts", {"name": "Grouped", "code": "grouped", "emailAddress": "g@example.com"})
    world.ok("post", "/accountplans", {"accountId": grouped["id"], "planGroupId": group["id"],
                                       "startDate": "2024-01-01T00:00:00Z"})
    world.measure(("03-05", 7), account="grouped")
    [bill_id] = world.run(lastDateInBillingPeriod="2024-03-31", accountIds=[grouped["id"]])["billIds"]
    bill = world.bill(bill_id)
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 7, 14)]
    assert {item["planId"] for item in bill["lineItems"]} == {world.plan["id"]}


def test_amounts_are_rounded_as_the_organizations_currency_says_and_the_bill_is_in_the_templates_currency(world):
    world.ok("post", "/picklists/currency", {"name": "Yen", "code": "JPY", "maxDecimalPlaces": 0,
                                             "roundingMode": "UP"})
    world.setup(template={"currency": "JPY", "standingCharge": 10.2})
    world.ok("put", "/organizationconfig", {**CONFIG, "currency": "GBP"})
    world.measure(("03-05", 3.5))  # 3.5 GB x 2 = 7 exactly; the standing charge 10.2 rounds UP to 11
    bill = world.march()
    assert bill["currency"] == "JPY"
    assert lines(bill) == [("STANDING_CHARGE", 1, 11), ("USAGE", 3.5, 7)]


def test_the_bill_currency_is_the_templates_before_the_accounts_and_the_organizations(world):
    world.setup(template={"currency": "EUR"}, account={"currency": "GBP"})
    world.ok("put", "/organizationconfig", {**CONFIG, "currency": "CHF"})
    assert world.march()["currency"] == "EUR"


def test_the_accounts_credit_application_order_draws_the_balance_before_the_commitment(world):
    world.setup(account={"creditApplicationOrder": ["BALANCE", "PREPAYMENT"]})
    commitment = world.ok("post", "/commitments", {"accountId": world.account["id"], "amount": 1000, "currency": "USD",
                                                   "startDate": "2024-01-01", "endDate": "2025-01-01"})
    balance = world.balance(credit=30)
    world.measure(("03-05", 20))  # 10 + 40 = 50: the balance pays 30 (10, then 20 of 40), the commitment 20
    bill = world.march()
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 20, 40), ("BALANCE_CONSUMED", 1, -10),
                           ("BALANCE_CONSUMED", 1, -20), ("COMMITMENT_CONSUMED", 1, -20)]
    assert world.ok("get", f"/balances/{balance['id']}")["amount"] == 0
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 20


def test_a_balance_in_another_currency_is_not_drawn(world):
    world.setup()
    euros = world.balance(currency="EUR", credit=100)
    dollars = world.balance(currency="USD", credit=4)
    world.measure(("03-05", 20))
    bill = world.march()
    assert lines(bill) == [("STANDING_CHARGE", 1, 10), ("USAGE", 20, 40), ("BALANCE_CONSUMED", 1, -4)]
    assert world.ok("get", f"/balances/{euros['id']}")["amount"] == 100
    assert world.ok("get", f"/balances/{dollars['id']}")["amount"] == 0


@pytest.mark.parametrize("gb, expected", [
    (0, [("STANDING_CHARGE", 1, 10), ("MINIMUM_SPEND", 1, 50)]),  # no usage line at all: 50 short
    (10, [("STANDING_CHARGE", 1, 10), ("USAGE", 10, 20), ("MINIMUM_SPEND", 1, 30)]),
    (30, [("STANDING_CHARGE", 1, 10), ("USAGE", 30, 60)]),  # above the minimum
])
def test_a_pricings_minimum_spend_tops_up_its_own_usage(world, gb, expected):
    world.setup(pricing={"minimumSpend": 50})
    if gb:
        world.measure(("03-05", gb))
    assert lines(world.march()) == expected


def test_a_plans_minimum_spend_counts_each_pricing_at_no_less_than_its_own_minimum(world):
    # The plan's minimum of 100; its one pricing's of 50 with usage of 20: 50 counted, so 50 short.
    world.setup(pricing={"minimumSpend": 50})
    world.ok("put", f"/plans/{world.plan['id']}", {"name": "Standard", "code": "standard", "minimumSpend": 100,
                                                   "planTemplateId": world.template["id"], "version": 1})
    world.measure(("03-05", 10))
    assert lines(world.march()) == [("STANDING_CHARGE", 1, 10), ("USAGE", 10, 20), ("MINIMUM_SPEND", 1, 30),
                                    ("MINIMUM_SPEND", 1, 50)]


def test_a_standing_charge_every_second_bill_is_on_the_plans_first_third_and_fifth_bills(world):
    world.setup(template={"standingChargeInterval": 2})
    charged = {}
    for last in ("2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"):
        [bill_id] = world.run(lastDateInBillingPeriod=last)["billIds"]
        charged[last[:7]] = [line[2] for line in lines(world.bill(bill_id)) if line[0] == "STANDING_CHARGE"]
    assert charged == {"2024-01": [10], "2024-02": [], "2024-03": [10], "2024-04": [], "2024-05": [10]}


def test_tiers_that_span_the_plan_continue_from_the_units_billed_before_the_period(world):
    # Tiered bands: the first 100 GB at 2, above that 1. February billed 80 GB; March's 50 GB
    # are 20 at 2 and 30 at 1 = 70.
    world.setup(pricing={"tiersSpanPlan": True, "pricingBands": [
        {"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 2}, {"lowerLimit": 100, "fixedPrice": 0, "unitPrice": 1}]})
    world.measure(("02-10", 80), ("03-05", 50))
    assert lines(world.march()) == [("STANDING_CHARGE", 1, 10), ("USAGE", 50, 70)]


def test_of_two_pricings_active_in_the_period_the_later_starting_one_prices_it(world):
    world.setup()
    later = world.price(world.plan, unit_price=3, start="2024-03-01T00:00:00Z")
    world.measure(("03-05", 100))
    usage = world.march()["lineItems"][1]
    assert (usage["pricingId"], usage["subtotal"]) == (later["id"], 300)


def test_a_compound_aggregations_usage_line_carries_its_name_and_unit(world):
    world.setup()
    compound = world.ok("post", "/compoundaggregations", {
        "name": "Doubled storage", "code": "doubled", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB2",
        "calculation": "aggregation.gb_stored * 2"})
    plan = world.ok("post", "/plans", {"name": "Doubled", "code": "doubled_plan",
                                       "planTemplateId": world.template["id"]})
    world.ok("post", "/pricings", {"planId": plan["id"], "compoundAggregationId": compound["id"],
                                   "startDate": "2024-01-01T00:00:00Z", "cumulative": True,
                                   "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]})
    other = world.add_account("other", plan=plan)
    world.measure(("03-05", 4), account="other")
    [bill_id] = world.run(lastDateInBillingPeriod="2024-03-31", accountIds=[other["id"]])["billIds"]
    usage = world.bill(bill_id)["lineItems"][1]
    assert {k: usage.get(k) for k in ("lineItemType", "description", "unit", "quantity", "subtotal",
                                      "compoundAggregationId")} == {
        "lineItemType": "USAGE", "description": "Doubled storage", "unit": "GB2", "quantity": 8, "subtotal": 8,
        "compoundAggregationId": compound["id"]}


@pytest.mark.parametrize("apac_price, expected", [
    (None, [("apac", 2, 2), ("eu", 10, 10), ("us", 4, 4)]),  # the unsegmented pricing prices every segment
    (5, [("apac", 2, 10), ("eu", 10, 10), ("us", 4, 4)]),  # and leaves apac to its own pricing
])
def test_an_unsegmented_pricing_of_a_segmented_aggregation_prices_each_segment_no_pricing_names(
        world, apac_price, expected):
    world.setup()
    regional = world.ok("post", "/aggregations", {
        "name": "GB by region", "code": "gb_region", "meterId": world.meter["id"], "targetField": "gb",
        "aggregation": "SUM", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB",
        "segmentedFields": ["region"], "segments": [{"region": "eu"}, {"region": "us"}, {"region": "apac"}]})
    plan = world.ok("post", "/plans", {"name": "Regional", "code": "regional", "planTemplateId": world.template["id"]})
    band = {"startDate": "2024-01-01T00:00:00Z", "planId": plan["id"], "aggregationId": regional["id"],
            "cumulative": True}
    world.ok("post", "/pricings", {**band, "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]})
    if apac_price is not None:
        world.ok("post", "/pricings", {**band, "segment": {"region": "apac"},
                                       "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": apac_price}]})
    other = world.add_account("other", plan=plan)
    world.measure(("03-05", 10), account="other", region="eu", uid="eu")
    world.measure(("03-06", 4), account="other", region="us", uid="us")
    world.measure(("03-07", 2), account="other", region="apac", uid="apac")
    [bill_id] = world.run(lastDateInBillingPeriod="2024-03-31", accountIds=[other["id"]])["billIds"]
    usage = sorted((item["segment"]["region"], item["quantity"], item["subtotal"])
                   for item in world.bill(bill_id)["lineItems"] if item["lineItemType"] == "USAGE")
    assert usage == expected


def test_a_commitment_billed_with_a_quarterly_plan_bills_a_quarter_of_its_fee_every_third_month(world):
    world.setup()
    quarterly = world.ok("post", "/plantemplates", {
        "name": "Quarterly", "productId": world.product["id"], "billFrequency": "MONTHLY",
        "billFrequencyInterval": 3, "currency": "USD", "standingCharge": 0})
    billing_plan = world.ok("post", "/plans", {"name": "Quarterly", "code": "quarterly",
                                               "planTemplateId": quarterly["id"]})
    world.ok("post", "/commitments", {"accountId": world.account["id"], "amount": 1200, "currency": "USD",
                                      "startDate": "2024-01-01", "endDate": "2025-01-01",
                                      "billingPlanId": billing_plan["id"]})
    fees = {}
    for last in ("2024-02-29", "2024-03-31"):
        [bill_id] = world.run(lastDateInBillingPeriod=last)["billIds"]
        fees[last[:7]] = [item["subtotal"] for item in world.bill(bill_id)["lineItems"]
                          if item["lineItemType"] == "COMMITMENT_FEE"]
    # In arrears: the first quarter's fee (1200 / 4) is on the bill whose period holds its end.
    assert fees == {"2024-02": [], "2024-03": [300]}


def test_an_ad_hoc_plan_is_billed_from_its_start_to_the_day_after_the_last_date(world):
    world.setup(template={"billFrequency": "AD_HOC"}, plan_start="2024-03-10T00:00:00Z")
    world.measure(("03-05", 100), ("03-12", 10))
    [bill_id] = world.run(lastDateInBillingPeriod="2024-03-20", billingFrequency="AD_HOC")["billIds"]
    bill = world.bill(bill_id)
    assert (bill["startDate"], bill["endDate"], bill["billingFrequency"]) == ("2024-03-10", "2024-03-21", "AD_HOC")
    assert [line for line in lines(bill) if line[0] == "USAGE"] == [("USAGE", 10, 20)]


# -- scheduled runs and failures ----------------------------------------------------------------------

def test_a_scheduled_run_leaves_a_bill_with_drawdown_lines_alone_when_nothing_changed(world):
    world.setup()
    commitment = world.ok("post", "/commitments", {"accountId": world.account["id"], "amount": 5000, "currency": "USD",
                                                   "startDate": "2024-01-01", "endDate": "2025-01-01"})
    world.app.backend.change_clock(freeze=True, at="2024-04-10T00:00:00Z")
    world.measure(("04-05", 100))
    world.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24, "scheduledBillOffset": 2})
    world.advance(86400)  # the run at 04-11T02:00: April so far, 10 + 200, drawn from the commitment
    [april] = world.ok("get", "/bills")["data"]
    assert [line[0] for line in lines(april)] == ["STANDING_CHARGE", "USAGE", "COMMITMENT_CONSUMED",
                                                  "COMMITMENT_CONSUMED"]
    world.advance(3 * 86400)  # three more runs, nothing changed: the bill is not rewritten
    assert world.bill(april["id"])["version"] == april["version"]
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 210
    assert len(world.ok("get", "/events", eventName="billing.bill.updated")["data"]) == 0


def test_an_account_that_cannot_be_billed_is_skipped_and_the_others_are_billed(world, caplog):
    world.setup()
    broken = world.ok("post", "/compoundaggregations", {
        "name": "Broken", "code": "broken", "rounding": "NONE", "quantityPerUnit": 1, "unit": "u",
        "calculation": "aggregation.nowhere * 2"})
    plan = world.ok("post", "/plans", {"name": "Broken", "code": "broken_plan", "planTemplateId": world.template["id"]})
    world.ok("post", "/pricings", {"planId": plan["id"], "compoundAggregationId": broken["id"],
                                   "startDate": "2024-01-01T00:00:00Z", "cumulative": True,
                                   "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}]})
    bad = world.add_account("bad", plan=plan)
    with caplog.at_level(logging.WARNING, logger="m3ter_mock"):
        job = world.run(lastDateInBillingPeriod="2024-03-31")
    assert (job["status"], job["total"], job["pending"]) == ("COMPLETE", 2, 0)
    assert [world.bill(b)["accountCode"] for b in job["billIds"]] == ["acme"]
    assert (f"bill job {job['id']}: account {bad['id']} not billed: CompoundAggregation 'broken': calculation: "
            f"no Aggregation with code 'nowhere'") in caplog.messages


def test_a_bill_job_whose_run_breaks_ends_complete_rather_than_running_for_ever(world, monkeypatch, caplog):
    world.setup()

    def broken(*args, **kwargs):
        raise RuntimeError("the usage engine broke")

    monkeypatch.setattr(world.app.backend.usage_engine, "quantities", broken)
    with caplog.at_level(logging.ERROR, logger="m3ter_mock"):
        job = world.run(lastDateInBillingPeriod="2024-03-31")
    assert (job["status"], job["pending"], job["billIds"]) == ("COMPLETE", 0, [])
    assert f"bill job {job['id']} of {ORG} failed" in caplog.messages


def test_a_scheduled_run_that_breaks_is_logged_and_the_next_one_still_runs(world, monkeypatch, caplog):
    world.setup()
    world.app.backend.change_clock(freeze=True, at="2024-04-10T00:00:00Z")

    def broken(*args, **kwargs):
        raise RuntimeError("the usage engine broke")

    monkeypatch.setattr(world.app.backend.usage_engine, "quantities", broken)
    world.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 24})
    with caplog.at_level(logging.ERROR, logger="m3ter_mock"):
        world.advance(86400)  # the run at 04-11T00:00 fails
    assert world.ok("get", "/bills")["data"] == []
    assert f"scheduled bill run of {ORG} failed" in caplog.messages
    monkeypatch.undo()
    world.advance(86400)  # the run at 04-12T00:00 bills April so far
    assert [b["startDate"] for b in world.ok("get", "/bills")["data"]] == ["2024-04-01"]


def test_a_commitment_that_no_longer_covers_a_recalculated_period_gets_back_what_the_bill_drew(world):
    world.setup()
    commitment = world.ok("post", "/commitments", {"accountId": world.account["id"], "amount": 1000, "currency": "USD",
                                                   "startDate": "2024-01-01", "endDate": "2025-01-01"})
    world.measure(("03-05", 0.25))  # 10 + 0.25 x 2 = 10.5, all drawn from the commitment
    first = world.march()
    assert (first["billTotal"], world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"]) == (0, 10.5)
    stored = world.ok("get", f"/commitments/{commitment['id']}")
    world.ok("put", f"/commitments/{commitment['id']}", {
        **{k: stored[k] for k in ("accountId", "amount", "currency", "startDate")}, "endDate": "2024-03-01",
        "version": stored["version"]})  # it ends before March now
    again = world.march()
    assert (again["id"], again["billTotal"], lines(again)) == (
        first["id"], 10.5, [("STANDING_CHARGE", 1, 10), ("USAGE", 0.25, 0.5)])
    assert world.ok("get", f"/commitments/{commitment['id']}")["amountSpent"] == 0


def test_a_balance_draw_is_a_transaction_naming_the_bill_its_period_and_when_it_was_drawn(world):
    world.setup()
    balance = world.balance(credit=100)
    world.measure(("03-05", 20))  # 10 + 40 = 50 drawn
    bill = world.march()
    [drawn] = [t for t in world.ok("get", f"/balances/{balance['id']}/transactions")["data"] if t["amount"] < 0]
    assert {k: drawn.get(k) for k in ("amount", "description", "appliedDate", "transactionDate", "entityType",
                                      "entityId")} == {
        "amount": -50, "description": f"Bill {bill['id']} (2024-03-01 to 2024-04-01)",
        "appliedDate": "2024-04-01T00:00:00.000Z", "transactionDate": "2024-04-02T00:00:01.000Z",
        "entityType": "BILL", "entityId": bill["id"]}
    [moved] = world.ok("get", "/events", eventName="billing.balanceamount.updated")["data"]
    shown = {"id": balance["id"], "balanceId": balance["id"], "accountId": world.account["id"], "currency": "USD",
             "version": 1}
    assert moved["m3terEvent"]["eventData"] == {"oldDto": {**shown, "amount": 100}, "newDto": {**shown, "amount": 50}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("after, hours, offset, expected", [
    ("2024-04-10T05:30", 6, 0, "2024-04-10T06:00"),   # every 6 hours from midnight
    ("2024-04-10T06:00", 6, 0, "2024-04-10T12:00"),   # strictly after
    ("2024-04-10T23:00", 6, 0, "2024-04-11T00:00"),
    ("2024-04-10T05:30", 6, 2, "2024-04-10T06:00"),   # an offset is for daily schedules only
    ("2024-04-10T00:10", 0.25, 0, "2024-04-10T00:15"),
    ("2024-04-10T01:00", 24, 2, "2024-04-10T02:00"),  # daily at 02:00
    ("2024-04-10T02:00", 24, 2, "2024-04-11T02:00"),
    ("2024-04-10T03:00", 24, 2, "2024-04-11T02:00"),
    ("2024-04-10T05:00", 48, 0, "2024-04-12T00:00"),
])
def test_the_next_scheduled_run_counts_from_midnight_utc(after, hours, offset, expected):
    assert bill_runs.next_run(at(after), hours, offset) == at(expected)


def test_a_schedule_shorter_than_a_quarter_hour_runs_every_quarter_hour(world):
    world.setup()
    world.app.backend.change_clock(freeze=True, at="2024-04-10T00:00:00Z")
    world.ok("put", "/organizationconfig", {**CONFIG, "scheduledBillInterval": 0.1})
    world.advance(14 * 60)
    assert world.ok("get", "/bills")["data"] == []
    world.advance(60)  # 00:15
    assert [b["startDate"] for b in world.ok("get", "/bills")["data"]] == ["2024-04-01"]


def test_a_plans_own_pricing_wins_over_its_templates_which_prices_what_the_plan_does_not(world):
    world.setup()  # the plan's pricing: 2 per GB stored
    template_pricing = {"planTemplateId": world.template["id"], "startDate": "2024-03-01T00:00:00Z", "cumulative": True,
                        "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 5}]}
    world.ok("post", "/pricings", {**template_pricing, "aggregationId": world.aggregation["id"]})
    peak = world.ok("post", "/aggregations", {
        "name": "Peak GB", "code": "peak_gb", "meterId": world.meter["id"], "targetField": "gb",
        "aggregation": "MAX", "rounding": "NONE", "quantityPerUnit": 1, "unit": "GB"})
    peak_pricing = world.ok("post", "/pricings", {**template_pricing, "aggregationId": peak["id"]})
    world.measure(("03-05", 30), ("03-06", 70))
    usage = [(item["pricingId"], item["quantity"], item["subtotal"]) for item in world.march()["lineItems"]
             if item["lineItemType"] == "USAGE"]
    assert usage == [(world.pricing["id"], 100, 200), (peak_pricing["id"], 70, 350)]
