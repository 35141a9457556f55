"""Balance money and schedule times (mockserver.domain.balances)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from mockserver.domain import balances as rules
from mockserver.domain.errors import MockError


def at(year, month, day, hour=0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


def test_money_adds_exactly_and_comes_back_as_a_json_number():
    assert rules.money(0.1) + rules.money(0.2) == Decimal("0.3")
    assert rules.as_number(rules.money(0.1) + rules.money(0.2)) == 0.3
    assert rules.as_number(Decimal("2.50") + Decimal("0.50")) == 3
    assert isinstance(rules.as_number(Decimal("3.0")), int)
    assert rules.money(7) == Decimal(7)
    with pytest.raises(TypeError):
        rules.money(True)


def test_the_summary_of_credits_and_debits():
    summary = rules.summarize([100, 25.5, -40.25, 0, 10]).view()
    assert summary == {"totalCreditAmount": 135.5, "totalDebitAmount": 40.25, "initialCreditAmount": 100,
                       "expiredBalanceAmount": 0, "rolloverConsumed": 0, "balanceConsumed": 40.25}


def test_what_expires_when_the_balance_ends_is_what_remains_beyond_the_rollover():
    assert rules.summarize([100, -40], rollover_amount=10, ended=True).view()["expiredBalanceAmount"] == 50
    assert rules.summarize([100, -40], rollover_amount=80, ended=True).view()["expiredBalanceAmount"] == 0
    assert rules.summarize([100, -40], ended=True).view()["expiredBalanceAmount"] == 60
    assert rules.summarize([100, -40], rollover_amount=10).view()["expiredBalanceAmount"] == 0


def test_no_transactions_sum_to_zero():
    assert set(rules.summarize([]).view().values()) == {0}


def test_a_month_step_keeps_the_day_where_the_month_has_it():
    start = at(2026, 1, 31)
    assert [rules.run_at(start, "MONTHLY", 1, k) for k in range(4)] == [
        at(2026, 1, 31), at(2026, 2, 28), at(2026, 3, 31), at(2026, 4, 30)]
    assert rules.run_at(at(2024, 2, 29), "ANNUALLY", 1, 1) == at(2025, 2, 28)
    assert rules.run_at(at(2026, 11, 15), "MONTHLY", 3, 1) == at(2027, 2, 15)


def test_day_and_week_steps():
    assert rules.run_at(at(2026, 1, 1), "DAILY", 2, 3) == at(2026, 1, 7)
    assert rules.run_at(at(2026, 1, 1), "WEEKLY", 1, 2) == at(2026, 1, 15)


def test_runs_stop_before_the_exclusive_end():
    assert list(rules.run_times(at(2026, 1, 1), at(2026, 1, 15), "WEEKLY", 1)) == [at(2026, 1, 1), at(2026, 1, 8)]


def test_charges_come_at_each_period_start_in_advance_or_its_end_in_arrears():
    start, end = at(2026, 1, 15), at(2026, 4, 1)
    assert list(rules.charge_times(start, end, "MONTHLY", 1, True)) == [at(2026, 1, 15), at(2026, 2, 15),
                                                                         at(2026, 3, 15)]
    assert list(rules.charge_times(start, end, "MONTHLY", 1, False)) == [at(2026, 2, 15), at(2026, 3, 15),
                                                                          at(2026, 4, 1)]


def test_previous_and_next_run_around_now():
    times = [at(2026, 1, 1), at(2026, 2, 1), at(2026, 3, 1)]
    assert rules.previous_and_next(times, at(2026, 2, 1)) == (at(2026, 1, 1), at(2026, 2, 1))
    assert rules.previous_and_next(times, at(2025, 1, 1)) == (None, at(2026, 1, 1))
    assert rules.previous_and_next(times, at(2027, 1, 1)) == (at(2026, 3, 1), None)


def test_a_period_ends_after_it_starts():
    rules.check_period(at(2026, 1, 1), at(2026, 1, 2), "startDate", "endDate")
    with pytest.raises(MockError) as caught:
        rules.check_period(at(2026, 1, 1), at(2026, 1, 1), "startDate", "endDate")
    assert caught.value.message == "endDate: must be after startDate (the end is exclusive)"


def test_instants():
    assert rules.parse_instant("2026-01-01T00:00:00Z", "startDate") == at(2026, 1, 1)
    assert rules.parse_instant("2026-01-01T02:00:00+02:00", "startDate") == at(2026, 1, 1)
    with pytest.raises(MockError) as caught:
        rules.parse_instant("soon", "startDate")
    assert (caught.value.status, caught.value.message) == (400, "startDate: 'soon' is not an ISO-8601 date-time")
