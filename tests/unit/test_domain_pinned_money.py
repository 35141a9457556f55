"""Money and usage rules pinned by value (issue 9): the fields of a bill line item as a user
reads them, balance and commitment windows at both sides of their boundaries, the steps of
billing periods, the bills' files and the data explorer's rows, compound calculations.

Each test calls a pure function of ``mockserver/domain`` directly; every expected value is a
literal worked out by hand in the comment beside it (Decimals, exact), never read back from
the code under test."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from mockserver.domain import aggregation as agg
from mockserver.domain import bills
from mockserver.domain import pricing as p
from mockserver.domain.errors import MockError

D = Decimal
UTC = timezone.utc


def at(year, month, day, hour=0, minute=0, second=0, micro=0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


JAN = (at(2024, 1, 1), at(2024, 2, 1))


def refused(call, *args, **kwargs) -> MockError:
    with pytest.raises(MockError) as caught:
        call(*args, **kwargs)
    return caught.value


def pricing(**fields) -> dict:
    """A tiered pricing at 1 a unit from the first unit."""
    return {"id": "pr1", "planId": "plan1", "cumulative": True,
            "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1}], **fields}


def usage(quantity: str, **fields) -> list[dict]:
    return p.usage_lines([p.PricedUsage(pricing(**fields), None, D(quantity), product_id="P")], JAN)


def only(lines: list[dict], line_type: str) -> dict:
    [line] = [line for line in lines if line["lineItemType"] == line_type]
    return line


COMMITMENT = {"id": "c1", "amount": 100, "amountSpent": 0, "currency": "USD",
              "startDate": "2024-01-01", "endDate": "2025-01-01"}
RERATED = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1.5}]


# -- separate overage usage ----------------------------------------------------------------------

def test_a_charge_partly_in_overage_keeps_the_covered_part_and_moves_the_rest_re_rated():
    priced = pricing(overagePricingBands=RERATED)
    charges = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)    # 300 units at 1
    original_id = charges[0]["id"]
    commitment = {**COMMITMENT, "separateOverageUsage": True, "overageDescription": "Over the commitment"}
    lines, spent = p.commitment_lines(commitment, charges, JAN, pricings={"pr1": priced})
    # 100 drawn; 200 over = 200 units (300 * 200 / 300), re-rated from unit 100 on: 200 * 1.5 = 300
    kept = charges[0]
    assert (kept["id"], kept["lineItemType"], kept["subtotal"], kept["convertedSubtotal"], kept["quantity"],
            kept["units"], kept["averageUnitPrice"]) == (original_id, "USAGE", D(100), D(100), D(100), D(100), D(1))
    assert only(lines, "COMMITMENT_CONSUMED")["subtotal"] == D(-100)
    moved = only(lines, "OVERAGE_USAGE")
    assert moved["id"] != original_id
    assert (moved["commitmentId"], moved["description"], moved["subtotal"], moved["convertedSubtotal"],
            moved["quantity"], moved["units"], moved["averageUnitPrice"], moved["pricingId"], moved["productId"],
            moved["planId"]) == ("c1", "Over the commitment", D(300), D(300), D(200), D(200), D("1.5"), "pr1", "P",
                                 "plan1")
    # the band rows of the moved units only, continuing from the 100 covered: no fixed price re-charged
    assert moved["usagePerPricingBand"] == [
        {"lowerLimit": D(0), "fixedPrice": D(0), "unitPrice": D("1.5"), "bandUnits": D(200), "bandQuantity": D(200),
         "unitSubtotal": D(300), "bandSubtotal": D(300)}]
    assert spent == D(400)          # 300 of usage + (300 - 200) the re-rating adds


def test_a_charge_partly_in_overage_without_overage_bands_moves_its_amount_as_it_is():
    charges = usage("300")
    lines, spent = p.commitment_lines({**COMMITMENT, "separateOverageUsage": True}, charges, JAN)
    moved = only(lines, "OVERAGE_USAGE")
    # no overageDescription: the charge's own description; no re-rating, so no band rows of its own
    assert (moved["description"], moved["subtotal"], moved["convertedSubtotal"], moved["quantity"],
            moved["averageUnitPrice"]) == ("Usage", D(200), D(200), D(200), D(1))
    assert "usagePerPricingBand" not in moved
    assert spent == D(300)


def test_a_charge_wholly_in_overage_becomes_the_overage_line_re_rated():
    priced = pricing(overagePricingBands=RERATED, description="Storage")
    charges = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)
    commitment = {**COMMITMENT, "amountSpent": 100, "separateOverageUsage": True}     # nothing left to draw
    lines, spent = p.commitment_lines(commitment, charges, JAN, pricings={"pr1": priced})
    assert lines == []
    [charge] = charges
    # 300 units re-rated from 0: 300 * 1.5 = 450, average 450 / 300 = 1.5
    assert (charge["lineItemType"], charge["commitmentId"], charge["description"], charge["subtotal"],
            charge["convertedSubtotal"], charge["quantity"], charge["averageUnitPrice"]) == (
        "OVERAGE_USAGE", "c1", "Storage", D(450), D(450), D(300), D("1.5"))
    assert charge["usagePerPricingBand"] == [
        {"lowerLimit": D(0), "fixedPrice": D(0), "unitPrice": D("1.5"), "bandUnits": D(300), "bandQuantity": D(300),
         "unitSubtotal": D(450), "bandSubtotal": D(450)}]
    assert spent == D(550)          # 100 + 300 + (450 - 300)


def test_a_wholly_overage_charge_not_re_rated_keeps_its_band_rows():
    charges = usage("300")
    rows = charges[0]["usagePerPricingBand"]
    p.commitment_lines({**COMMITMENT, "amountSpent": 100, "separateOverageUsage": True}, charges, JAN)
    assert charges[0]["lineItemType"] == "OVERAGE_USAGE" and charges[0]["subtotal"] == D(300)
    assert charges[0]["usagePerPricingBand"] == rows and charges[0]["description"] == "Usage"


def test_overage_bands_of_a_volume_pricing_do_not_re_rate():
    priced = pricing(cumulative=False, overagePricingBands=RERATED)
    charges = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)
    lines, spent = p.commitment_lines({**COMMITMENT, "separateOverageUsage": True}, charges, JAN,
                                      pricings={"pr1": priced})
    assert only(lines, "OVERAGE_USAGE")["subtotal"] == D(200) and spent == D(300)


# -- surcharges ----------------------------------------------------------------------------------

def test_a_commitment_overage_surcharge_line_names_the_charge_and_the_commitment():
    charges = usage("300")
    lines, spent = p.commitment_lines({**COMMITMENT, "overageSurchargePercent": 10}, charges, JAN)
    surcharge = only(lines, "OVERAGE_SURCHARGE")
    # 200 over * 10 / 100 = 20
    assert {k: surcharge[k] for k in ("description", "subtotal", "convertedSubtotal", "quantity", "units",
                                      "averageUnitPrice", "currency", "productId", "planId", "pricingId",
                                      "referencedLineItemId", "commitmentId", "servicePeriodStartDate",
                                      "servicePeriodEndDate")} == {
        "description": "Overage surcharge", "subtotal": D(20), "convertedSubtotal": D(20), "quantity": D(1),
        "units": D(1), "averageUnitPrice": D(20), "currency": "USD", "productId": "P", "planId": "plan1",
        "pricingId": "pr1", "referencedLineItemId": charges[0]["id"], "commitmentId": "c1",
        "servicePeriodStartDate": "2024-01-01T00:00:00.000Z", "servicePeriodEndDate": "2024-02-01T00:00:00.000Z"}
    assert spent == D(300)          # the surcharge is not spent from the commitment
    named = p.commitment_lines({**COMMITMENT, "overageSurchargePercent": 10, "overageDescription": "Extra"},
                               usage("300"), JAN)[0]
    assert only(named, "OVERAGE_SURCHARGE")["description"] == "Extra"


def test_a_commitment_drawdown_line_names_the_charge_and_the_commitment():
    charges = usage("30")
    lines, _ = p.commitment_lines({**COMMITMENT, "accountingProductId": "acc"}, charges, JAN)
    [line] = lines
    assert {k: line[k] for k in ("lineItemType", "description", "subtotal", "convertedSubtotal", "quantity",
                                 "averageUnitPrice", "productId", "planId", "referencedLineItemId", "commitmentId",
                                 "accountingProductId")} == {
        "lineItemType": "COMMITMENT_CONSUMED", "description": "Commitment consumed", "subtotal": D(-30),
        "convertedSubtotal": D(-30), "quantity": D(1), "averageUnitPrice": D(-30), "productId": "P",
        "planId": "plan1", "referencedLineItemId": charges[0]["id"], "commitmentId": "c1",
        "accountingProductId": "acc"}
    named, _ = p.commitment_lines({**COMMITMENT, "commitmentUsageDescription": "Prepaid", "accountingProductId": "acc",
                                   "drawdownsAccountingProductId": "draw"}, usage("30"), JAN)
    assert (named[0]["description"], named[0]["accountingProductId"]) == ("Prepaid", "draw")


BALANCE = {"id": "b1", "amount": 200, "currency": "USD",
           "startDate": "2024-01-01T00:00:00Z", "endDate": "2025-01-01T00:00:00Z"}


def test_a_balance_drawdown_line_names_the_charge_and_the_balance():
    charges = usage("150")
    lines, drawn = p.balance_lines([{**BALANCE, "consumptionsAccountingProductId": "acc"}], charges, JAN)
    [line] = lines
    assert {k: line[k] for k in ("lineItemType", "description", "subtotal", "convertedSubtotal", "productId",
                                 "planId", "referencedLineItemId", "balanceId", "accountingProductId")} == {
        "lineItemType": "BALANCE_CONSUMED", "description": "Balance consumed", "subtotal": D(-150),
        "convertedSubtotal": D(-150), "productId": "P", "planId": "plan1", "referencedLineItemId": charges[0]["id"],
        "balanceId": "b1", "accountingProductId": "acc"}
    assert drawn == {"b1": D(150)}
    named, _ = p.balance_lines([{**BALANCE, "balanceDrawDownDescription": "Credits used"}], usage("150"), JAN)
    assert named[0]["description"] == "Credits used"


@pytest.mark.parametrize("quantity, surcharge", [
    ("200", None),          # nothing left over: no surcharge line
    ("200.5", D("0.05")),   # 0.5 over * 10 / 100 = 0.05
    ("201", D("0.10")),     # 1 over * 10 / 100 = 0.10
])
def test_a_balance_surcharges_what_is_left_undrawn_however_little(quantity, surcharge):
    balance = {**BALANCE, "overageSurchargePercent": 10, "overageDescription": "Over the balance"}
    charges = usage(quantity)
    lines, drawn = p.balance_lines([balance], charges, JAN)
    assert drawn == {"b1": D(200)}
    found = [line for line in lines if line["lineItemType"] == "OVERAGE_SURCHARGE"]
    if surcharge is None:
        assert found == []
        return
    [line] = found
    assert (line["subtotal"], line["description"], line["balanceId"], line["planId"], line["pricingId"],
            line["referencedLineItemId"]) == (surcharge, "Over the balance", "b1", "plan1", "pr1", charges[0]["id"])
    default = p.balance_lines([{**BALANCE, "overageSurchargePercent": 10}], usage(quantity), JAN)[0]
    assert only(default, "OVERAGE_SURCHARGE")["description"] == "Overage surcharge"


def test_only_usage_left_undrawn_is_surcharged_by_a_balance():
    standing = p.standing_charge_lines({"id": "plan1"}, {"standingCharge": 50, "productId": "P"}, JAN)
    lines, drawn = p.balance_lines([{**BALANCE, "amount": 0, "overageSurchargePercent": 10}], standing, JAN)
    assert lines == [] and drawn == {"b1": D(0)}       # 50 of standing charge undrawn, but it is no usage


def test_the_first_balance_eligible_for_a_charge_sets_its_surcharge():
    first = {**BALANCE, "id": "b1", "amount": 0, "overageSurchargePercent": 10}
    second = {**BALANCE, "id": "b2", "amount": 0, "overageSurchargePercent": 50}
    lines, drawn = p.balance_lines([first, second], usage("100"), JAN)
    assert [(line["balanceId"], line["subtotal"]) for line in lines] == [("b1", D(10))]     # 100 * 10%
    assert drawn == {"b1": D(0), "b2": D(0)}


def test_a_usage_charge_drawn_whole_by_a_first_balance_takes_no_surcharge_from_a_later_one():
    first = {**BALANCE, "id": "b1", "amount": 500}
    second = {**BALANCE, "id": "b2", "amount": 0, "overageSurchargePercent": 50}
    lines, _ = p.balance_lines([first, second], usage("100"), JAN)
    assert [line["lineItemType"] for line in lines] == ["BALANCE_CONSUMED"]


# -- balance windows: both sides of each boundary -----------------------------------------------

@pytest.mark.parametrize("fields, drawn", [
    ({"startDate": "2024-01-31T23:59:59.999Z"}, D(200)),     # starts in the period's last millisecond
    ({"startDate": "2024-02-01T00:00:00Z"}, None),           # starts as the period ends
    ({"endDate": "2024-01-01T00:00:00.001Z"}, D(200)),       # ends a millisecond into the period
    ({"endDate": "2024-01-15T00:00:00Z"}, D(200)),           # ends mid-period: draws from the whole bill
    ({"endDate": "2024-01-01T00:00:00Z"}, None),             # ends as the period starts
    ({"endDate": None}, D(200)),                             # no end
    ({"startDate": None, "endDate": None}, D(200)),
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-01-01T00:00:00.001Z", "rolloverAmount": 50},
     D(50)),                                                 # rolls over into the period's first millisecond
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-01-20T00:00:00Z", "rolloverAmount": 50},
     D(50)),                                                 # rollover ends mid-period
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-01-01T00:00:00Z", "rolloverAmount": 50},
     None),                                                  # rollover over as the period starts
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-01-20T00:00:00Z", "rolloverAmount": 500},
     D(200)),                                                # at most the balance's amount
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-01-20T00:00:00Z"}, D(200)),
])
def test_a_balance_is_active_in_a_period_it_overlaps(fields, drawn):
    balance = {k: v for k, v in {**BALANCE, **fields}.items() if v is not None}
    assert p.balance_lines([balance], usage("300"), JAN)[1] == ({} if drawn is None else {"b1": drawn})


@pytest.mark.parametrize("fields, drawn", [
    ({"startDate": "2024-01-31T23:59:59.999Z"}, D(-30)),
    ({"startDate": "2024-02-01"}, None),
    ({"endDate": "2024-01-01T00:00:00.001Z"}, D(-30)),
    ({"endDate": "2024-01-01"}, None),
])
def test_a_commitment_draws_in_a_period_it_overlaps(fields, drawn):
    lines, spent = p.commitment_lines({**COMMITMENT, **fields}, usage("30"), JAN)
    assert [line["subtotal"] for line in lines] == ([] if drawn is None else [drawn])
    assert spent == (D(0) if drawn is None else D(30))


# -- credits -------------------------------------------------------------------------------------

def test_a_usage_credit_line_without_a_pricing_type_is_capped_as_a_product_credit():
    debit_p = usage("50")
    debit_q = p.usage_lines([p.PricedUsage(pricing(id="pr2"), None, D(80), product_id="Q")], JAN)
    credit = {**usage("70", type="PRODUCT_CREDIT")[0]}
    del credit["additional"]
    capped = p.cap_credits(debit_p + debit_q + [credit])
    assert capped[-1]["subtotal"] == D(-50) and capped[-1]["convertedSubtotal"] == D(-50)   # P's 50, not 130
    as_global = p.cap_credits(debit_p + debit_q + usage("70", type="GLOBAL_CREDIT"))
    assert as_global[-1]["subtotal"] == D(-70)


def test_a_usage_credit_line_shows_what_it_credits():
    [line] = usage("4", type="GLOBAL_CREDIT", description="Promo")
    assert (line["lineItemType"], line["description"], line["subtotal"], line["convertedSubtotal"],
            line["averageUnitPrice"], line["additional"]) == (
        "USAGE_CREDIT", "Promo", D(-4), D(-4), D(-1), {"pricingType": "GLOBAL_CREDIT"})
    [default] = usage("4", type="PRODUCT_CREDIT")
    assert default["description"] == "Usage credit"


# -- billing period steps ------------------------------------------------------------------------

TEMPLATE = {"id": "t1", "productId": "P", "standingCharge": 30, "standingChargeBillInAdvance": True}


def served(lines: list[dict]) -> list[tuple[str, str, Decimal]]:
    return [(line["servicePeriodStartDate"], line["servicePeriodEndDate"], line["subtotal"]) for line in lines]


@pytest.mark.parametrize("frequency, interval, own, following", [
    ("DAILY", None, ("2024-01-01", "2024-01-02"), ("2024-01-02", "2024-01-03")),
    ("WEEKLY", None, ("2024-01-01", "2024-01-08"), ("2024-01-08", "2024-01-15")),
    ("MONTHLY", None, ("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-03-01")),
    ("monthly", 2, ("2024-01-01", "2024-02-01"), ("2024-02-01", "2024-04-01")),
    ("MONTHLY", 3, ("2024-01-31", "2024-02-29"), ("2024-02-29", "2024-05-29")),
    ("ANNUALLY", None, ("2024-01-01", "2025-01-01"), ("2025-01-01", "2026-01-01")),
])
def test_a_charge_in_advance_is_for_the_next_period_by_the_bill_frequency(frequency, interval, own, following):
    period = (datetime.fromisoformat(own[0]).replace(tzinfo=UTC), datetime.fromisoformat(own[1]).replace(tzinfo=UTC))
    own = tuple(f"{day}T00:00:00.000Z" for day in own)
    following = tuple(f"{day}T00:00:00.000Z" for day in following)
    template = {**TEMPLATE, "billFrequency": frequency, "billFrequencyInterval": interval}
    assert served(p.standing_charge_lines({"id": "plan1"}, template, period, bill_index=1)) == [
        (*following, D(30))]
    assert served(p.standing_charge_lines({"id": "plan1"}, template, period, bill_index=0)) == [
        (*own, D(30)), (*following, D(30))]


@pytest.mark.parametrize("frequency", ["AD_HOC", "MIXED", None])
def test_a_charge_in_advance_without_a_next_period_is_billed_in_arrears(frequency):
    template = {**TEMPLATE, "billFrequency": frequency}
    assert served(p.standing_charge_lines({"id": "plan1"}, template, JAN, bill_index=1)) == [
        ("2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z", D(30))]


def test_a_standing_charge_line_shows_its_plan_product_and_period():
    template = {**TEMPLATE, "billFrequency": "MONTHLY", "standingChargeBillInAdvance": False,
                "standingChargeDescription": "Platform fee"}
    [line] = p.standing_charge_lines({"id": "plan1", "standingChargeAccountingProductId": "acc"}, template, JAN)
    assert {k: line[k] for k in ("lineItemType", "description", "subtotal", "convertedSubtotal", "quantity", "units",
                                 "averageUnitPrice", "currency", "conversionRate", "productId", "planId",
                                 "accountingProductId", "servicePeriodStartDate", "servicePeriodEndDate")} == {
        "lineItemType": "STANDING_CHARGE", "description": "Platform fee", "subtotal": D(30), "convertedSubtotal": D(30),
        "quantity": D(1), "units": D(1), "averageUnitPrice": D(30), "currency": "USD", "conversionRate": D(1),
        "productId": "P", "planId": "plan1", "accountingProductId": "acc",
        "servicePeriodStartDate": "2024-01-01T00:00:00.000Z", "servicePeriodEndDate": "2024-02-01T00:00:00.000Z"}


# -- minimum spend -------------------------------------------------------------------------------

def test_a_minimum_spend_in_advance_charges_the_next_period_and_refunds_what_usage_covered():
    template = {"id": "t1", "productId": "P", "billFrequency": "MONTHLY", "minimumSpend": 100,
                "minimumSpendBillInAdvance": True, "minimumSpendDescription": "Floor"}
    lines = p.minimum_spend_lines({"id": "plan1"}, template, D(40), JAN, bill_index=1)
    assert [(line["lineItemType"], line["description"], *served([line])[0]) for line in lines] == [
        ("MINIMUM_SPEND", "Floor", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z", D(100)),
        ("MINIMUM_SPEND_REFUND", "Floor refund", "2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z", D(-40))]


@pytest.mark.parametrize("usage_total, expected", [
    ("99.99", [D("0.01")]),     # a cent short
    ("100", []),                # exactly the minimum
    ("100.01", []),
])
def test_a_minimum_spend_in_arrears_tops_up_below_the_minimum_only(usage_total, expected):
    template = {"id": "t1", "productId": "P", "billFrequency": "MONTHLY", "minimumSpend": 100}
    lines = p.minimum_spend_lines({"id": "plan1"}, template, D(usage_total), JAN)
    assert [line["subtotal"] for line in lines] == expected
    assert all(line["description"] == "Minimum spend" and line["planId"] == "plan1" for line in lines)


# -- money ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, amount, rounded", [
    ("UP", "1.001", "1.01"), ("DOWN", "1.009", "1.00"), ("CEILING", "-1.009", "-1.00"), ("FLOOR", "-1.001", "-1.01"),
    ("HALF_UP", "1.005", "1.01"), ("HALF_DOWN", "1.005", "1.00"), ("HALF_EVEN", "1.015", "1.02"),
    ("HALF_EVEN", "1.025", "1.02"), ("UNNECESSARY", "1.0049", "1.0049"), ("SOMETHING", "1.005", "1.01"),
])
def test_each_rounding_mode_rounds_as_its_name_says(mode, amount, rounded):
    assert str(p.Money("USD", 2, mode).round(D(amount))) == rounded


def test_a_currency_without_an_entity_has_two_places_half_up():
    assert p.Money.of(None) == p.Money("USD", 2, "HALF_UP")
    assert p.Money.of("EUR", {"maxDecimalPlaces": 0}) == p.Money("EUR", 0, "HALF_UP")
    assert str(p.Money.of("JPY", {"maxDecimalPlaces": 0, "roundingMode": "DOWN"}).round(D("2.9"))) == "2"


# -- bills: files and the data explorer -----------------------------------------------------------

STATEMENT_BILL = {"id": "b-1", "accountId": "a-1", "accountCode": "acme", "billDate": "2024-10-01",
                  "dueDate": "2024-10-31", "startDate": "2024-09-01", "endDate": "2024-10-01",
                  "billingFrequency": "MONTHLY", "currency": "GBP", "status": "APPROVED", "locked": True,
                  "billTotal": 2.5, "externalInvoiceReference": "not in the header"}


def test_a_json_statement_is_compact_with_its_keys_sorted():
    items = [{"subtotal": 2.5, "id": "li-1"}]
    shown = bills.json_statement({**STATEMENT_BILL, "startDate": "2024-09-01"}, items, "2024-10-02T00:00:00.000Z")
    assert shown == (
        b'{"bill":{"accountCode":"acme","accountId":"a-1","billDate":"2024-10-01","billTotal":2.5,'
        b'"billingFrequency":"MONTHLY","currency":"GBP","dueDate":"2024-10-31","endDate":"2024-10-01","id":"b-1",'
        b'"locked":true,"startDate":"2024-09-01","status":"APPROVED"},"generatedAt":"2024-10-02T00:00:00.000Z",'
        b'"lineItems":[{"id":"li-1","subtotal":2.5}],"total":2.5}')


BILL = {"id": "b-1", "accountId": "a-1", "accountCode": "acme", "billDate": "2024-10-01", "dueDate": "2024-10-31",
        "currency": "GBP", "status": "PENDING", "locked": False, "billingFrequency": "MONTHLY",
        "startDate": "2024-09-01", "endDate": "2024-10-01", "billTotal": 3}
ITEM = {"id": "li-1", "lineItemType": "USAGE", "description": "Storage", "productName": "Disk", "quantity": 2,
        "unit": "GB", "averageUnitPrice": 1.5, "subtotal": 3}


def test_a_xero_bills_csv_row_reads_as_an_invoice_line():
    shown = bills.bills_csv([({**BILL, "sequentialInvoiceNumber": "INV-7"}, [ITEM])], "XERO")
    assert shown == (b"ContactName,InvoiceNumber,InvoiceDate,DueDate,Description,Quantity,UnitAmount,LineAmount,"
                     b"Currency\r\nacme,INV-7,2024-10-01,2024-10-31,Storage,2,1.5,3,GBP\r\n")
    bare = bills.bills_csv([({"id": "b-2", "accountId": "a-2", "currency": "EUR"}, [{**ITEM, "currency": "USD"}])],
                           "XERO")
    assert bare.split(b"\r\n")[1] == b"a-2,b-2,,,Storage,2,1.5,3,USD"


def test_a_standard_bills_csv_row_holds_the_bill_and_the_line_item():
    shown = bills.bills_csv([(BILL, [ITEM])], "STANDARD")
    assert shown == (
        b"billId,accountId,accountCode,billDate,dueDate,startDate,endDate,externalInvoiceDate,"
        b"externalInvoiceReference,billingFrequency,status,locked,currency,billTotal,lineItemId,lineItemType,"
        b"description,productName,quantity,unit,averageUnitPrice,subtotal\r\n"
        b"b-1,a-1,acme,2024-10-01,2024-10-31,2024-09-01,2024-10-01,,,MONTHLY,PENDING,false,GBP,3,li-1,USAGE,"
        b"Storage,Disk,2,GB,1.5,3\r\n")


def test_an_explorer_row_shows_the_period_by_iso_week_and_every_measure():
    item = {"servicePeriodStartDate": "2024-12-30T00:00:00.000Z", "servicePeriodEndDate": "2025-01-30T00:00:00.000Z",
            "quantity": 3, "units": 3, "subtotal": "7.5", "convertedSubtotal": 7.5, "conversionRate": 1,
            "averageUnitPrice": 2.5}
    row = bills.explorer_row({**BILL, "timezone": "UTC", "locked": True}, item, {"accountId": "a-1"})
    assert row == {
        "billDetails": {"billDate": "2024-10-01", "billingFrequency": "MONTHLY", "dueDate": "2024-10-31",
                        "endDate": "2024-10-01", "startDate": "2024-09-01", "status": "PENDING", "timezone": "UTC",
                        "billCurrency": "GBP", "locked": "true", "servicePeriodStartDate": "2024-12-30T00:00:00.000Z",
                        "year": 2024, "yearMonth": "2024-12", "month": "12", "day": 30, "week": "2025-W01",
                        "servicePeriodEndDate": "2025-01-30T00:00:00.000Z"},
        "dimensions": {"accountId": "a-1"},
        "measures": {"quantity": 3.0, "units": 3.0, "subtotal": 7.5, "convertedSubtotal": 7.5, "conversionRate": 1.0}}


def test_an_explorer_row_without_a_service_period_has_no_period_details():
    row = bills.explorer_row({"id": "b-1"}, {}, {})
    assert row == {"billDetails": {"locked": "false"}, "dimensions": {}, "measures": {}}


def test_explorer_dimensions_name_the_bill_and_the_line_item():
    item = {**ITEM, "commitmentId": "c1", "childAccountId": "a-9", "currency": "USD"}
    shown = bills.explorer_dimensions({**BILL, "externalInvoiceReference": "X-1"}, item, {"name": "Acme Ltd"})
    assert shown == {"account": "acme", "accountId": "a-1", "accountName": "Acme Ltd", "billId": "b-1",
                     "billLineItemId": "li-1", "childAccountId": "a-9", "commitmentId": "c1",
                     "convertedSubtotalUnit": "GBP", "description": "Storage", "externalInvoiceReference": "X-1",
                     "lineItemType": "USAGE", "productName": "Disk", "quantityUnit": "GB", "subtotalUnit": "USD"}
    assert bills.explorer_dimensions({"id": "b-2", "currency": "EUR"}, {}, None) == {
        "billId": "b-2", "convertedSubtotalUnit": "EUR", "subtotalUnit": "EUR"}


def test_a_line_item_is_completed_from_the_bill():
    bill = {"currency": "GBP", "startDateTimeUTC": "2024-09-01T00:00:00.000Z",
            "endDateTimeUTC": "2024-10-01T00:00:00.000Z"}
    assert bills.complete_line_item({"lineItemType": "MINIMUM_SPEND", "subtotal": "7.5", "quantity": 3}, bill) == {
        "lineItemType": "MINIMUM_SPEND", "description": "Minimum spend", "currency": "GBP", "unit": "unit",
        "servicePeriodStartDate": "2024-09-01T00:00:00.000Z", "servicePeriodEndDate": "2024-10-01T00:00:00.000Z",
        "subtotal": 7.5, "quantity": 3, "units": 3, "averageUnitPrice": 2.5, "conversionRate": 1,
        "convertedSubtotal": 7.5}
    converted = bills.complete_line_item({"subtotal": 10, "quantity": 0, "conversionRate": "1.5"}, bill)
    # no units: no average; 10 * 1.5 = 15 converted
    assert (converted["description"], converted["averageUnitPrice"], converted["convertedSubtotal"]) == (
        "Usage", 0, 15)


@pytest.mark.parametrize("end, refused_with", [
    ("2024-10-02T00:00:00Z", None),                                  # 31 days exactly
    ("2024-10-02T00:00:00.001Z", "endDate: a download covers at most 31 days"),
    ("2024-09-01T00:00:00.001Z", None),                              # the shortest range
    ("2024-08-31T23:59:59Z", "endDate: must be later than startDate"),
])
def test_a_download_range_on_both_sides_of_its_limits(end, refused_with):
    if refused_with is None:
        assert bills.download_range("2024-09-01T00:00:00Z", end, "startDate", "endDate")[1] == bills.parse_instant(
            end, "x")
    else:
        error = refused(bills.download_range, "2024-09-01T00:00:00Z", end, "startDate", "endDate")
        assert error.message == refused_with
    error = refused(bills.download_range, "2024-09-01T00:00:00Z", None, "from", "to")
    assert (error.status, error.message) == (400, "to: required with from")


# -- aggregations --------------------------------------------------------------------------------

def test_a_default_value_that_is_not_a_number_is_named_in_the_400():
    error = refused(agg.base_value, {"defaultValue": "lots"}, None)
    assert (error.status, error.message) == (400, "defaultValue: 'lots' is not a number")
    error = refused(agg.units_of, {"defaultValue": "lots"}, None)
    assert error.message == "defaultValue: 'lots' is not a number"


def test_the_right_side_of_and_or_is_not_evaluated_when_the_left_decides():
    # 9e999999 * 9e999999 is beyond what a Decimal holds: evaluating it would fail
    for text in ("1 > 2 AND 9e999999 * 9e999999 > 0", "1 < 2 OR 9e999999 * 9e999999 > 0"):
        assert agg.compound(text).evaluate({}) is None


@pytest.mark.parametrize("text", ["9e999999 * 9e999999", "9e999999 + 9e999999", "9e999999 * 10"])
def test_a_compound_beyond_what_a_decimal_holds_is_no_number(text):
    # It was a decimal.Overflow out of evaluate: a 500 when a bill or usage read the compound.
    assert agg.compound(text).evaluate({}) is None


@pytest.mark.parametrize("value, segment", [
    (D("10.0"), "10"), (D("1E+1"), "10"), (D("0.50"), "0.5"), ("eu", "eu"), (None, ""),
])
def test_a_segment_value_is_written_as_plain_text(value, segment):
    aggregation = {"segmentedFields": ["size"]}

    class M:
        values = {"size": value} if value is not None else {}
    assert agg.segment_of(aggregation, M()) == {"size": segment}


def test_a_csv_statement_has_a_row_per_line_item_in_the_statement_columns():
    items = [{**ITEM, "meterId": "m-1", "currency": "GBP", "units": 2,
              "servicePeriodStartDate": "2024-09-01T00:00:00.000Z", "servicePeriodEndDate": "2024-10-01T00:00:00.000Z",
              "productId": "p-1", "ignored": "x"}]
    assert bills.csv_statement(BILL, items) == (
        b"billId,lineItemId,lineItemType,description,productId,productName,meterId,servicePeriodStartDate,"
        b"servicePeriodEndDate,quantity,unit,units,averageUnitPrice,subtotal,currency\r\n"
        b"b-1,li-1,USAGE,Storage,p-1,Disk,m-1,2024-09-01T00:00:00.000Z,2024-10-01T00:00:00.000Z,2,GB,2,1.5,3,GBP\r\n")
    assert bills.csv_statement(BILL, []).count(b"\r\n") == 1      # the header only


def test_what_a_line_item_states_is_kept_over_what_is_worked_out():
    bill = {"currency": "GBP", "startDateTimeUTC": "s", "endDateTimeUTC": "e"}
    item = bills.complete_line_item({"subtotal": 10, "quantity": 4, "units": 8, "averageUnitPrice": 3,
                                     "convertedSubtotal": 12, "currency": "USD", "description": "Mine",
                                     "unit": "GB"}, bill)
    assert (item["units"], item["averageUnitPrice"], item["convertedSubtotal"], item["currency"],
            item["description"], item["unit"], item["lineItemType"]) == (8, 3, 12, "USD", "Mine", "GB", "USAGE")
    assert bills.complete_line_item({}, bill)["subtotal"] == 0 and bills.complete_line_item({}, bill)["quantity"] == 1
    error = refused(bills.complete_line_item, {"units": "many"}, bill)
    assert (error.status, error.message) == (400, "units: 'many' is not a number")
    error = refused(bills.complete_line_item, {"conversionRate": "Infinity"}, bill)
    assert error.message == "conversionRate: 'Infinity' is not a number"


def test_a_date_that_cannot_be_read_is_a_400_with_an_example():
    error = refused(bills.parse_date, "30/09/2024", "lastDateInBillingPeriod")
    assert (error.status, error.message) == (
        400, "lastDateInBillingPeriod: '30/09/2024' is not a date like 2024-09-30")
    assert bills.parse_date("2024-09-30", "x") == datetime(2024, 9, 30).date()
    assert bills.last_date_in_period({"id": "b"}) is None


def test_the_explorer_limit_is_the_one_asked_for_or_2000():
    query = {"startDate": "2024-09-01T00:00:00Z", "endDate": "2024-09-01T00:00:00.001Z", "limit": 5}
    since, until, dimensions, limit = bills.check_explorer_query(query)
    assert (since, until, dimensions, limit) == (at(2024, 9, 1), at(2024, 9, 1, micro=1000), [], 5)
    assert bills.check_explorer_query({**query, "limit": None})[3] == 2000


def test_money_totals_count_a_line_without_a_subtotal_as_zero_and_keep_signs():
    assert bills.total([{"subtotal": "-0.5"}, {}, {"subtotal": 2}]) == D("1.5")
    assert bills.total([]) == D(0)
    assert bills.number(D("-0.5")) == -0.5 and bills.number(D("-3")) == -3


# -- usage query rows ------------------------------------------------------------------------------

JAN_1_2026 = 1767225600000      # 2026-01-01T00:00:00Z in epoch milliseconds
HOUR_MS = 3_600_000
USAGE_METERS = {
    "m-disk": {"id": "m-disk", "code": "disk", "dataFields": [{"category": "MEASURE", "code": "gb"},
                                                              {"category": "WHO", "code": "region"}]},
    "m-bill": {"id": "m-bill", "code": "bill", "dataFields": [{"category": "INCOME", "code": "paid"},
                                                              {"category": "COST", "code": "cost"}],
               "derivedFields": [{"category": "MEASURE", "code": "net"}, {"category": "MEASURE"}]},
}


def measured(ts_hours: float, account: str, meter: str = "disk", **values):
    from mockserver.domain.measurements import Measurement
    return Measurement(None, meter, account, JAN_1_2026 + int(ts_hours * HOUR_MS), None, values)


def usage_reader(streams):
    def read(meter_id, start, end, accounts):
        return [x for x in streams.get(meter_id, ())
                if start <= x.ts < end and (accounts is None or x.account in accounts)]
    return read


def usage_query(body, end_hours=48):
    from mockserver.domain import usage_query as uq
    return uq.check_query(body, USAGE_METERS, {"a-acme": {}, "a-beta": {}}, start_ms=JAN_1_2026,
                          end_ms=JAN_1_2026 + end_hours * HOUR_MS)


def test_income_cost_and_derived_number_fields_are_measures():
    from mockserver.domain import usage_query as uq
    for code in ("paid", "cost", "net"):
        q = usage_query({"aggregations": [{"meterId": "m-bill", "fieldCode": code, "fieldType": "MEASURE",
                                           "function": "SUM"}]})
        assert [c.name for c in q.columns] == [f"{code}_sum"]
        error = refused(uq.check_query, {"aggregations": [{"meterId": "m-bill", "fieldCode": code,
                                                          "fieldType": "DIMENSION", "function": "COUNT"}]},
                        USAGE_METERS, {}, start_ms=0, end_ms=1)
        assert error.message == (f"aggregations[0].fieldType: '{code}' of Meter 'bill' is a MEASURE field, "
                                 "not DIMENSION")


def test_a_group_without_values_for_a_column_shows_zero_for_counts_and_null_otherwise():
    from mockserver.domain import usage_query as uq
    q = usage_query({"aggregations": [
        {"meterId": "m-disk", "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"},
        {"meterId": "m-disk", "fieldCode": "region", "fieldType": "DIMENSION", "function": "UNIQUE"},
        {"meterId": "m-bill", "fieldCode": "paid", "fieldType": "MEASURE", "function": "COUNT"},
        {"meterId": "m-bill", "fieldCode": "cost", "fieldType": "MEASURE", "function": "MAX"}],
        "groups": [{"groupType": "ACCOUNT"}]})
    streams = {"m-disk": [measured(1, "acme", gb=D("2.5"), region="eu"), measured(2, "acme", gb=D(1), region="eu")],
               "m-bill": [measured(3, "beta", meter="bill", paid=D(4), cost=D(7)),
                          measured(4, "beta", meter="bill", paid=D(5))]}
    rows, more = uq.aggregated_rows(q, usage_reader(streams), {"acme": "a-acme", "beta": "a-beta"}, limit=None)
    assert more is False
    assert rows == [
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-03T00:00:00.000Z", "accountId": "a-acme",
         "gb_sum": 3.5, "region_unique": 1, "paid_count": 0, "cost_max": None},
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-03T00:00:00.000Z", "accountId": "a-beta",
         "gb_sum": None, "region_unique": 0, "paid_count": 2, "cost_max": 7}]


def test_the_limit_counts_groups_and_says_when_there_were_more():
    from mockserver.domain import usage_query as uq
    q = usage_query({"aggregations": [{"meterId": "m-disk", "fieldCode": "gb", "fieldType": "MEASURE",
                                       "function": "SUM"}], "groups": [{"groupType": "TIME", "frequency": "DAY"}]})
    streams = {"m-disk": [measured(1, "acme", gb=D(1)), measured(25, "acme", gb=D(2))]}
    read = usage_reader(streams)
    for limit, days, more in ((1, ["2026-01-02"], True), (2, ["2026-01-02", "2026-01-01"], False),
                              (3, ["2026-01-02", "2026-01-01"], False)):
        rows, found_more = uq.aggregated_rows(q, read, {}, limit=limit)
        assert ([r["timeGroup"][:10] for r in rows], found_more) == (days, more)
    rows, _ = uq.aggregated_rows(q, read, {}, limit=None, newest=False)
    assert [(r["timeGroup"], r["startDate"], r["endDate"], r["gb_sum"]) for r in rows] == [
        ("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", 1),
        ("2026-01-02T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z", 2)]


def test_raw_rows_stop_at_the_limit_and_say_whether_there_were_more():
    from mockserver.domain import usage_query as uq
    q = usage_query({"meterIds": ["m-disk"]})
    read = usage_reader({"m-disk": [measured(1, "acme", gb=D(1)), measured(2, "beta", gb=D("0.25"))]})
    rows, more = uq.raw_rows(q, read, USAGE_METERS, {"acme": "a-acme"}, limit=2)
    assert more is False
    assert rows == [{"gb": 0.25, "ts": "2026-01-01T02:00:00.000Z", "accountId": None, "accountCode": "beta",
                     "meterId": "m-disk", "meterCode": "disk"},
                    {"gb": 1, "ts": "2026-01-01T01:00:00.000Z", "accountId": "a-acme", "accountCode": "acme",
                     "meterId": "m-disk", "meterCode": "disk"}]
    rows, more = uq.raw_rows(q, read, USAGE_METERS, {}, limit=1)
    assert (len(rows), more) == (1, True)


def test_an_aggregation_that_is_not_segmented_has_one_value_over_the_measurements_with_the_field():
    class M:
        def __init__(self, **values):
            self.values = values
    aggregation = {"targetField": "gb", "aggregation": "COUNT"}
    assert agg.values_by_segment(aggregation, [M(gb=D(1)), M(region="eu"), M(gb=D(3))]) == {None: D(2)}
    assert agg.values_by_segment({**aggregation, "aggregation": "MEAN"}, [M(gb=D(1)), M(), M(gb=D(4))]) == {
        None: D("2.5")}
    assert agg.values_by_segment({**aggregation, "aggregation": "SUM"}, [M(region="eu")]) == {None: None}


def test_a_pricing_without_a_positive_minimum_spend_adds_nothing_to_the_plans():
    template = {"id": "t1", "productId": "P", "billFrequency": "MONTHLY", "minimumSpend": 100}
    for minimum in (0, -5, None):
        lines = p.minimum_spend_lines({"id": "plan1"}, template, D(60), JAN,
                                      pricing_totals=[({"id": "pr1", "minimumSpend": minimum}, D(10))])
        assert [(line["subtotal"], line.get("pricingId")) for line in lines] == [(D(40), None)]   # 100 - 60
    lines = p.minimum_spend_lines({"id": "plan1"}, template, D(60), JAN,
                                  pricing_totals=[({"id": "pr1", "minimumSpend": 30}, D(10))])
    # the pricing's 30 tops up 20; the plan counts 60 + 20 = 80 and tops up the other 20
    assert [(line["subtotal"], line.get("pricingId")) for line in lines] == [(D(20), "pr1"), (D(20), None)]


# -- widened: what each field of a line is made from ------------------------------------------------

def test_band_rows_name_each_band_with_its_own_lower_limit_and_id():
    bands = [{"id": "pb1", "lowerLimit": 0, "fixedPrice": 10, "unitPrice": 2},
             {"id": "pb2", "lowerLimit": 100, "fixedPrice": 5, "unitPrice": 1}]
    # 150 tiered: band 1 holds 100 (100 * 2 + 10), band 2 holds 50 (50 * 1 + 5)
    assert p.band_usage(D(150), bands, True) == [
        {"pricingBandId": "pb1", "lowerLimit": D(0), "fixedPrice": D(10), "unitPrice": D(2), "bandUnits": D(100),
         "bandQuantity": D(100), "unitSubtotal": D(200), "bandSubtotal": D(210)},
        {"pricingBandId": "pb2", "lowerLimit": D(100), "fixedPrice": D(5), "unitPrice": D(1), "bandUnits": D(50),
         "bandQuantity": D(50), "unitSubtotal": D(50), "bandSubtotal": D(55)}]


def test_a_usage_line_shows_the_exact_average_and_what_it_was_priced_by():
    priced = pricing(pricingBands=[{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.015}],
                     compoundAggregationId="ca1", accountingProductId="acc", aggregationId="ag1")
    [line] = p.usage_lines([p.PricedUsage(priced, {"region": "eu"}, D(3), product_id="P", meter_id="m1",
                                          unit="GB")], JAN)
    # 3 * 0.015 = 0.045: the subtotal rounds to 0.05, the average stays exact
    assert {k: line[k] for k in ("subtotal", "averageUnitPrice", "unit", "compoundAggregationId",
                                 "accountingProductId", "aggregationId", "meterId", "segment")} == {
        "subtotal": D("0.05"), "averageUnitPrice": D("0.015"), "unit": "GB", "compoundAggregationId": "ca1",
        "accountingProductId": "acc", "aggregationId": "ag1", "meterId": "m1", "segment": {"region": "eu"}}
    [plain] = usage("3")
    assert plain["unit"] == "" and "segment" not in plain and "additional" not in plain
    assert "compoundAggregationId" not in plain and "accountingProductId" not in plain


def test_credits_are_capped_per_product_and_bill_in_line_order():
    def line(product, line_type, amount, credit_type=None):
        found = {"lineItemType": line_type, "productId": product, "subtotal": D(amount)}
        if credit_type:
            found["additional"] = {"pricingType": credit_type}
        return found
    lines = [line("P", "USAGE", "30"), line("P", "USAGE", "20"), line("Q", "USAGE", "80"), line("R", "USAGE", "0.5"),
             line("P", "MINIMUM_SPEND_REFUND", "-5"),
             line("P", "USAGE_CREDIT", "-70", "PRODUCT_CREDIT"),    # P's 50
             line("P", "USAGE_CREDIT", "-10", "PRODUCT_CREDIT"),    # P used up: 0
             line("R", "USAGE_CREDIT", "-1", "PRODUCT_CREDIT"),     # R's 0.5
             line("Q", "USAGE_CREDIT", "-30", "PRODUCT_CREDIT"),    # 30 of Q's 80
             line(None, "USAGE_CREDIT", "-100", "GLOBAL_CREDIT"),   # 130.5 - 80.5 used = 50
             line("Q", "USAGE_CREDIT", "-5", "PRODUCT_CREDIT")]     # nothing left on the bill
    assert [x["subtotal"] for x in p.cap_credits(lines)] == [
        D(30), D(20), D(80), D("0.5"), D(-5), D(-50), D(0), D("-0.5"), D(-30), D(-50), D(0)]


@pytest.mark.parametrize("bill_index, charged", [(0, False), (1, True), (2, False), (3, False), (4, True)])
def test_a_standing_charge_every_third_bill_from_the_second(bill_index, charged):
    template = {"productId": "P", "standingCharge": 30, "standingChargeInterval": 3, "standingChargeOffset": 1,
                "currency": "EUR"}
    lines = p.standing_charge_lines({"id": "plan1"}, template, JAN, bill_index=bill_index)
    assert [(x["subtotal"], x["currency"], x["description"], x["unit"]) for x in lines] == (
        [(D(30), "EUR", "Standing charge", "")] if charged else [])


def test_the_plans_standing_charge_description_wins_over_the_templates():
    template = {"productId": "P", "standingCharge": 30, "standingChargeDescription": "Template's"}
    assert p.standing_charge_lines({"id": "plan1", "standingChargeDescription": "Plan's"}, template, JAN)[0][
        "description"] == "Plan's"


TEMPLATE_MIN = {"id": "t1", "productId": "P", "billFrequency": "MONTHLY", "currency": "EUR"}


def test_pricing_minimums_each_top_up_their_own_pricing():
    plan = {"id": "plan1"}
    totals = [({"id": "pr1", "minimumSpend": 1, "minimumSpendDescription": "Floor 1", "accountingProductId": "a1"},
               D("0.25")),
              ({"id": "pr2", "planId": "plan2", "minimumSpend": 30}, D(10))]
    lines = p.minimum_spend_lines(plan, TEMPLATE_MIN, D("10.25"), JAN, pricing_totals=totals)
    assert [(x["description"], x["subtotal"], x["currency"], x["planId"], x["pricingId"], x["productId"],
             x.get("accountingProductId")) for x in lines] == [
        ("Floor 1", D("0.75"), "EUR", "plan1", "pr1", "P", "a1"),
        ("Minimum spend", D(20), "EUR", "plan2", "pr2", "P", None)]


def test_a_plan_minimum_of_one_is_topped_up_and_one_of_zero_charges_nothing_even_in_advance():
    lines = p.minimum_spend_lines({"id": "plan1", "minimumSpend": 1, "minimumSpendDescription": "Plan floor",
                                   "minimumSpendAccountingProductId": "acc"}, TEMPLATE_MIN, D(0), JAN)
    assert [(x["description"], x["subtotal"], x["productId"], x["accountingProductId"]) for x in lines] == [
        ("Plan floor", D(1), "P", "acc")]
    assert p.minimum_spend_lines({"id": "plan1", "minimumSpend": 0, "minimumSpendBillInAdvance": True},
                                 TEMPLATE_MIN, D(0), JAN, bill_index=1) == []


@pytest.mark.parametrize("usage_total, refund", [("0", None), ("1", D(-1)), ("0.5", D("-0.5"))])
def test_a_minimum_in_advance_refunds_only_what_usage_covered(usage_total, refund):
    org = {"minimumSpendBillInAdvance": True}
    lines = p.minimum_spend_lines({"id": "plan1", "minimumSpend": 100}, TEMPLATE_MIN, D(usage_total), JAN,
                                  bill_index=1, org_config=org)
    assert [x["subtotal"] for x in lines if x["lineItemType"] == "MINIMUM_SPEND_REFUND"] == (
        [] if refund is None else [refund])
    assert [x["subtotal"] for x in lines if x["lineItemType"] == "MINIMUM_SPEND"] == [D(100)]
    per_pricing = p.minimum_spend_lines({"id": "plan1"}, TEMPLATE_MIN, D(0), JAN, bill_index=1, pricing_totals=[
        ({"id": "pr1", "minimumSpend": 10, "minimumSpendBillInAdvance": True}, D(0))])
    assert [x["lineItemType"] for x in per_pricing] == ["MINIMUM_SPEND"]


def test_a_drawdown_follows_a_draw_line_to_the_charge_it_names():
    service = {"servicePeriodStartDate": "2024-01-01T00:00:00Z", "servicePeriodEndDate": "2024-02-01T00:00:00Z"}
    charges = [{"id": "l1", "lineItemType": "USAGE", "productId": "P", "subtotal": D(100), **service},
               {"id": "l2", "lineItemType": "USAGE", "productId": "P", "subtotal": D(100), **service},
               {"id": "d1", "lineItemType": "COMMITMENT_CONSUMED", "productId": "P", "subtotal": D(-100),
                "referencedLineItemId": "l2", **service},
               {"lineItemType": "USAGE", "productId": "P", "subtotal": D("0.5"), **service}]   # no id yet
    lines, drawn = p.balance_lines([{**BALANCE, "amount": 1000}], charges, JAN)
    assert charges[3]["id"]                                          # given one in place
    assert [(x["referencedLineItemId"], x["subtotal"]) for x in lines] == [("l1", D(-100)), (charges[3]["id"],
                                                                                             D("-0.5"))]
    assert drawn == {"b1": D("100.5")}


def test_overage_usage_draws_from_a_balance_as_usage():
    charges = usage("300")
    p.commitment_lines({**COMMITMENT, "amountSpent": 100, "separateOverageUsage": True}, charges, JAN)
    lines, drawn = p.balance_lines([{**BALANCE, "lineItemTypes": ["USAGE"], "amount": 1000}], charges, JAN)
    assert drawn == {"b1": D(300)}


def test_a_balance_draws_only_charges_in_its_currency_or_without_one():
    service = {"servicePeriodStartDate": "2024-01-01T00:00:00Z", "servicePeriodEndDate": "2024-02-01T00:00:00Z"}
    charges = [{"id": "usd", "lineItemType": "USAGE", "subtotal": D(10), "currency": "USD", **service},
               {"id": "none", "lineItemType": "USAGE", "subtotal": D(3), **service}]
    lines, drawn = p.balance_lines([{**BALANCE, "currency": "JPY", "overageSurchargePercent": 10}], charges, JAN)
    assert drawn == {"b1": D(3)}
    assert [(x["referencedLineItemId"], x["currency"]) for x in lines] == [("none", "JPY")]


def test_half_a_unit_is_drawn_and_surcharged():
    quantity = "0.5"
    lines, drawn = p.balance_lines([{**BALANCE, "amount": 100}], usage(quantity), JAN)
    assert [x["subtotal"] for x in lines] == [D("-0.5")]
    lines, _ = p.balance_lines([{**BALANCE, "amount": 0, "overageSurchargePercent": 10}], usage(quantity), JAN)
    assert [x["subtotal"] for x in lines] == [D("0.05")]
    lines, spent = p.commitment_lines({**COMMITMENT, "amount": D("0.5")}, usage("1"), JAN)
    assert [x["subtotal"] for x in lines] == [D("-0.5")] and spent == D(1)
    lines, _ = p.commitment_lines({**COMMITMENT, "amount": D("0.5"), "overageSurchargePercent": 10}, usage("1"), JAN)
    assert [x["subtotal"] for x in lines] == [D("-0.5"), D("0.05")]


def test_a_commitment_without_money_given_rounds_in_its_own_currency():
    charges = p.usage_lines([p.PricedUsage(pricing(), None, D(30), product_id="P")], JAN, money=p.Money("JPY", 0))
    lines, _ = p.commitment_lines({**COMMITMENT, "currency": "JPY", "amount": 0, "overageSurchargePercent": 15},
                                  charges, JAN)
    assert [(x["subtotal"], x["currency"]) for x in lines] == [(D("4.50"), "JPY")]    # 30 * 15% = 4.5 to 2 places
    lines, _ = p.commitment_lines({**COMMITMENT, "currency": "JPY", "amount": 0, "overageSurchargePercent": 15},
                                  charges, JAN, money=p.Money("JPY", 0))
    assert [(x["subtotal"], x["currency"]) for x in lines] == [(D(5), "JPY")]          # 4.5 half up to 0 places


OVERAGE_TIERS = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1.5}, {"lowerLimit": 250, "fixedPrice": 0,
                                                                        "unitPrice": 1}]


def test_overage_re_rating_continues_through_the_tiers_from_the_units_covered():
    priced = pricing(overagePricingBands=OVERAGE_TIERS)
    charges = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)
    lines, _ = p.commitment_lines({**COMMITMENT, "separateOverageUsage": True}, charges, JAN, pricings={"pr1": priced})
    moved = only(lines, "OVERAGE_USAGE")
    # units 100..300: 150 in the first tier at 1.5 = 225, 50 in the second at 1 = 50
    assert moved["subtotal"] == D(275)
    assert [(r["lowerLimit"], r["bandUnits"], r["bandSubtotal"]) for r in moved["usagePerPricingBand"]] == [
        (D(0), D(150), D(225)), (D(250), D(50), D(50))]
    whole = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)
    p.commitment_lines({**COMMITMENT, "amountSpent": 100, "separateOverageUsage": True}, whole, JAN,
                       pricings={"pr1": priced})
    # 250 * 1.5 + 50 * 1 = 425
    assert whole[0]["subtotal"] == D(425)
    assert [(r["lowerLimit"], r["bandUnits"], r["bandSubtotal"]) for r in whole[0]["usagePerPricingBand"]] == [
        (D(0), D(250), D(375)), (D(250), D(50), D(50))]


def test_an_overage_line_of_a_charge_without_a_description_is_overage_usage():
    charge = {"id": "l1", "lineItemType": "USAGE", "subtotal": D(10), "quantity": D(10),
              "servicePeriodStartDate": "2024-01-01T00:00:00Z", "servicePeriodEndDate": "2024-02-01T00:00:00Z"}
    p.commitment_lines({**COMMITMENT, "amountSpent": 100, "separateOverageUsage": True}, [charge], JAN)
    assert charge["description"] == "Overage usage"


FEE = {"date": "2024-02-01T00:00:00Z", "amount": 1, "servicePeriodStartDate": "2024-01-01T00:00:00Z",
       "servicePeriodEndDate": "2024-02-01T00:00:00Z"}


def test_a_fee_is_on_the_bill_whose_period_holds_its_date_and_names_the_commitment():
    commitment = {**COMMITMENT, "feeDates": [FEE, {**FEE, "date": "2024-01-31T23:59:59.999Z", "amount": 2}],
                  "accountingProductId": "acc"}
    lines, _ = p.commitment_lines(commitment, [], JAN)
    assert [(x["lineItemType"], x["description"], x["subtotal"], x["commitmentId"], x["accountingProductId"])
            for x in lines] == [("COMMITMENT_FEE", "Commitment fee", D(2), "c1", "acc")]
    feb = (at(2024, 2, 1), at(2024, 3, 1))
    named = {**commitment, "commitmentFeeDescription": "Prepayment", "feesAccountingProductId": "fees"}
    assert [(x["description"], x["subtotal"], x["accountingProductId"]) for x in p.commitment_lines(named, [], feb)[0]
            ] == [("Prepayment", D(1), "fees")]


def test_plan_billed_fees_need_a_bill_frequency_and_something_outstanding():
    billed = {**COMMITMENT, "amount": 1200, "billingPlanId": "plan1"}
    assert p.commitment_fees(billed) == []
    assert p.commitment_fees({**billed, "amountPrePaid": 1200}, ("MONTHLY", 1)) == []
    assert [a for _, a, _ in p.commitment_fees({**billed, "amountPrePaid": 1199}, ("MONTHLY", 1))] == [
        D("0.08")] * 11 + [D("0.12")]                     # 1 / 12 = 0.0833 -> 0.08; the last takes 1 - 0.88
    # no interval given is 1; 2 is every other month: 6 cycles of 200
    assert len(p.commitment_fees(billed, ("MONTHLY", None))) == 12
    assert [a for _, a, _ in p.commitment_fees(billed, ("MONTHLY", 2))] == [D(200)] * 6
    org = {"commitmentFeeBillInAdvance": True}
    assert p.commitment_fees(billed, ("MONTHLY", 1), org)[0][0] == at(2024, 1, 1)


def test_a_first_bill_amount_takes_the_first_of_two_instalments_and_is_the_whole_of_one():
    billed = {**COMMITMENT, "amount": 1200, "billingPlanId": "plan1", "amountFirstBill": 1000,
              "endDate": "2024-03-01"}
    assert [a for _, a, _ in p.commitment_fees(billed, ("MONTHLY", 1))] == [D(1000), D(200)]
    assert [a for _, a, _ in p.commitment_fees({**billed, "endDate": "2024-02-01"}, ("MONTHLY", 1))] == [D(1200)]
