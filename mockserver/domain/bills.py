"""The rules of bills and what is made from them, where m3ter's documentation states them
and, where it is silent, the simplest rule consistent with the rest of the mock:

* a bill is ``PENDING`` or ``APPROVED``; it can be locked only once approved, and a locked
  bill refuses every further change (a 409 names the bill);
* a billing period is named by its last date and its frequency: a bill belongs to it when it
  has that ``billingFrequency`` and its service period ends that day (the bill's ``endDate``
  is exclusive, so it is the next day);
* money is summed as ``Decimal`` and written as a JSON number;
* a statement shows the bill and its line items (a ``meterIds`` filter keeps the line items
  of those meters); the bills CSV has one row per line item, so an empty bill has no row;
* the data explorer selects line items by type, by the start of their service period and
  by dimension values.

Pure data in and out: the backend stores, this module decides.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from .clock import from_iso, utc
from .errors import MockError
from .export_rendering import render

BILL_STATUSES = ("PENDING", "APPROVED")
PERIOD_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "ANNUALLY")
ACTIVE_BILL_JOB_STATUSES = ("PENDING", "INITIALIZING", "RUNNING")
BILL_JOB_STATUSES = ACTIVE_BILL_JOB_STATUSES + ("COMPLETE", "CANCELLED")
ACTIVE_STATEMENT_JOB_STATUSES = ("PENDING", "RUNNING")
STATEMENT_JOB_STATUSES = ACTIVE_STATEMENT_JOB_STATUSES + ("COMPLETE", "CANCELLED", "FAILED")
MAX_DOWNLOAD_DAYS = 31
MAX_DOWNLOAD_BILLS = 5000
DEFAULT_EXPLORER_LIMIT = 2000


# -- values ------------------------------------------------------------------------------

def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise MockError.bad_request(f"{field}: {value!r} is not a date like 2024-09-30") from None


def parse_instant(value: str, field: str) -> datetime:
    try:
        return utc(from_iso(value))
    except (AttributeError, TypeError, ValueError):
        raise MockError.bad_request(f"{field}: {value!r} is not a date-time like 2024-09-01T00:00:00Z") from None


def instant_of(value: str) -> datetime:
    """A stored date (``2024-09-01``) or date-time, as a UTC instant (a date is its midnight)."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=timezone.utc)
    return utc(from_iso(value))


def period_frequency(value: str) -> str:
    """The ``billingFrequency`` path segment, in any case (m3ter's docs write it lower-case)."""
    upper = str(value).upper()
    if upper not in PERIOD_FREQUENCIES:
        raise MockError.bad_request(
            f"billingFrequency: {value!r} is not one of {', '.join(f.lower() for f in PERIOD_FREQUENCIES)}")
    return upper


def flag(value: str | bool | None, field: str) -> bool | None:
    """A boolean query value that the spec types as a string (``active=true``)."""
    if value is None or isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise MockError.bad_request(f"{field}: {value!r} is not true or false")


def money(value: Any, field: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise MockError.bad_request(f"{field}: {value!r} is not a number") from None
    if not amount.is_finite():
        raise MockError.bad_request(f"{field}: {value!r} is not a number")
    return amount


def number(amount: Decimal) -> int | float:
    """A Decimal as the JSON number it stands for (whole amounts stay integers)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def total(line_items: Iterable[dict]) -> Decimal:
    return sum((money(item.get("subtotal", 0), "subtotal") for item in line_items), Decimal(0))


# -- the billing period ------------------------------------------------------------------

def last_date_in_period(bill: dict) -> date | None:
    end = bill.get("endDate")
    return date.fromisoformat(end) - timedelta(days=1) if end else None


def in_billing_period(bill: dict, last_date: date, frequency: str) -> bool:
    return bill.get("billingFrequency") == frequency and last_date_in_period(bill) == last_date


# -- status and lock ---------------------------------------------------------------------

def check_unlocked(bill: dict) -> None:
    if bill.get("locked"):
        raise MockError.conflict(f"Bill {bill['id']!r} is locked: a locked bill cannot be changed")


def status_change(bill: dict, status: str) -> bool:
    """Whether setting ``status`` changes the bill (a locked bill refuses any change)."""
    if status not in BILL_STATUSES:
        raise MockError.bad_request(f"status: {status!r} is not one of {list(BILL_STATUSES)}")
    if bill.get("status") == status:
        return False
    check_unlocked(bill)
    return True


def lock_change(bill: dict) -> bool:
    """Whether locking changes the bill: locking a locked bill changes nothing; a pending
    bill must be approved first (409)."""
    if bill.get("locked"):
        return False
    if bill.get("status") != "APPROVED":
        raise MockError.conflict(
            f"Bill {bill['id']!r} is {bill.get('status')}: only an APPROVED bill can be locked; approve it first")
    return True


def approval_message(approved: int, unchanged: int) -> str:
    message = f"{approved} bill{'' if approved == 1 else 's'} approved"
    if unchanged:
        message += f"; {unchanged} {'was' if unchanged == 1 else 'were'} already approved"
    return message


def check_job_cancellable(label: str, job_id: str, status: str, active: tuple[str, ...]) -> None:
    if status not in active:
        raise MockError.conflict(f"{label} {job_id!r} is {status}: only a job that is {' or '.join(active)} "
                                 "can be cancelled")


# -- line items --------------------------------------------------------------------------

def complete_line_item(item: dict, bill: dict) -> dict:
    """A line item with every field m3ter's schema requires: the bill's currency and service
    period unless given, one unit unless given, the average unit price worked out."""
    subtotal = money(item.get("subtotal", 0), "subtotal")
    quantity = money(item.get("quantity", 1), "quantity")
    average = subtotal / quantity if quantity else Decimal(0)
    complete = {
        "lineItemType": "USAGE",
        "description": item.get("lineItemType", "USAGE").replace("_", " ").capitalize(),
        "currency": bill["currency"],
        "unit": "unit",
        "servicePeriodStartDate": bill["startDateTimeUTC"],
        "servicePeriodEndDate": bill["endDateTimeUTC"],
        **item,
        "subtotal": number(subtotal),
        "quantity": number(quantity),
        "units": number(money(item.get("units", quantity), "units")),
        "averageUnitPrice": number(money(item.get("averageUnitPrice", average), "averageUnitPrice")),
        "conversionRate": number(money(item.get("conversionRate", 1), "conversionRate")),
    }
    complete["convertedSubtotal"] = number(
        money(item.get("convertedSubtotal", subtotal * money(complete["conversionRate"])), "convertedSubtotal"))
    return complete


def statement_items(line_items: list[dict], filters: dict | None) -> list[dict]:
    meters = (filters or {}).get("meterIds")
    if not meters:
        return list(line_items)
    return [item for item in line_items if item.get("meterId") in meters]


# -- statements and the bills CSV ----------------------------------------------------------

STATEMENT_COLUMNS = ["lineItemId", "lineItemType", "description", "productId", "productName", "meterId",
                     "servicePeriodStartDate", "servicePeriodEndDate", "quantity", "unit", "units",
                     "averageUnitPrice", "subtotal", "currency"]
_BILL_HEADER = ("id", "accountId", "accountCode", "billDate", "dueDate", "startDate", "endDate",
                "billingFrequency", "currency", "status", "locked", "billTotal")


def json_statement(bill: dict, line_items: list[dict], generated: str) -> bytes:
    document = {
        "generatedAt": generated,
        "bill": {k: bill[k] for k in _BILL_HEADER if k in bill},
        "lineItems": line_items,
        "total": number(total(line_items)),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def csv_statement(bill: dict, line_items: list[dict]) -> bytes:
    rows = [{**item, "billId": bill["id"], "lineItemId": item.get("id")} for item in line_items]
    return render(rows, ["billId"] + STATEMENT_COLUMNS, "CSV")


BILLS_CSV_COLUMNS = {
    "STANDARD": ["billId", "accountId", "accountCode", "billDate", "dueDate", "startDate", "endDate",
                 "externalInvoiceDate", "externalInvoiceReference", "billingFrequency", "status", "locked",
                 "currency", "billTotal", "lineItemId", "lineItemType", "description", "productName",
                 "quantity", "unit", "averageUnitPrice", "subtotal"],
    # What an invoice import into Xero reads.
    "XERO": ["ContactName", "InvoiceNumber", "InvoiceDate", "DueDate", "Description", "Quantity",
             "UnitAmount", "LineAmount", "Currency"],
}


def download_range(start: str | None, end: str | None, start_field: str, end_field: str) \
        -> tuple[datetime, datetime] | None:
    """A [start, end) range of at most 31 days, or None when neither end is given."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = start_field if start is None else end_field
        raise MockError.bad_request(f"{missing}: required with {end_field if start is None else start_field}")
    since, until = parse_instant(start, start_field), parse_instant(end, end_field)
    if until <= since:
        raise MockError.bad_request(f"{end_field}: must be later than {start_field}")
    if until - since > timedelta(days=MAX_DOWNLOAD_DAYS):
        raise MockError.bad_request(f"{end_field}: a download covers at most {MAX_DOWNLOAD_DAYS} days")
    return since, until


def in_range(value: str | None, bounds: tuple[datetime, datetime] | None) -> bool:
    if bounds is None:
        return True
    return value is not None and bounds[0] <= instant_of(value) < bounds[1]


def bills_csv(bills: list[tuple[dict, list[dict]]], system: str) -> bytes:
    rows = []
    for bill, items in bills:
        for item in items:
            if system == "XERO":
                rows.append({"ContactName": bill.get("accountCode") or bill.get("accountId"),
                             "InvoiceNumber": bill.get("sequentialInvoiceNumber") or bill["id"],
                             "InvoiceDate": bill.get("billDate"), "DueDate": bill.get("dueDate"),
                             "Description": item.get("description"), "Quantity": item.get("quantity"),
                             "UnitAmount": item.get("averageUnitPrice"), "LineAmount": item.get("subtotal"),
                             "Currency": item.get("currency") or bill.get("currency")})
            else:
                rows.append({**{k: bill.get(k) for k in BILLS_CSV_COLUMNS["STANDARD"]}, "billId": bill["id"],
                             **{k: item.get(k) for k in ("lineItemType", "description", "productName", "quantity",
                                                         "unit", "averageUnitPrice", "subtotal")},
                             "lineItemId": item.get("id")})
    return render(rows, BILLS_CSV_COLUMNS[system], "CSV")


# -- the data explorer -------------------------------------------------------------------

def explorer_dimensions(bill: dict, item: dict, account: dict | None) -> dict:
    values = {
        "account": bill.get("accountCode"), "accountId": bill.get("accountId"),
        "accountName": (account or {}).get("name"), "billId": bill["id"], "billLineItemId": item.get("id"),
        "childAccountId": item.get("childAccountId"), "commitmentId": item.get("commitmentId"),
        "convertedSubtotalUnit": bill.get("currency"), "description": item.get("description"),
        "externalInvoiceReference": bill.get("externalInvoiceReference"), "lineItemType": item.get("lineItemType"),
        "productName": item.get("productName"), "quantityUnit": item.get("unit"),
        "subtotalUnit": item.get("currency") or bill.get("currency"),
    }
    return {k: v for k, v in values.items() if v is not None}


def check_explorer_query(query: dict) -> tuple[datetime, datetime, list[tuple[str, set[str]]], int]:
    since = parse_instant(query["startDate"], "startDate")
    until = parse_instant(query["endDate"], "endDate")
    if until <= since:
        raise MockError.bad_request("endDate: must be later than startDate")
    wanted = []
    # The spec enumerates the dimension names (DimensionQuery.name), so each is one of them.
    for dimension in query.get("dimensions") or []:
        wanted.append((dimension["name"], set(dimension["filter"])))
    return since, until, wanted, query.get("limit") or DEFAULT_EXPLORER_LIMIT


def explorer_row(bill: dict, item: dict, dimensions: dict) -> dict:
    details = {k: bill[k] for k in ("billDate", "billingFrequency", "dueDate", "endDate", "startDate", "status",
                                    "timezone") if k in bill}
    details["billCurrency"] = bill.get("currency")
    details["locked"] = "true" if bill.get("locked") else "false"
    start = item.get("servicePeriodStartDate")
    if start:
        moment = instant_of(start)
        details.update(servicePeriodStartDate=start, year=moment.year, yearMonth=f"{moment:%Y-%m}",
                       month=f"{moment:%m}", day=moment.day, week=f"{moment:%G-W%V}")
    if item.get("servicePeriodEndDate"):
        details["servicePeriodEndDate"] = item["servicePeriodEndDate"]
    measures = {k: float(money(item[k], k)) for k in ("quantity", "units", "subtotal", "convertedSubtotal",
                                                      "conversionRate") if k in item}
    row = {"billDetails": {k: v for k, v in details.items() if v is not None}, "dimensions": dimensions,
           "measures": measures}
    if bill.get("lastCalculatedDate"):
        row["updatedDate"] = bill["lastCalculatedDate"]
    return row
