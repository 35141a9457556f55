"""Tests for mockserver.domain.cron: deriving and evaluating export schedule crons."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone, tzinfo

import pytest

from mockserver.domain import cron
from mockserver.domain.cron import derive_cron, next_run, runs_between
from mockserver.domain.errors import MockError

UTC = timezone.utc
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)
THREE_DAYS_LATER = JAN_1 + timedelta(days=3)


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# --- derive_cron: accepted schedules ---------------------------------------------

@pytest.mark.parametrize(
    ("schedule_type", "period", "offset", "expected"),
    [
        # MINUTE: 15..60, no offset
        ("MINUTE", 15, None, "*/15 * * * *"),
        ("MINUTE", 30, None, "*/30 * * * *"),
        ("MINUTE", 20, None, "*/20 * * * *"),
        ("MINUTE", 60, None, "0 * * * *"),
        # HOUR: offset is minutes past the hour
        ("HOUR", 1, None, "0 * * * *"),
        ("HOUR", 1, 0, "0 * * * *"),
        ("HOUR", 1, 59, "59 * * * *"),
        ("HOUR", 2, 15, "15 */2 * * *"),
        ("HOUR", 23, 1, "1 */23 * * *"),
        # HOUR: whole days up to 3 become a day-of-month step at midnight
        ("HOUR", 24, None, "0 0 * * *"),
        ("HOUR", 24, 30, "30 0 * * *"),
        ("HOUR", 48, 5, "5 0 */2 * *"),
        ("HOUR", 72, 59, "59 0 */3 * *"),
        # DAY: offset is the hour of day
        ("DAY", 1, None, "0 0 * * *"),
        ("DAY", 1, 2, "0 2 * * *"),
        ("DAY", 2, 0, "0 0 */2 * *"),
        ("DAY", 3, 23, "0 23 */3 * *"),
        # no scheduleType: ad hoc, no cron
        (None, None, None, None),
    ],
)
def test_derive_cron_accepts(schedule_type, period, offset, expected):
    assert derive_cron(schedule_type, period, offset) == expected


def test_hour_whole_days_match_day_at_midnight():
    for days in (1, 2, 3):
        assert derive_cron("HOUR", 24 * days, 0) == derive_cron("DAY", days, 0)


# --- derive_cron: rejected schedules ---------------------------------------------

@pytest.mark.parametrize(
    ("schedule_type", "period", "offset", "field", "fragments"),
    [
        # MINUTE boundaries 14 / 61, and any offset
        ("MINUTE", 14, None, "period", ["15", "60", "more frequent than every 15 minutes"]),
        ("MINUTE", 1, None, "period", ["15", "60"]),
        ("MINUTE", 61, None, "period", ["15", "60", "scheduleType HOUR"]),
        ("MINUTE", 25, None, "period", ["divide 60"]),
        ("MINUTE", 59, None, "period", ["divide 60"]),
        ("MINUTE", 15, 0, "offset", ["not valid for MINUTE"]),
        ("MINUTE", 15, 5, "offset", ["not valid for MINUTE"]),
        # HOUR: offset 0..59, period 1..23 or 24/48/72
        ("HOUR", 1, 60, "offset", ["0 and 59"]),
        ("HOUR", 1, -1, "offset", ["0 and 59"]),
        ("HOUR", 25, None, "period", ["1 and 23", "24, 48 or 72"]),
        ("HOUR", 36, None, "period", ["1 and 23", "24, 48 or 72"]),
        ("HOUR", 96, None, "period", ["24, 48 or 72", "3 days"]),
        # DAY: offset 0..23, period 1..3
        ("DAY", 1, 24, "offset", ["0 and 23"]),
        ("DAY", 1, -1, "offset", ["0 and 23"]),
        ("DAY", 4, None, "period", ["1 and 3", "less frequent than every 3 days"]),
        # period: required, integer >= 1
        ("DAY", None, None, "period", ["required"]),
        ("DAY", 0, None, "period", [">= 1"]),
        ("HOUR", -2, None, "period", [">= 1"]),
        ("DAY", 1.5, None, "period", ["integer"]),
        ("DAY", True, None, "period", ["integer"]),
        ("DAY", "1", None, "period", ["integer"]),
        ("DAY", 1, "2", "offset", ["integer"]),
        # scheduleType: known values only; required with period/offset
        ("HOURLY", 1, None, "scheduleType", ["HOUR", "DAY", "MINUTE"]),
        ("day", 1, None, "scheduleType", ["HOUR", "DAY", "MINUTE"]),
        (None, 1, None, "scheduleType", ["HOUR", "DAY", "MINUTE"]),
        (None, None, 2, "scheduleType", ["HOUR", "DAY", "MINUTE"]),
    ],
)
def test_derive_cron_rejects(schedule_type, period, offset, field, fragments):
    with pytest.raises(MockError) as caught:
        derive_cron(schedule_type, period, offset)
    assert caught.value.status == 400
    message = caught.value.message
    assert message.startswith(field + " "), message
    for fragment in fragments:
        assert fragment in message, message


def test_invalid_derived_expression_is_a_bug(monkeypatch):
    # A failing croniter check is not the client's fault: it must not become a 400.
    monkeypatch.setattr(cron.croniter, "is_valid", staticmethod(lambda expression: False))
    with pytest.raises(RuntimeError, match="invalid cron expression"):
        derive_cron("DAY", 1, 2)


def test_module_does_not_import_the_web_stack():
    code = (
        "import sys, mockserver.domain.cron; "
        "bad = [m for m in ('flask', 'connexion') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- run sequences ----------------------------------------------------------------

def test_day_1_offset_2_fires_daily_at_2am():
    runs = runs_between(derive_cron("DAY", 1, 2), JAN_1, THREE_DAYS_LATER)
    assert runs == [at(1, 1, 2), at(1, 2, 2), at(1, 3, 2)]


def test_hour_2_offset_15_fires_at_quarter_past_every_other_hour():
    runs = runs_between(derive_cron("HOUR", 2, 15), JAN_1, THREE_DAYS_LATER)
    assert runs[:3] == [at(1, 1, 0, 15), at(1, 1, 2, 15), at(1, 1, 4, 15)]
    assert runs[-1] == at(1, 3, 22, 15)
    assert all(t.minute == 15 and t.hour % 2 == 0 for t in runs)
    assert all(b - a == timedelta(hours=2) for a, b in zip(runs, runs[1:]))


def test_minute_15_fires_every_quarter_hour():
    runs = runs_between(derive_cron("MINUTE", 15, None), JAN_1, THREE_DAYS_LATER)
    # start-exclusive: midnight on Jan 1 is not a run; end-inclusive: midnight Jan 4 is.
    assert runs[0] == at(1, 1, 0, 15)
    assert runs[-1] == THREE_DAYS_LATER
    assert all(b - a == timedelta(minutes=15) for a, b in zip(runs, runs[1:]))


@pytest.mark.parametrize(
    ("schedule_type", "period", "offset", "count"),
    [
        ("DAY", 1, 2, 3),  # 02:00 on Jan 1, 2, 3
        ("HOUR", 2, 15, 36),  # 12 a day
        ("MINUTE", 15, None, 288),  # 96 a day: 00:15 Jan 1 .. 00:00 Jan 4 inclusive
    ],
)
def test_three_day_run_counts(schedule_type, period, offset, count):
    expression = derive_cron(schedule_type, period, offset)
    assert len(runs_between(expression, JAN_1, THREE_DAYS_LATER)) == count


def test_runs_between_bounds_are_start_exclusive_end_inclusive():
    expression = derive_cron("DAY", 1, 2)
    assert runs_between(expression, at(1, 1, 2), at(1, 2, 2)) == [at(1, 2, 2)]
    assert runs_between(expression, at(1, 1, 2), at(1, 1, 2)) == []
    assert runs_between(expression, at(1, 2), at(1, 1)) == []  # end before start


def test_runs_between_is_bounded(monkeypatch):
    monkeypatch.setattr(cron, "MAX_RUNS", 10)
    expression = derive_cron("MINUTE", 15, None)
    assert len(runs_between(expression, JAN_1, JAN_1 + timedelta(minutes=150))) == 10
    with pytest.raises(ValueError, match="more than 10 runs"):
        runs_between(expression, JAN_1, JAN_1 + timedelta(minutes=165))


def test_runs_between_real_limit_is_100_000():
    assert cron.MAX_RUNS == 100_000


# --- next_run -------------------------------------------------------------------------

def test_next_run_is_strictly_after():
    expression = derive_cron("DAY", 1, 2)
    assert next_run(expression, at(1, 1, 1, 59)) == at(1, 1, 2)
    assert next_run(expression, at(1, 1, 2)) == at(1, 2, 2)
    assert next_run(expression, at(1, 1, 2) + timedelta(microseconds=1)) == at(1, 2, 2)


def test_next_run_day_2_resets_at_month_start():
    # "*/2" in day-of-month means days 1, 3, 5, ... of each month, so the step
    # restarts on the 1st: after the 31st the next run is one day later, and in
    # February (28 days in 2026) the 27th is followed by March 1st, two days later.
    expression = derive_cron("DAY", 2, None)
    assert next_run(expression, at(1, 29)) == at(1, 31)
    assert next_run(expression, at(1, 31)) == at(2, 1)
    assert next_run(expression, at(2, 27)) == at(3, 1)


@pytest.mark.parametrize("period", [15, 20, 30, 60])
def test_minute_runs_are_evenly_spaced(period):
    runs = runs_between(derive_cron("MINUTE", period, None), JAN_1, JAN_1 + timedelta(days=1))
    gaps = {b - a for a, b in zip(runs, runs[1:])}
    assert gaps == {timedelta(minutes=period)}


def test_times_are_utc_in_and_out():
    expression = derive_cron("DAY", 1, 2)
    plus_two = timezone(timedelta(hours=2))
    # 03:30 at UTC+2 is 01:30 UTC, so the next 02:00 UTC run is the same day.
    result = next_run(expression, datetime(2026, 1, 1, 3, 30, tzinfo=plus_two))
    assert result == at(1, 1, 2)
    assert result.utcoffset() == timedelta(0)
    assert all(t.utcoffset() == timedelta(0) for t in runs_between(expression, JAN_1, THREE_DAYS_LATER))


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run("0 2 * * *", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        runs_between("0 2 * * *", datetime(2026, 1, 1), THREE_DAYS_LATER)


# --- the whole message of each refusal ----------------------------------------------

@pytest.mark.parametrize(("schedule_type", "period", "offset", "message"), [
    (None, 1, None, "scheduleType is required when period or offset is given; it must be one of HOUR, DAY, MINUTE"),
    ("WEEK", 1, None, "scheduleType must be one of HOUR, DAY, MINUTE, got 'WEEK'"),
    ("DAY", 1, 24, "offset must be between 0 and 23 for scheduleType DAY (hour of the day)"),
    ("HOUR", 1, 60, "offset must be between 0 and 59 for scheduleType HOUR (minutes past the hour)"),
    ("HOUR", 25, None, "period must be between 1 and 23, or 24, 48 or 72, for scheduleType HOUR: "
                       "longer periods must be whole days and not less frequent than every 3 days"),
    ("HOUR", 96, None, "period must be between 1 and 23, or 24, 48 or 72, for scheduleType HOUR: "
                       "longer periods must be whole days and not less frequent than every 3 days"),
    ("MINUTE", 61, None, "period must be between 15 and 60 for scheduleType MINUTE; "
                         "use scheduleType HOUR for longer intervals"),
    ("MINUTE", 25, None, "period 25 is not valid for scheduleType MINUTE: it must divide 60 "
                         "(15, 20, 30 or 60) so that runs stay evenly spaced"),
])
def test_each_refusal_says_exactly_what_is_allowed(schedule_type, period, offset, message):
    with pytest.raises(MockError) as caught:
        derive_cron(schedule_type, period, offset)
    assert (caught.value.status, caught.value.message) == (400, message)


class _NoOffset(tzinfo):
    def utcoffset(self, moment):
        return None


def test_a_datetime_whose_zone_gives_no_offset_is_naive_too():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run("0 * * * *", datetime(2026, 1, 1, tzinfo=_NoOffset()))


def test_fire_times_are_utc_whatever_the_machines_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        paris = timezone(timedelta(hours=1))
        fire = next_run("0 * * * *", datetime(2026, 1, 1, 10, 30, tzinfo=paris))
        runs = runs_between("0 * * * *", datetime(2026, 1, 1, 10, 30, tzinfo=paris),
                            datetime(2026, 1, 1, 11, 30, tzinfo=paris))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert fire == datetime(2026, 1, 1, 10, 0, tzinfo=UTC) and fire.utcoffset() == timedelta(0)
    assert [run.utcoffset() for run in runs] == [timedelta(0)]
