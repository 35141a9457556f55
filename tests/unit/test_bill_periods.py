"""Billing periods and bill dates (mockserver/domain/bill_periods.py), hand-computed."""

from __future__ import annotations

from datetime import date

import pytest

from mockserver.domain import bill_periods as periods
from mockserver.domain.errors import MockError

D = date.fromisoformat


@pytest.mark.parametrize("day, frequency, interval, epoch, expected", [
    # calendar months from m3ter's default epoch
    ("2024-03-15", "MONTHLY", 1, "2022-01-01", ("2024-03-01", "2024-04-01")),
    ("2024-03-01", "MONTHLY", 1, "2022-01-01", ("2024-03-01", "2024-04-01")),
    ("2024-03-31", "MONTHLY", 1, "2022-01-01", ("2024-03-01", "2024-04-01")),
    # every 3 months from January 2022: Jan, Apr, Jul, Oct
    ("2024-05-20", "MONTHLY", 3, "2022-01-01", ("2024-04-01", "2024-07-01")),
    # an epoch on the 15th: periods run 15th to 15th, before the epoch too
    ("2024-03-10", "MONTHLY", 1, "2024-01-15", ("2024-02-15", "2024-03-15")),
    ("2023-12-20", "MONTHLY", 1, "2024-01-15", ("2023-12-15", "2024-01-15")),
    # an epoch on the 31st keeps the 31st where the month has it
    ("2024-02-29", "MONTHLY", 1, "2024-01-31", ("2024-02-29", "2024-03-31")),
    ("2024-02-10", "MONTHLY", 1, "2024-01-31", ("2024-01-31", "2024-02-29")),
    # weeks from m3ter's default week epoch (a Tuesday)
    ("2024-01-10", "WEEKLY", 1, "2022-01-04", ("2024-01-09", "2024-01-16")),
    ("2024-01-10", "WEEKLY", 2, "2022-01-04", ("2024-01-02", "2024-01-16")),
    ("2024-01-10", "DAILY", 1, "2022-01-01", ("2024-01-10", "2024-01-11")),
    ("2024-01-10", "DAILY", 7, "2024-01-01", ("2024-01-08", "2024-01-15")),
    ("2024-07-04", "ANNUALLY", 1, "2022-01-01", ("2024-01-01", "2025-01-01")),
    ("2024-07-04", "ANNUALLY", 1, "2022-04-06", ("2024-04-06", "2025-04-06")),
    ("2024-02-01", "ANNUALLY", 2, "2022-04-06", ("2022-04-06", "2024-04-06")),
])
def test_the_period_that_holds_a_day(day, frequency, interval, epoch, expected):
    assert periods.period_containing(D(day), frequency, interval, D(epoch)) == (D(expected[0]), D(expected[1]))


def test_an_interval_below_one_or_an_unknown_frequency_is_a_400():
    with pytest.raises(MockError) as below:
        periods.period_containing(D("2024-01-01"), "MONTHLY", 0, D("2022-01-01"))
    assert (below.value.status, below.value.message) == (400, "billFrequencyInterval: 0 is below 1")
    with pytest.raises(MockError) as unknown:
        periods.period_containing(D("2024-01-01"), "HOURLY", 1, D("2022-01-01"))
    assert unknown.value.message.startswith("billingFrequency: 'HOURLY' is not one of")


def test_the_periods_a_moving_clock_sees_close():
    # From Jan 20 to Apr 1 (inclusive of a period ending on Apr 1): January, February, March.
    assert periods.period_ends_between(D("2024-01-20"), D("2024-04-01"), "MONTHLY", 1, D("2022-01-01")) == [
        (D("2024-01-01"), D("2024-02-01")), (D("2024-02-01"), D("2024-03-01")), (D("2024-03-01"), D("2024-04-01"))]
    # A period ending exactly where the clock started closed before: not seen again.
    assert periods.period_ends_between(D("2024-02-01"), D("2024-02-28"), "MONTHLY", 1, D("2022-01-01")) == []


def test_the_epoch_comes_from_the_first_source_that_has_one():
    account_plan, account = {"billEpoch": "2024-01-10"}, {"billEpoch": "2024-01-20"}
    job, config = {"monthEpoch": "2024-01-25", "weekEpoch": "2024-01-03"}, {"monthEpoch": "2024-01-28"}
    assert periods.epoch_for("MONTHLY", account_plan, account, job, config) == D("2024-01-10")
    assert periods.epoch_for("MONTHLY", {}, account, job, config) == D("2024-01-20")
    assert periods.epoch_for("MONTHLY", {}, {}, job, config) == D("2024-01-25")
    assert periods.epoch_for("MONTHLY", {}, {}, {}, config) == D("2024-01-28")
    assert periods.epoch_for("WEEKLY", {}, {}, job, config) == D("2024-01-03")
    assert periods.epoch_for("WEEKLY", None, {}, {}, {}) == D("2022-01-04")
    assert periods.epoch_for("DAILY") == D("2022-01-01")


def test_bill_dates_in_arrears():
    march = (D("2024-03-01"), D("2024-04-01"))
    assert periods.bill_dates(march, days_before_due=1, invoice_date_rule=None) == {
        "billDate": "2024-04-01", "dueDate": "2024-04-02", "externalInvoiceDate": "2024-04-01"}
    assert periods.bill_dates(march, days_before_due=30, invoice_date_rule="LAST_DAY_OF_ARREARS") == {
        "billDate": "2024-04-01", "dueDate": "2024-05-01", "externalInvoiceDate": "2024-03-31"}
    assert periods.bill_dates(march, days_before_due=30, invoice_date_rule=None, bill_date=D("2024-04-05"),
                              due_date=D("2024-04-20"), external_invoice_date=D("2024-04-06")) == {
        "billDate": "2024-04-05", "dueDate": "2024-04-20", "externalInvoiceDate": "2024-04-06"}


def test_days_and_instants():
    assert periods.parse_day("2024-03-05T23:30:00Z", "startDate") == D("2024-03-05")
    assert periods.parse_day("2024-03-05", "startDate") == D("2024-03-05")
    assert periods.millis(D("2024-01-01")) == 1704067200000
    with pytest.raises(MockError) as bad:
        periods.parse_day("March", "lastDateInBillingPeriod")
    assert bad.value.message == "lastDateInBillingPeriod: 'March' is not a date like 2024-09-30"
