"""Cron expressions for Data Export Schedules.

m3ter describes *when* a Data Export Schedule runs with ``scheduleType``
(``HOUR`` | ``DAY`` | ``MINUTE``), ``period`` (integer >= 1) and an optional
``offset``, and answers with a derived ``cronExpression`` (standard 5-field
cron, UTC). Its documented limits are: executions cannot be more frequent than
every 15 minutes, and the lowest frequency is every 3 days. For ``DAY`` the
offset is in hours, for ``HOUR`` it is in minutes, and it is not valid for
``MINUTE``.

m3ter does not document the exact expressions, so these are the mock's
interpretation (every violation is a 400 naming the field and allowed range):

* No ``scheduleType``: the schedule is not clock-driven (ad hoc) and has no
  cron expression (``None``). Giving ``period`` or ``offset`` without a
  ``scheduleType`` is a 400 naming ``scheduleType``.
* ``period`` is required with a ``scheduleType`` and must be an integer >= 1.
* ``offset`` absent means 0. Through the API an explicit 0 never arrives: m3ter's
  spec (and this project's) says ``offset >= 1``, so Connexion refuses it first; this
  function would read it as absent.
* ``MINUTE``: ``period`` 15, 20, 30 or 60 gives ``*/period * * * *`` (60 gives
  ``0 * * * *``). Below 15 is more frequent than every 15 minutes; above 60
  should be written with ``scheduleType`` ``HOUR``; a period between that does
  not divide 60 (say 25) is a 400, because ``*/25`` restarts at :00 and would
  run 10 minutes after :50, breaking the 15-minute floor. Any offset is a 400.
* ``HOUR``: offset is minutes past the hour, 0..59. ``period`` 1..23 gives
  ``<offset> */<period> * * *`` (1 gives ``<offset> * * * *``). ``period``
  24, 48 or 72 is the same as ``DAY`` 1/2/3 at hour 0 and that minute:
  ``<offset> 0 */<days> * *`` (24 gives ``<offset> 0 * * *``). Any other
  period above 23 is a 400.
* ``DAY``: offset is the hour of day, 0..23. ``period`` 1..3 gives
  ``0 <offset> */<period> * *`` (1 gives ``0 <offset> * * *``); above 3 is
  less frequent than every 3 days.

Cron step fields restart at the start of their enclosing unit, so a period
that does not divide the unit evenly has one short gap per unit:

* ``DAY`` 2 (``*/2`` in day-of-month) fires on days 1, 3, ..., then again on
  the 1st of the next month -- after the 31st that is one day later.
* ``HOUR`` 5 (``*/5`` in hours) fires at 0, 5, 10, 15, 20 and again at 0.
* (``MINUTE`` avoids this by accepting only periods that divide 60.)

This module is pure Python (no web framework): ``derive_cron`` validates and
builds the expression; ``next_run`` and ``runs_between`` evaluate one with
croniter in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone

from croniter import croniter

from mockserver.domain.errors import MockError

SCHEDULE_TYPES = ("HOUR", "DAY", "MINUTE")

MIN_MINUTES = 15  # "Executions cannot be more frequent than every 15 minutes."
MAX_DAYS = 3  # "Lowest frequency is every 3 days."

# Upper bound on runs_between, so a wide window over a 15-minute schedule
# (96 runs a day) cannot make one request build an unbounded list.
MAX_RUNS = 100_000


def derive_cron(schedule_type: str | None, period: int | None, offset: int | None) -> str | None:
    """The cron expression for a schedule, or None for an ad hoc schedule.

    Raises ``MockError`` (400) naming ``scheduleType``, ``period`` or ``offset``.
    """
    if schedule_type is None:
        if period is not None or offset is not None:
            raise MockError.bad_request(
                "scheduleType is required when period or offset is given; "
                f"it must be one of {', '.join(SCHEDULE_TYPES)}"
            )
        return None
    if schedule_type not in SCHEDULE_TYPES:
        raise MockError.bad_request(
            f"scheduleType must be one of {', '.join(SCHEDULE_TYPES)}, got {schedule_type!r}"
        )
    if period is None:
        raise MockError.bad_request(f"period is required for scheduleType {schedule_type}")
    _require_int("period", period)
    if period < 1:
        raise MockError.bad_request(f"period must be an integer >= 1, got {period}")
    if offset is not None:
        # Only the type here: the allowed range depends on the scheduleType.
        _require_int("offset", offset)

    if schedule_type == "MINUTE":
        expression = _minute(period, offset)
    elif schedule_type == "HOUR":
        expression = _hour(period, offset or 0)
    else:
        expression = _day(period, offset or 0)

    # Every branch above builds a valid expression by construction; if croniter
    # disagrees the derivation is wrong, which is a bug and not a client error.
    if not croniter.is_valid(expression):
        raise RuntimeError(f"derived an invalid cron expression {expression!r}")
    return expression


def next_run(cron_expression: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware datetimes, UTC out)."""
    return croniter(cron_expression, _utc(after)).get_next(datetime)


def runs_between(cron_expression: str, start: datetime, end: datetime) -> list[datetime]:
    """Fire times ``t`` with ``start < t <= end``, in order (UTC).

    Raises ``ValueError`` if more than ``MAX_RUNS`` would be produced.
    """
    start, end = _utc(start), _utc(end)
    runs: list[datetime] = []
    # croniter's get_next is already start-exclusive, which matches start < t.
    iterator = croniter(cron_expression, start)
    while (fire := iterator.get_next(datetime)) <= end:
        if len(runs) == MAX_RUNS:
            raise ValueError(f"more than {MAX_RUNS} runs between {start} and {end}")
        runs.append(fire)
    return runs


def _minute(period: int, offset: int | None) -> str:
    if offset is not None:
        raise MockError.bad_request("offset is not valid for MINUTE; omit offset")
    if period < MIN_MINUTES:
        raise MockError.bad_request(
            f"period must be between {MIN_MINUTES} and 60 for scheduleType MINUTE: "
            f"executions cannot be more frequent than every {MIN_MINUTES} minutes"
        )
    if period > 60:
        raise MockError.bad_request(
            f"period must be between {MIN_MINUTES} and 60 for scheduleType MINUTE; "
            "use scheduleType HOUR for longer intervals"
        )
    # A */n minute step restarts at :00 every hour, so only periods that divide 60 keep
    # every gap equal to the period (and so at least 15 minutes).
    if 60 % period:
        raise MockError.bad_request(
            f"period {period} is not valid for scheduleType MINUTE: it must divide 60 "
            "(15, 20, 30 or 60) so that runs stay evenly spaced"
        )
    if period == 60:
        return "0 * * * *"
    return f"*/{period} * * * *"


def _hour(period: int, minute: int) -> str:
    if not 0 <= minute <= 59:
        raise MockError.bad_request(
            "offset must be between 0 and 59 for scheduleType HOUR (minutes past the hour)"
        )
    if period <= 23:
        hours = "*" if period == 1 else f"*/{period}"
        return f"{minute} {hours} * * *"
    # The hour field cannot step past a day, so whole-day periods become a
    # day-of-month step at midnight, exactly like DAY with offset 0.
    days, rest = divmod(period, 24)
    if rest == 0 and days <= MAX_DAYS:
        return f"{minute} 0 {'*' if days == 1 else f'*/{days}'} * *"
    raise MockError.bad_request(
        "period must be between 1 and 23, or 24, 48 or 72, for scheduleType HOUR: "
        f"longer periods must be whole days and not less frequent than every {MAX_DAYS} days"
    )


def _day(period: int, hour: int) -> str:
    if not 0 <= hour <= 23:
        raise MockError.bad_request(
            "offset must be between 0 and 23 for scheduleType DAY (hour of the day)"
        )
    if period > MAX_DAYS:
        raise MockError.bad_request(
            f"period must be between 1 and {MAX_DAYS} for scheduleType DAY: "
            f"executions cannot be less frequent than every {MAX_DAYS} days"
        )
    days = "*" if period == 1 else f"*/{period}"
    return f"0 {hour} {days} * *"


def _require_int(field: str, value: object) -> None:
    # bool is an int subclass, but true/false in JSON is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MockError.bad_request(f"{field} must be an integer, got {value!r}")


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are ambiguous; schedules are defined in UTC only.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(timezone.utc)
