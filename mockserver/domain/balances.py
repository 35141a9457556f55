"""Balance money and schedules: the amounts a Balance's transactions add up to, and when a
transaction or charge schedule runs.

Money is added as ``Decimal`` (from the number's shortest decimal form, so 0.1 + 0.2 is
0.3) and handed back as a JSON number: an integer when whole.

Transactions: one with a positive amount is a credit, one with a negative amount a debit
(until the billing engine draws Balances down, a negative transaction is the only debit).

Schedules run at ``start + k * step`` (k = 0, 1, ...) while before ``end`` (exclusive);
``step`` is ``interval`` days (DAILY), weeks (WEEKLY), months (MONTHLY) or years
(ANNUALLY), a month step keeping the start's day of month where the month has it (Jan 31,
Feb 28, Mar 31...). A charge schedule billed in advance creates each charge when its
period starts; billed in arrears, when it ends (the last one at the service period's end).
``nextRun`` is the first run at or after now, ``previousRun`` the last one before now.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Iterator

from .clock import from_iso, utc
from .errors import MockError

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "ANNUALLY")
MAX_RUNS = 100_000  # a schedule is walked at most this far (a daily one for 270 years)


# -- money -----------------------------------------------------------------------------

def money(value: Any) -> Decimal:
    """A JSON number as an exact decimal (a float by its shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def as_number(value: Decimal) -> int | float:
    """A decimal amount as a JSON number: an integer when whole."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


@dataclass(frozen=True)
class Summary:
    total_credit: Decimal
    total_debit: Decimal
    initial_credit: Decimal
    expired: Decimal
    rollover_consumed: Decimal
    balance_consumed: Decimal

    def view(self) -> dict:
        return {"totalCreditAmount": as_number(self.total_credit), "totalDebitAmount": as_number(self.total_debit),
                "initialCreditAmount": as_number(self.initial_credit),
                "expiredBalanceAmount": as_number(self.expired),
                "rolloverConsumed": as_number(self.rollover_consumed),
                "balanceConsumed": as_number(self.balance_consumed)}


def summarize(amounts: Iterable[Any], *, rollover_amount: Any = None, ended: bool = False) -> Summary:
    """The summary of a Balance's transaction amounts (oldest first). Once the Balance has
    ended (``ended``), what remains beyond its rollover amount has expired."""
    credits = debits = Decimal(0)
    initial: Decimal | None = None
    for amount in amounts:
        value = money(amount)
        if value > 0:
            credits += value
            initial = value if initial is None else initial
        elif value < 0:
            debits -= value
    rollover = money(rollover_amount) if rollover_amount is not None else Decimal(0)
    expired = max(Decimal(0), credits - debits - rollover) if ended else Decimal(0)
    return Summary(total_credit=credits, total_debit=debits, initial_credit=initial or Decimal(0),
                   expired=expired, rollover_consumed=Decimal(0), balance_consumed=debits)


# -- schedules -----------------------------------------------------------------------------

def parse_instant(value: Any, field_name: str) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    try:
        return utc(from_iso(str(value)))
    except ValueError:
        raise MockError.bad_request(f"{field_name}: {value!r} is not an ISO-8601 date-time") from None


def _add_months(start: datetime, months: int) -> datetime:
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def run_at(start: datetime, frequency: str, interval: int, k: int) -> datetime:
    """The ``k``-th run of a schedule (the 0th is its start)."""
    if frequency == "DAILY":
        return start + timedelta(days=interval * k)
    if frequency == "WEEKLY":
        return start + timedelta(weeks=interval * k)
    if frequency == "MONTHLY":
        return _add_months(start, interval * k)
    if frequency == "ANNUALLY":
        return _add_months(start, 12 * interval * k)
    raise MockError.bad_request(f"frequency: {frequency!r} is not one of {list(FREQUENCIES)}")


def check_period(start: datetime, end: datetime, start_field: str, end_field: str) -> None:
    if end <= start:
        raise MockError.bad_request(f"{end_field}: must be after {start_field} (the end is exclusive)")


def run_times(start: datetime, end: datetime, frequency: str, interval: int) -> Iterator[datetime]:
    """Every run from ``start`` on, before ``end``."""
    for k in range(MAX_RUNS):
        at = run_at(start, frequency, interval, k)
        if at >= end:
            return
        yield at


def charge_times(start: datetime, end: datetime, frequency: str, interval: int,
                 in_advance: bool) -> Iterator[datetime]:
    """When a charge schedule creates its charges: at each period's start (in advance) or
    end (in arrears, the last period ending at ``end``)."""
    for k in range(MAX_RUNS):
        period_start = run_at(start, frequency, interval, k)
        if period_start >= end:
            return
        yield period_start if in_advance else min(run_at(start, frequency, interval, k + 1), end)


def previous_and_next(times: Iterable[datetime], now: datetime) -> tuple[datetime | None, datetime | None]:
    previous = None
    for at in times:
        if at >= now:
            return previous, at
        previous = at
    return previous, None
