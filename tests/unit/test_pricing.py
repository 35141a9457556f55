"""Pricing maths (mockserver.domain.pricing): every expected amount below is worked out by hand in
the row's comment, never read back from the code."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from mockserver.domain import pricing as p


def at(year, month, day) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


JAN = (at(2024, 1, 1), at(2024, 2, 1))
FEB = (at(2024, 2, 1), at(2024, 3, 1))
MAR = (at(2024, 3, 1), at(2024, 4, 1))
DEC = (at(2024, 12, 1), at(2025, 1, 1))

# band 1: (0, 100] at 2 + fixed 10; band 2: (100, 500] at 1; band 3: above 500 at 0.5 + fixed 25
BANDS = [{"lowerLimit": 100, "fixedPrice": 0, "unitPrice": 1},      # out of order on purpose
         {"lowerLimit": 0, "fixedPrice": 10, "unitPrice": 2},
         {"lowerLimit": 500, "fixedPrice": 25, "unitPrice": 0.5}]


# -- bands -------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity, tiered, volume", [
    ("0", "0", "0"),              # no band holds 0
    ("1", "12", "12"),            # 1*2 + 10 | same band
    ("100", "210", "210"),        # 100*2 + 10 (unit 100 is still band 1) | 100*2 + 10
    ("100.5", "210.5", "100.5"),  # 210 + 0.5*1 | band 2 prices all: 100.5*1 + 0
    ("101", "211", "101"),        # 210 + 1*1 | 101*1
    ("500", "610", "500"),        # 210 + 400*1 | 500*1
    ("501", "635.5", "275.5"),    # 610 + 1*0.5 + 25 | 501*0.5 + 25
    ("1000", "885", "525"),       # 610 + 500*0.5 + 25 | 1000*0.5 + 25
    ("-5", "0", "0"),             # a quantity below zero costs nothing
])
def test_tiered_and_volume_on_both_sides_of_every_boundary(quantity, tiered, volume):
    assert p.band_charge(D(quantity), BANDS, True) == D(tiered)
    assert p.band_charge(D(quantity), BANDS, False) == D(volume)


@pytest.mark.parametrize("quantity, cumulative, expected", [
    ("10", True, "0"),     # units up to the first lower limit are free: clip(10)-clip(0) = 0
    ("15", True, "5"),     # 5 units above 10, at 1
    ("10", False, "0"),    # no band holds 10
    ("15", False, "15"),   # the band holding 15 prices every unit: 15*1
])
def test_a_first_band_above_zero(quantity, cumulative, expected):
    assert p.band_charge(D(quantity), [{"lowerLimit": 10, "fixedPrice": 0, "unitPrice": 1}], cumulative) == D(expected)


@pytest.mark.parametrize("already, quantity, tiered, volume", [
    ("80", "50", "70", "50"),        # band1 20*2 + band2 30*1, no fixed (band 1 entered before) | total 130: band 2, 50*1 + 0
    ("450", "100", "100", "75"),     # band2 50*1 + band3 50*0.5 + 25 | total 550: band 3, 100*0.5 + 25 (entered now)
    ("600", "100", "50", "50"),      # band3 100*0.5, fixed already paid | band 3 already held: 100*0.5
    ("0", "100", "210", "210"),      # nothing before: as without tiersSpanPlan
    ("100", "0", "0", "0"),          # no usage this period
])
def test_tiers_span_the_plan(already, quantity, tiered, volume):
    assert p.band_charge(D(quantity), BANDS, True, already=D(already)) == D(tiered)
    assert p.band_charge(D(quantity), BANDS, False, already=D(already)) == D(volume)


@pytest.mark.parametrize("first, second", [("80", "50"), ("450", "100"), ("99", "402"), ("100", "400.25")])
def test_tiered_periods_add_up_to_their_summed_quantity(first, second):
    whole = p.band_charge(D(first) + D(second), BANDS, True)
    parts = p.band_charge(D(first), BANDS, True) + p.band_charge(D(second), BANDS, True, already=D(first))
    assert parts == whole


def test_float_prices_are_exact():
    # 3 * 0.1 = 0.3 (as floats it would be 0.30000000000000004)
    assert p.band_charge(D(3), [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.1}], True) == D("0.3")


def test_band_breakdown_names_each_band_that_charged():
    rows = p.band_usage(D(150), [dict(b, id=f"band{b['lowerLimit']}") for b in BANDS], True)
    # band 1: 100 units * 2 = 200 + 10 fixed; band 2: 50 units * 1 = 50; band 3 not reached
    assert [(r["pricingBandId"], r["bandUnits"], r["fixedPrice"], r["unitSubtotal"], r["bandSubtotal"]) for r in rows] \
        == [("band0", D(100), D(10), D(200), D(210)), ("band100", D(50), D(0), D(50), D(50))]


# -- money and usage lines -----------------------------------------------------------------------

def pricing(pricing_id="pr1", unit_price=1.0, **fields):
    return {"id": pricing_id, "planId": "plan1", "aggregationId": "agg1", "cumulative": True,
            "pricingBands": [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": unit_price}], **fields}


def usage(quantity, product="P", money=None, **fields):
    return p.usage_lines([p.PricedUsage(pricing(**fields), None, D(quantity), product_id=product)], JAN,
                         money=money)


@pytest.mark.parametrize("unit_price, quantity, money, subtotal", [
    (0.015, "3", p.Money(), "0.05"),                           # 0.045 half-up to 2 places
    (0.015, "3", p.Money("USD", 2, "HALF_EVEN"), "0.04"),      # 0.045 half-even
    (0.015, "3", p.Money("USD", 2, "DOWN"), "0.04"),           # 0.045 truncated
    (0.015, "3", p.Money("USD", 2, "UNNECESSARY"), "0.045"),   # kept exact
    (0.5, "3", p.Money("JPY", 0), "2"),                        # 1.5 half-up to 0 places
    (0.3333, "3", p.Money.of("EUR", {"maxDecimalPlaces": 3, "roundingMode": "CEILING"}), "1.000"),  # 0.9999 up
])
def test_a_line_is_rounded_once_by_its_currency(unit_price, quantity, money, subtotal):
    [line] = usage(quantity, money=money, unit_price=unit_price)
    assert line["subtotal"] == D(subtotal) and line["currency"] == money.currency


def test_rounding_happens_once_per_line_not_per_band():
    bands = [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 0.0045},
             {"lowerLimit": 10, "fixedPrice": 0, "unitPrice": 0.0045}]
    [line] = p.usage_lines([p.PricedUsage(pricing(pricingBands=bands), None, D(20))], JAN)
    # bands 0.045 + 0.045 = 0.09; rounding each band first would give 0.05 + 0.05 = 0.10
    assert line["subtotal"] == D("0.09")
    assert [row["bandSubtotal"] for row in line["usagePerPricingBand"]] == [D("0.045"), D("0.045")]


def test_a_usage_line_carries_its_pricing_and_usage_detail():
    item = p.PricedUsage(pricing(description="API calls", unit_price=0.25), {"region": "eu"}, D(8),
                         product_id="P", meter_id="m1", unit="calls")
    [line] = p.usage_lines([item], JAN)
    # 8 * 0.25 = 2
    assert {k: line[k] for k in ("lineItemType", "description", "quantity", "units", "unit", "subtotal",
                                 "averageUnitPrice", "productId", "planId", "pricingId", "aggregationId",
                                 "meterId", "segment", "servicePeriodStartDate", "servicePeriodEndDate")} == {
        "lineItemType": "USAGE", "description": "API calls", "quantity": D(8), "units": D(8), "unit": "calls",
        "subtotal": D(2), "averageUnitPrice": D("0.25"), "productId": "P", "planId": "plan1", "pricingId": "pr1",
        "aggregationId": "agg1", "meterId": "m1", "segment": {"region": "eu"},
        "servicePeriodStartDate": "2024-01-01T00:00:00.000Z", "servicePeriodEndDate": "2024-02-01T00:00:00.000Z"}


def test_no_usage_makes_no_line():
    assert usage("0") == []


@pytest.mark.parametrize("cumulative, already, expected", [
    (True, "80", "70"),     # tiered continues: band1 20*2 + band2 30*1
    (False, "80", "50"),    # volume: total 130 in band 2: 50*1
])
def test_tiers_span_plan_asks_what_was_billed_before(cumulative, already, expected):
    spanning = pricing(pricingBands=BANDS, cumulative=cumulative, tiersSpanPlan=True)
    resetting = pricing(pricing_id="pr2", pricingBands=BANDS, cumulative=cumulative)
    lines = p.usage_lines([p.PricedUsage(spanning, None, D(50)), p.PricedUsage(resetting, None, D(50))], JAN,
                          already=lambda pr: D(already))
    # the pricing without tiersSpanPlan starts afresh: 50*2 + 10 = 110 (tiered) or 50*2 + 10 = 110 (volume)
    assert [line["subtotal"] for line in lines] == [D(expected), D(110)]


def test_cumulative_left_out_is_volume():
    item = p.PricedUsage({"id": "pr", "pricingBands": BANDS}, None, D(501))
    assert p.usage_lines([item], JAN)[0]["subtotal"] == D("275.5")    # volume: 501*0.5 + 25


# -- credits -----------------------------------------------------------------------------------

@pytest.mark.parametrize("credit_type, credit_product, expected_credit", [
    ("PRODUCT_CREDIT", "P", "-100"),   # capped at P's debits: 100
    ("PRODUCT_CREDIT", "Q", "-80"),    # capped at Q's debits: 80
    ("PRODUCT_CREDIT", "R", "0"),      # R has no debits
    ("GLOBAL_CREDIT", "R", "-150"),    # the whole bill's debits are 180: not capped
])
def test_credits_are_negative_and_capped(credit_type, credit_product, expected_credit):
    lines = usage("100", product="P") + usage("80", product="Q") \
        + usage("150", product=credit_product, type=credit_type)
    assert lines[2]["lineItemType"] == "USAGE_CREDIT" and lines[2]["subtotal"] == D(-150)
    capped = p.cap_credits(lines)
    assert capped[2]["subtotal"] == D(expected_credit)
    assert p.bill_total(capped) == D(180) + D(expected_credit)


def test_a_global_credit_never_makes_the_bill_negative():
    lines = usage("100") + usage("70", type="GLOBAL_CREDIT") + usage("70", type="GLOBAL_CREDIT")
    # 100 - 70 - min(70, 100 - 70 = 30) = 0
    assert p.bill_total(p.cap_credits(lines)) == D(0)


# -- standing charges --------------------------------------------------------------------------

TEMPLATE = {"id": "t1", "productId": "P", "currency": "USD", "standingCharge": 30, "billFrequency": "MONTHLY",
            "billFrequencyInterval": 1}
PLAN = {"id": "plan1", "planTemplateId": "t1"}


def charged(lines):
    return [(line["lineItemType"], line["subtotal"], line["servicePeriodStartDate"][:10]) for line in lines]


@pytest.mark.parametrize("plan, template, kwargs, expected", [
    (PLAN, TEMPLATE, {}, [("STANDING_CHARGE", D(30), "2024-01-01")]),                    # arrears: own period
    ({**PLAN, "standingCharge": 45}, TEMPLATE, {}, [("STANDING_CHARGE", D(45), "2024-01-01")]),   # plan overrides
    ({**PLAN, "standingCharge": 0}, TEMPLATE, {}, []),                                    # overridden to nothing
    (PLAN, TEMPLATE, {"active": (at(2024, 1, 22), None)},
     [("STANDING_CHARGE", D("9.68"), "2024-01-22")]),                                    # 30 * 10/31 = 9.677...
    (PLAN, TEMPLATE, {"active": (None, at(2024, 1, 16))},
     [("STANDING_CHARGE", D("14.52"), "2024-01-01")]),                                   # 30 * 15/31 = 14.516...
    (PLAN, TEMPLATE, {"active": (at(2024, 2, 1), None)}, []),                            # not attached in January
    (PLAN, {**TEMPLATE, "standingChargeBillInAdvance": True}, {"bill_index": 0},
     [("STANDING_CHARGE", D(30), "2024-01-01"), ("STANDING_CHARGE", D(30), "2024-02-01")]),  # first bill: own + next
    (PLAN, {**TEMPLATE, "standingChargeBillInAdvance": True}, {"bill_index": 1},
     [("STANDING_CHARGE", D(30), "2024-02-01")]),                                        # later: next period only
    (PLAN, TEMPLATE, {"org_config": {"standingChargeBillInAdvance": True}},
     [("STANDING_CHARGE", D(30), "2024-02-01")]),                                        # the org's default
    ({**PLAN, "standingChargeBillInAdvance": False}, TEMPLATE,
     {"org_config": {"standingChargeBillInAdvance": True}}, [("STANDING_CHARGE", D(30), "2024-01-01")]),
    (PLAN, {**TEMPLATE, "billFrequency": "AD_HOC", "standingChargeBillInAdvance": True}, {},
     [("STANDING_CHARGE", D(30), "2024-01-01")]),                                        # no next period: arrears
])
def test_standing_charges(plan, template, kwargs, expected):
    assert charged(p.standing_charge_lines(plan, template, JAN, **kwargs)) == expected


def test_active_until_feb_15_in_advance_is_14_of_29_days():
    # 2024 is a leap year: February has 29 days, 30 * 14/29 = 14.482... -> 14.48
    template = {**TEMPLATE, "standingChargeBillInAdvance": True}
    [line] = p.standing_charge_lines(PLAN, template, JAN, active=(None, at(2024, 2, 15)))
    assert line["subtotal"] == D("14.48") and line["servicePeriodEndDate"][:10] == "2024-02-15"


@pytest.mark.parametrize("bill_index, expected", [(0, []), (1, [D(30)]), (2, []), (3, [D(30)]), (5, [D(30)])])
def test_standing_charge_interval_and_offset(bill_index, expected):
    template = {**TEMPLATE, "standingChargeInterval": 2, "standingChargeOffset": 1}   # bills 1, 3, 5...
    assert [line["subtotal"] for line in p.standing_charge_lines(PLAN, template, JAN, bill_index=bill_index)] \
        == expected


# -- minimum spend -------------------------------------------------------------------------------

@pytest.mark.parametrize("usage_total, expected", [
    ("60", [("MINIMUM_SPEND", D(40), "2024-01-01")]),      # 100 - 60
    ("99.99", [("MINIMUM_SPEND", D("0.01"), "2024-01-01")]),  # 100 - 99.99
    ("100", []),                                           # met exactly
    ("100.01", []),                                        # exceeded
    ("0", [("MINIMUM_SPEND", D(100), "2024-01-01")]),      # no usage: the whole minimum
])
def test_plan_minimum_spend_tops_up_in_arrears(usage_total, expected):
    assert charged(p.minimum_spend_lines({**PLAN, "minimumSpend": 100}, TEMPLATE, D(usage_total), JAN)) == expected


def test_the_template_minimum_applies_when_the_plan_has_none():
    assert charged(p.minimum_spend_lines(PLAN, {**TEMPLATE, "minimumSpend": 50}, D(20), JAN)) == [
        ("MINIMUM_SPEND", D(30), "2024-01-01")]     # 50 - 20


def test_a_pricing_minimum_tops_up_its_pricing_and_counts_toward_the_plan():
    pricing_min = pricing(minimumSpend=50)
    lines = p.minimum_spend_lines({**PLAN, "minimumSpend": 100}, TEMPLATE, D(20), JAN,
                                  pricing_totals=[(pricing_min, D(20))])
    # pricing: 50 - 20 = 30; plan: 100 - (20 + 30) = 50; usage + top-ups = 20 + 30 + 50 = 100
    assert [(line["pricingId"] if "pricingId" in line else None, line["subtotal"]) for line in lines] == [
        ("pr1", D(30)), (None, D(50))]


@pytest.mark.parametrize("bill_index, usage_total, expected, period_cost", [
    # first bill: this period's and the next period's minimum, refund of what usage covered (60)
    (0, "60", [("MINIMUM_SPEND", D(100), "2024-01-01"), ("MINIMUM_SPEND", D(100), "2024-02-01"),
               ("MINIMUM_SPEND_REFUND", D(-60), "2024-01-01")], "100"),   # Jan: 100 + 60 usage - 60
    # a later bill: the next period's minimum; usage 130 covers the whole minimum, refund 100
    (None, "130", [("MINIMUM_SPEND", D(100), "2024-02-01"), ("MINIMUM_SPEND_REFUND", D(-100), "2024-01-01")],
     "130"),                                                              # Jan: 100 (paid before) + 130 - 100
])
def test_minimum_spend_in_advance_is_refunded_by_usage(bill_index, usage_total, expected, period_cost):
    lines = p.minimum_spend_lines({**PLAN, "minimumSpend": 100, "minimumSpendBillInAdvance": True}, TEMPLATE,
                                  D(usage_total), JAN, bill_index=bill_index)
    assert charged(lines) == expected
    january = sum((line["subtotal"] for line in lines if line["lineItemType"] == "MINIMUM_SPEND_REFUND"), D(0))
    assert D(100) + D(usage_total) + january == D(period_cost)


# -- commitments -------------------------------------------------------------------------------

COMMITMENT = {"id": "c1", "accountId": "a1", "amount": 1000, "amountSpent": 0, "currency": "USD",
              "startDate": "2024-01-01", "endDate": "2025-01-01"}


def by_type(lines, line_type):
    return [line["subtotal"] for line in lines if line["lineItemType"] == line_type]


# amountSpent grows by the whole 300 of eligible usage (drawn + overage), surcharges not counted
@pytest.mark.parametrize("spent, surcharge, consumed, surcharges, new_spent, bill", [
    (0, None, [D(-300)], [], "300", "0"),            # below: 300 of 1000 drawn; 300 - 300
    (700, None, [D(-300)], [], "1000", "0"),         # at: exactly the 300 left
    (700, 10, [D(-300)], [], "1000", "0"),           # at, with a surcharge: no overage
    (900, 10, [D(-100)], [D(20)], "1200", "220"),    # over: 100 drawn, 200 over * 10% = 20; 300 - 100 + 20
    (900, None, [D(-100)], [], "1200", "200"),       # over without surcharge: 300 - 100
    (1000, 10, [], [D(30)], "1300", "330"),          # spent already: 300 * 10% = 30; 300 + 30
    (1300, None, [], [], "1600", "300"),             # overspent before: nothing to draw (1000 - 1300 < 0)
    (900, -5, [D(-100)], [D(-10)], "1200", "190"),   # a discount: 200 * -5% = -10; 300 - 100 - 10
    (900, 2.5, [D(-100)], [D(5)], "1200", "205"),    # 200 * 2.5% = 5
])
def test_commitment_drawdown_below_at_and_over_the_amount(spent, surcharge, consumed, surcharges, new_spent, bill):
    charges = usage("300")
    commitment = {**COMMITMENT, "amountSpent": spent, "overageSurchargePercent": surcharge}
    lines, amount_spent = p.commitment_lines(commitment, charges, JAN)
    assert by_type(lines, "COMMITMENT_CONSUMED") == consumed
    assert by_type(lines, "OVERAGE_SURCHARGE") == surcharges
    assert amount_spent == D(new_spent)
    assert p.bill_total(charges + lines) == D(bill)
    assert all(line["referencedLineItemId"] == charges[0]["id"] for line in lines)


def test_drawdown_follows_product_ids_and_line_item_types():
    charges = usage("300", product="P") + usage("200", product="Q") \
        + p.standing_charge_lines(PLAN, {**TEMPLATE, "standingCharge": 50}, JAN)
    lines, spent = p.commitment_lines({**COMMITMENT, "productIds": ["P"]}, charges, JAN)
    assert by_type(lines, "COMMITMENT_CONSUMED") == [D(-300), D(-50)]   # P's usage and P's standing charge
    assert spent == D(350)
    lines, spent = p.commitment_lines({**COMMITMENT, "lineItemTypes": ["USAGE"]}, charges, JAN)
    assert by_type(lines, "COMMITMENT_CONSUMED") == [D(-300), D(-200)]  # usage only, the standing charge stays
    assert spent == D(500) and p.bill_total(charges + lines) == D(50)


def test_credits_net_before_the_drawdown():
    charges = p.cap_credits(usage("100") + usage("20", type="PRODUCT_CREDIT"))
    lines, spent = p.commitment_lines(COMMITMENT, charges, JAN)
    # 100 - 20 credit leaves 80 to draw: the bill is 100 - 20 - 80 = 0
    assert by_type(lines, "COMMITMENT_CONSUMED") == [D(-80)] and spent == D(80)
    assert p.bill_total(charges + lines) == D(0)


def test_a_commitment_outside_the_period_draws_nothing():
    lines, spent = p.commitment_lines({**COMMITMENT, "amountSpent": 5, "startDate": "2024-02-01"}, usage("300"), JAN)
    assert lines == [] and spent == D(5)


def test_fee_dates_bill_on_the_bill_whose_period_holds_them():
    commitment = {**COMMITMENT, "feeDates": [
        {"date": "2024-01-15", "amount": 500, "servicePeriodStartDate": "2024-01-01T00:00:00Z",
         "servicePeriodEndDate": "2024-07-01T00:00:00Z"},
        {"date": "2024-07-15", "amount": 500.5, "servicePeriodStartDate": "2024-07-01T00:00:00Z",
         "servicePeriodEndDate": "2025-01-01T00:00:00Z"}]}
    lines, _ = p.commitment_lines(commitment, [], JAN)
    assert charged(lines) == [("COMMITMENT_FEE", D(500), "2024-01-01")]
    assert p.commitment_lines(commitment, [], FEB)[0] == []
    july = (at(2024, 7, 1), at(2024, 8, 1))
    assert by_type(p.commitment_lines(commitment, [], july)[0], "COMMITMENT_FEE") == [D("500.5")]


PLAN_BILLED = {**COMMITMENT, "amount": 1200, "billingPlanId": "plan1"}


@pytest.mark.parametrize("fields, period, expected", [
    ({}, JAN, [D(100)]),                                    # 1200 over 12 monthly cycles
    ({}, DEC, [D(100)]),
    ({"amountPrePaid": 600}, JAN, [D(50)]),                 # (1200 - 600) / 12
    ({"amountFirstBill": 300}, JAN, [D(300)]),              # the first instalment
    ({"amountFirstBill": 300}, FEB, [D("81.82")]),          # 900 / 11 = 81.8181... -> 81.82
    ({"amountFirstBill": 300}, DEC, [D("81.80")]),          # 900 - 10 * 81.82 = 81.80: the remainder
    ({"billingInterval": 3}, JAN, []),                      # quarterly in arrears: Jan-Mar's fee on March's bill
    ({"billingInterval": 3}, MAR, [D(300)]),                # 1200 / 4
    ({"billingInterval": 3, "commitmentFeeBillInAdvance": True}, JAN, [D(300)]),
    ({"billingOffset": 1}, JAN, []),                        # the first cycle carries no fee
    ({"billingOffset": 1}, FEB, [D("109.09")]),             # 1200 / 11 = 109.0909...
    ({"billingOffset": 1}, DEC, [D("109.10")]),             # 1200 - 10 * 109.09
    ({"amountPrePaid": 1200}, JAN, []),                     # nothing outstanding
])
def test_fees_of_a_commitment_billed_with_a_plan(fields, period, expected):
    lines, _ = p.commitment_lines({**PLAN_BILLED, **fields}, [], period, bill_frequency=("MONTHLY", 1))
    assert by_type(lines, "COMMITMENT_FEE") == expected


def test_instalments_add_up_to_the_outstanding_amount():
    fees = p.commitment_fees({**PLAN_BILLED, "amount": 1000, "amountFirstBill": 150}, ("MONTHLY", 1))
    assert len(fees) == 12 and sum((amount for _, amount, _ in fees), D(0)) == D(1000)


@pytest.mark.parametrize("spent, bands, charge, overage, bill, new_spent", [
    (0, None, (D(100), D(100)), [(D(200), D(200))], "200", "300"),   # 300 at 1: 100 covered, 200 (units 200) over
    (0, [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1.5}], (D(100), D(100)), [(D(300), D(200))],
     "300", "400"),                                      # overage re-rated: 200 * 1.5 = 300; 100 + 300 - 100
    (1000, None, None, [(D(300), D(300))], "300", "1300"),   # spent: the whole charge becomes overage usage
    (1000, [{"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1.5}], None, [(D(450), D(300))], "450",
     "1450"),                                            # ... re-rated: 300 * 1.5
])
def test_separate_overage_usage(spent, bands, charge, overage, bill, new_spent):
    priced = pricing(overagePricingBands=bands) if bands else pricing()
    charges = p.usage_lines([p.PricedUsage(priced, None, D(300), product_id="P")], JAN)
    commitment = {**COMMITMENT, "amount": 100 if spent == 0 else 1000, "amountSpent": spent,
                  "separateOverageUsage": True}
    lines, amount_spent = p.commitment_lines(commitment, charges, JAN, pricings={"pr1": priced})
    bill_lines = charges + lines
    assert amount_spent == D(new_spent)
    assert [(line["subtotal"], line["quantity"]) for line in bill_lines if line["lineItemType"] == "USAGE"] \
        == ([charge] if charge else [])
    assert [(line["subtotal"], line["quantity"]) for line in bill_lines
            if line["lineItemType"] == "OVERAGE_USAGE"] == overage
    assert p.bill_total(bill_lines) == D(bill)


# -- balances ----------------------------------------------------------------------------------

BALANCE = {"id": "b1", "accountId": "a1", "amount": 200, "currency": "USD",
           "startDate": "2024-01-01T00:00:00Z", "endDate": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize("fields, usage_amount, drawn, surcharges, bill", [
    ({}, "150", "150", [], "0"),                                   # within the balance
    ({}, "200", "200", [], "0"),                                   # exactly the balance
    ({}, "300", "200", [], "100"),                                 # 200 drawn, 100 left to pay
    ({"overageSurchargePercent": 10}, "300", "200", [D(10)], "110"),  # 100 over * 10% = 10
    ({"allowOverdraft": True}, "300", "300", [], "0"),             # overdraft: all of it (amount goes to -100)
    ({"amount": 0}, "300", "0", [], "300"),                        # empty, no overdraft
    ({"amount": -50, "allowOverdraft": True}, "300", "300", [], "0"),  # already overdrawn, still draws
    ({"productIds": ["Q"]}, "300", "0", [], "300"),                # not for this product
    ({"lineItemTypes": ["STANDING_CHARGE"]}, "300", "0", [], "300"),  # not for usage
])
def test_balance_drawdown(fields, usage_amount, drawn, surcharges, bill):
    charges = usage(usage_amount)
    lines, amounts = p.balance_lines([{**BALANCE, **fields}], charges, JAN)
    assert amounts == {"b1": D(drawn)}
    assert by_type(lines, "OVERAGE_SURCHARGE") == surcharges
    assert all(line["balanceId"] == "b1" for line in lines)
    assert p.bill_total(charges + lines) == D(bill)


def test_balances_draw_in_order():
    charges = usage("250")
    lines, amounts = p.balance_lines([{**BALANCE, "id": "b1", "amount": 100}, {**BALANCE, "id": "b2"}], charges, JAN)
    assert amounts == {"b1": D(100), "b2": D(150)}      # 100 from the first, the other 150 from the second
    assert p.bill_total(charges + lines) == D(0)


def test_balances_draw_what_the_commitment_left():
    charges = usage("300")
    commitment, spent = p.commitment_lines({**COMMITMENT, "amount": 100}, charges, JAN)
    lines, amounts = p.balance_lines([{**BALANCE, "amount": 500}], charges + commitment, JAN)
    # the commitment draws 100 (spent: 100 drawn + 200 overage), the balance the other 200: 300 - 100 - 200
    assert spent == D(300) and amounts == {"b1": D(200)}
    assert p.bill_total(charges + commitment + lines) == D(0)


@pytest.mark.parametrize("fields, expected", [
    ({"startDate": "2024-02-01T00:00:00Z"}, {}),                                      # not started
    ({"endDate": "2024-01-01T00:00:00Z"}, {}),                                        # ended, no rollover
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-03-01T00:00:00Z"}, {"b1": D(200)}),
    ({"endDate": "2024-01-01T00:00:00Z", "rolloverEndDate": "2024-03-01T00:00:00Z", "rolloverAmount": 50},
     {"b1": D(50)}),                                                                  # at most the rollover amount
])
def test_balance_active_period_and_rollover(fields, expected):
    assert p.balance_lines([{**BALANCE, **fields}], usage("300"), JAN)[1] == expected


# -- a whole bill --------------------------------------------------------------------------------

def test_a_whole_bill_adds_up():
    priced = pricing(pricingBands=BANDS, cumulative=True, minimumSpend=700)
    lines = p.usage_lines([p.PricedUsage(priced, None, D(501), product_id="P")], JAN)      # 635.5
    lines += p.standing_charge_lines(PLAN, TEMPLATE, JAN)                                  # 30
    lines += p.minimum_spend_lines(PLAN, TEMPLATE, D("635.5"), JAN, pricing_totals=[(priced, D("635.5"))])  # 64.5
    lines = p.cap_credits(lines)
    commitment, spent = p.commitment_lines({**COMMITMENT, "amount": 500}, lines, JAN)     # draws 500
    balance, drawn = p.balance_lines([BALANCE], lines + commitment, JAN)                   # draws the other 200
    assert by_type(lines, "MINIMUM_SPEND") == [D("64.5")]
    assert spent == D(730) and drawn == {"b1": D(200)}     # every eligible charge: 635.5 + 30 + 64.5
    # 635.5 + 30 + 64.5 = 730; - 500 - 200 = 30
    assert p.bill_total(lines + commitment + balance) == D(30)


def test_wire_writes_every_decimal_as_a_json_number():
    [line] = p.usage_lines([p.PricedUsage(pricing(pricingBands=BANDS), None, D("100.5"))], JAN)
    shown = p.wire(line)
    # 210 + 0.5 * 1 = 210.5; whole amounts become integers
    assert shown["subtotal"] == 210.5 and shown["quantity"] == 100.5 and shown["conversionRate"] == 1
    assert isinstance(shown["conversionRate"], int)
    assert [(r["bandUnits"], r["bandSubtotal"]) for r in shown["usagePerPricingBand"]] == [(100, 210), (0.5, 0.5)]
