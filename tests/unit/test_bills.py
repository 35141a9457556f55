"""The bill rules of ``mockserver.domain.bills``, on plain dicts."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from mockserver.domain import bills
from mockserver.domain.errors import MockError

BILL = {"id": "b-1", "status": "PENDING", "locked": False, "billingFrequency": "MONTHLY", "currency": "GBP",
        "startDate": "2024-09-01", "endDate": "2024-10-01", "accountCode": "acme",
        "startDateTimeUTC": "2024-09-01T00:00:00.000Z", "endDateTimeUTC": "2024-10-01T00:00:00.000Z"}


def refused(status: int, call, *args) -> str:
    with pytest.raises(MockError) as caught:
        call(*args)
    assert caught.value.status == status
    return caught.value.message


def test_a_billing_period_ends_the_day_before_the_bills_exclusive_end_date():
    assert bills.last_date_in_period(BILL) == date(2024, 9, 30)
    assert bills.in_billing_period(BILL, date(2024, 9, 30), "MONTHLY")
    assert not bills.in_billing_period(BILL, date(2024, 10, 1), "MONTHLY")
    assert not bills.in_billing_period(BILL, date(2024, 9, 30), "WEEKLY")
    assert not bills.in_billing_period({"id": "b-2", "billingFrequency": "MONTHLY"}, date(2024, 9, 30), "MONTHLY")


def test_the_frequency_segment_is_read_in_any_case():
    assert bills.period_frequency("monthly") == bills.period_frequency("MONTHLY") == "MONTHLY"
    assert refused(400, bills.period_frequency, "AD_HOC") == (
        "billingFrequency: 'AD_HOC' is not one of daily, weekly, monthly, annually")


def test_status_moves_between_pending_and_approved_unless_locked():
    assert bills.status_change(BILL, "APPROVED") is True
    assert bills.status_change(BILL, "PENDING") is False
    assert refused(400, bills.status_change, BILL, "PAID") == "status: 'PAID' is not one of ['PENDING', 'APPROVED']"
    locked = {**BILL, "status": "APPROVED", "locked": True}
    assert bills.status_change(locked, "APPROVED") is False
    assert refused(409, bills.status_change, locked, "PENDING") == (
        "Bill 'b-1' is locked: a locked bill cannot be changed")


def test_only_an_approved_bill_can_be_locked_and_locking_twice_changes_nothing():
    assert refused(409, bills.lock_change, BILL) == (
        "Bill 'b-1' is PENDING: only an APPROVED bill can be locked; approve it first")
    assert bills.lock_change({**BILL, "status": "APPROVED"}) is True
    assert bills.lock_change({**BILL, "status": "APPROVED", "locked": True}) is False


def test_approval_messages_count_what_changed():
    assert bills.approval_message(1, 0) == "1 bill approved"
    assert bills.approval_message(2, 1) == "2 bills approved; 1 was already approved"
    assert bills.approval_message(0, 3) == "0 bills approved; 3 were already approved"


def test_a_job_can_be_cancelled_only_while_active():
    bills.check_job_cancellable("BillJob", "j-1", "INITIALIZING", bills.ACTIVE_BILL_JOB_STATUSES)
    assert refused(409, bills.check_job_cancellable, "StatementJob", "j-1", "COMPLETE",
                   bills.ACTIVE_STATEMENT_JOB_STATUSES) == (
        "StatementJob 'j-1' is COMPLETE: only a job that is PENDING or RUNNING can be cancelled")


def test_money_is_summed_as_decimals_and_written_as_json_numbers():
    assert bills.total([{"subtotal": 0.1}, {"subtotal": "0.2"}]) == Decimal("0.3")
    assert bills.number(Decimal("0.3")) == 0.3 and bills.number(Decimal("12.00")) == 12
    assert isinstance(bills.number(Decimal("12.00")), int)
    assert refused(400, bills.money, "NaN", "subtotal") == "subtotal: 'NaN' is not a number"
    assert refused(400, bills.money, "ten", "subtotal") == "subtotal: 'ten' is not a number"


def test_a_line_item_gets_every_required_field():
    item = bills.complete_line_item({"subtotal": "9", "quantity": 4, "lineItemType": "STANDING_CHARGE"}, BILL)
    assert item == {
        "lineItemType": "STANDING_CHARGE", "description": "Standing charge", "currency": "GBP", "unit": "unit",
        "servicePeriodStartDate": "2024-09-01T00:00:00.000Z", "servicePeriodEndDate": "2024-10-01T00:00:00.000Z",
        "subtotal": 9, "quantity": 4, "units": 4, "averageUnitPrice": 2.25, "conversionRate": 1,
        "convertedSubtotal": 9}
    free = bills.complete_line_item({"quantity": 0}, BILL)
    assert (free["averageUnitPrice"], free["subtotal"]) == (0, 0)
    converted = bills.complete_line_item({"subtotal": 10, "conversionRate": "1.5"}, BILL)
    assert converted["convertedSubtotal"] == 15


def test_a_statement_filter_keeps_the_meters_named():
    items = [{"id": "a", "meterId": "m-1"}, {"id": "b", "meterId": "m-2"}, {"id": "c"}]
    assert bills.statement_items(items, None) == items
    assert bills.statement_items(items, {"meterIds": []}) == items
    assert bills.statement_items(items, {"meterIds": ["m-2"]}) == [{"id": "b", "meterId": "m-2"}]


def test_statements_show_the_bill_and_its_line_items():
    items = [{"id": "li-1", "lineItemType": "USAGE", "subtotal": 2.5, "currency": "GBP"}]
    document = json.loads(bills.json_statement(BILL, items, "2024-10-02T00:00:00.000Z"))
    assert document["bill"]["id"] == "b-1" and document["total"] == 2.5 and document["lineItems"] == items
    rows = list(csv.DictReader(io.StringIO(bills.csv_statement(BILL, items).decode())))
    assert [(r["billId"], r["lineItemId"], r["subtotal"]) for r in rows] == [("b-1", "li-1", "2.5")]


def test_a_download_range_is_at_most_31_days():
    assert bills.download_range(None, None, "startDate", "endDate") is None
    since, until = bills.download_range("2024-09-01T00:00:00Z", "2024-10-02T00:00:00Z", "startDate", "endDate")
    assert (until - since).days == 31
    assert refused(400, bills.download_range, "2024-09-01T00:00:00Z", "2024-10-02T00:00:01Z",
                   "startDate", "endDate") == "endDate: a download covers at most 31 days"
    assert refused(400, bills.download_range, "2024-09-01T00:00:00Z", "2024-09-01T00:00:00Z",
                   "startDate", "endDate") == "endDate: must be later than startDate"
    assert refused(400, bills.download_range, None, "2024-09-01T00:00:00Z", "startDate", "endDate") == (
        "startDate: required with endDate")


def test_a_stored_date_is_its_utc_midnight():
    assert bills.instant_of("2024-09-01") == datetime(2024, 9, 1, tzinfo=timezone.utc)
    bounds = bills.download_range("2024-09-01T00:00:00Z", "2024-09-02T00:00:00Z", "s", "e")
    assert bills.in_range("2024-09-01", bounds) and not bills.in_range("2024-09-02", bounds)
    assert not bills.in_range(None, bounds) and bills.in_range(None, None)


def test_the_bills_csv_has_a_row_per_line_item():
    items = [{"id": "li-1", "lineItemType": "USAGE", "description": "Usage", "quantity": 2,
              "averageUnitPrice": 1.5, "subtotal": 3}]
    xero = list(csv.DictReader(io.StringIO(bills.bills_csv([(BILL, items), ({**BILL, "id": "b-2"}, [])],
                                                           "XERO").decode())))
    assert xero == [{"ContactName": "acme", "InvoiceNumber": "b-1", "InvoiceDate": "", "DueDate": "",
                     "Description": "Usage", "Quantity": "2", "UnitAmount": "1.5", "LineAmount": "3",
                     "Currency": "GBP"}]
    standard = list(csv.DictReader(io.StringIO(bills.bills_csv([(BILL, items)], "STANDARD").decode())))
    assert [(r["billId"], r["lineItemId"], r["status"]) for r in standard] == [("b-1", "li-1", "PENDING")]


def test_a_boolean_filter_sent_as_text():
    assert bills.flag("TRUE", "active") is True and bills.flag("false", "active") is False
    assert bills.flag(None, "active") is None
    assert refused(400, bills.flag, "1", "active") == "active: '1' is not true or false"


def test_the_data_explorer_checks_its_query():
    query = {"startDate": "2024-09-01T00:00:00Z", "endDate": "2024-10-01T00:00:00Z", "lineItemTypes": ["USAGE"],
             "dimensions": [{"name": "accountId", "filter": ["a-1", "a-2"]}]}
    since, until, dimensions, limit = bills.check_explorer_query(query)
    assert dimensions == [("accountId", {"a-1", "a-2"})] and limit == 2000
    assert refused(400, bills.check_explorer_query, {**query, "endDate": "2024-09-01T00:00:00Z"}) == (
        "endDate: must be later than startDate")
    assert refused(400, bills.check_explorer_query, {**query, "startDate": "yesterday"}).startswith(
        "startDate: 'yesterday' is not a date-time")
    row = bills.explorer_row({**BILL, "lastCalculatedDate": "2024-10-01T01:00:00.000Z"},
                             {"servicePeriodStartDate": "2024-09-01T00:00:00.000Z", "subtotal": 3},
                             {"accountId": "a-1"})
    assert row["billDetails"]["yearMonth"] == "2024-09" and row["billDetails"]["locked"] == "false"
    assert row["measures"] == {"subtotal": 3.0} and row["updatedDate"] == "2024-10-01T01:00:00.000Z"
