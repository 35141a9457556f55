"""Billing periods: which days a bill covers, and the dates a bill shows.

m3ter bills an account for a billing period given by its plan template's ``billFrequency``
(DAILY, WEEKLY, MONTHLY, ANNUALLY, or AD_HOC) and ``billFrequencyInterval`` (every n
periods), counted from an epoch: the account plan's ``billEpoch``, else the account's, else
the bill job's ``dayEpoch``/``weekEpoch``/``monthEpoch``/``yearEpoch``, else the
organization configuration's (m3ter's defaults 2022-01-01, 2022-01-04, 2022-01-01,
2022-01-01). Periods are ``[start, end)`` in whole days (UTC), ``epoch + k * step`` for every
integer k, before the epoch too; a month step keeps the epoch's day of month where the month
has it (an epoch on the 31st gives Jan 31, Feb 28, Mar 31...).

An AD_HOC plan has no periods of its own: it is billed from its start to the day a bill job
names. Pure data in and out.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone

from .clock import from_iso
from .errors import MockError

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "ANNUALLY")
AD_HOC = "AD_HOC"
EPOCH_FIELDS = {"DAILY": "dayEpoch", "WEEKLY": "weekEpoch", "MONTHLY": "monthEpoch", "ANNUALLY": "yearEpoch"}
DEFAULT_EPOCHS = {"DAILY": date(2022, 1, 1), "WEEKLY": date(2022, 1, 4), "MONTHLY": date(2022, 1, 1),
                  "ANNUALLY": date(2022, 1, 1)}

Period = tuple[date, date]


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def shift(epoch: date, frequency: str, steps: int) -> date:
    """``epoch`` moved by ``steps`` periods of one ``frequency`` unit (steps may be negative)."""
    if frequency == "DAILY":
        return epoch + timedelta(days=steps)
    if frequency == "WEEKLY":
        return epoch + timedelta(weeks=steps)
    if frequency == "MONTHLY":
        return _add_months(epoch, steps)
    if frequency == "ANNUALLY":
        return _add_months(epoch, 12 * steps)
    raise MockError.bad_request(f"billingFrequency: {frequency!r} is not one of {list(FREQUENCIES)}")


def _units_between(epoch: date, day: date, frequency: str) -> int:
    """A lower estimate of how many frequency units lie from ``epoch`` to ``day`` (exact for
    days and weeks, within one for months and years)."""
    if frequency == "DAILY":
        return (day - epoch).days
    if frequency == "WEEKLY":
        return (day - epoch).days // 7
    months = (day.year - epoch.year) * 12 + day.month - epoch.month
    return months if frequency == "MONTHLY" else months // 12


def period_index(day: date, frequency: str, interval: int, epoch: date) -> int:
    """k of the period ``[epoch + k * step, epoch + (k + 1) * step)`` that holds ``day``."""
    if interval < 1:
        raise MockError.bad_request(f"billFrequencyInterval: {interval} is below 1")
    k = _units_between(epoch, day, frequency) // interval
    # The estimate is off by at most one period either way (month lengths): step to it.
    while shift(epoch, frequency, k * interval) > day:
        k -= 1
    while shift(epoch, frequency, (k + 1) * interval) <= day:
        k += 1
    return k


def period_containing(day: date, frequency: str, interval: int, epoch: date) -> Period:
    """The ``[start, end)`` period of ``interval`` units counted from ``epoch`` that holds ``day``."""
    k = period_index(day, frequency, interval, epoch)
    return shift(epoch, frequency, k * interval), shift(epoch, frequency, (k + 1) * interval)


def period_ends_between(after: date, until: date, frequency: str, interval: int, epoch: date) -> list[Period]:
    """Every period whose end day E has ``after < E <= until`` (the periods a clock moving
    from ``after`` to ``until`` sees close), oldest first."""
    periods = []
    start, end = period_containing(after, frequency, interval, epoch)  # so end > after
    while end <= until:
        periods.append((start, end))
        start, end = end, period_containing(end, frequency, interval, epoch)[1]
    return periods


def epoch_for(frequency: str, *sources: dict | None) -> date:
    """The epoch of ``frequency``: the first source that has one (``billEpoch`` of an account
    plan or account, or the frequency's own epoch field of a bill job or organization
    configuration), else m3ter's default."""
    for source in sources:
        if not source:
            continue
        for name in ("billEpoch", EPOCH_FIELDS.get(frequency, "")):
            value = source.get(name)
            if value:
                return parse_day(value, name)
    return DEFAULT_EPOCHS.get(frequency, date(2022, 1, 1))


def parse_day(value: str, field: str) -> date:
    """A date, or the day of a date-time (UTC)."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = from_iso(value)
        return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).date()
    except (TypeError, ValueError):
        raise MockError.bad_request(f"{field}: {value!r} is not a date like 2024-09-30") from None


def instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def millis(day: date) -> int:
    """Midnight UTC of ``day`` in epoch milliseconds (how measurements are stored)."""
    return int(instant(day).timestamp()) * 1000


def moment_millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> tuple[datetime, datetime] | None:
    """The common part of two ``[start, end)`` ranges, or None when they do not meet."""
    start, end = max(a[0], b[0]), min(a[1], b[1])
    return (start, end) if start < end else None


def bill_dates(period: Period, *, days_before_due: int, invoice_date_rule: str | None,
               bill_date: date | None = None, due_date: date | None = None,
               external_invoice_date: date | None = None) -> dict[str, str]:
    """A bill's dates for a period billed in arrears: ``billDate`` the day after the period
    (its exclusive end), ``dueDate`` ``days_before_due`` days later, ``externalInvoiceDate``
    the first day of the next period (``FIRST_DAY_OF_NEXT_PERIOD``, m3ter's default) or the
    period's last day (``LAST_DAY_OF_ARREARS``). A bill job's own dates win."""
    billed = bill_date or period[1]
    invoice = external_invoice_date or (
        period[1] - timedelta(days=1) if invoice_date_rule == "LAST_DAY_OF_ARREARS" else period[1])
    return {"billDate": billed.isoformat(),
            "dueDate": (due_date or billed + timedelta(days=days_before_due)).isoformat(),
            "externalInvoiceDate": invoice.isoformat()}
