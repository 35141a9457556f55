"""The usage query (``POST /usage/query``) and the rows of usage exports.

Pure rules: the backend hands in the organization's meters and the measurements it
selected; this module checks the request, filters the measurements and shapes the rows.

Rows, the same in a query's ``data`` and in a usage export file:

* Without ``aggregations``, one row per measurement: its data fields by code, then ``uid``
  (when given), ``ts`` (and ``ets``), ``accountId``, ``accountCode``, ``meterId``, ``meterCode``.
* With ``aggregations``, one row per group: ``startDate`` / ``endDate`` (the query's period,
  or the time group's bucket within it), ``timeGroup`` (a TIME group's bucket start),
  ``accountId`` (an ACCOUNT group), the field code of each DIMENSION group, and one column
  ``<fieldCode>_<function>`` (``gb_sum``) per aggregation. Two aggregations with the same
  field code and function on different meters are one column over both meters' values.
  A group is there when at least one of the aggregations' measurements falls in it.

Time buckets are UTC: an HOUR, a DAY, a WEEK from Monday, a calendar MONTH, QUARTER or
YEAR; WHOLE_PERIOD is one bucket. The query answers the most recent rows first (newest
``ts``, newest bucket) and at most ``limit`` of them (20,000 when not given);
``hasMoreData`` says whether there were more. Exports hold every row, oldest first.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from operator import attrgetter, is_not, itemgetter, methodcaller
from typing import Optional

from .aggregation import aggregate
from .clock import from_iso
from .errors import MockError

MAX_LIMIT = 20000
NUMBER_CATEGORIES = frozenset({"MEASURE", "INCOME", "COST"})
MEASURE_FUNCTIONS = ("SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN")
DIMENSION_FUNCTIONS = ("COUNT", "UNIQUE")
FREQUENCIES = ("HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "WHOLE_PERIOD")

_HOUR = 3_600_000
_DAY = 24 * _HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Every instant a date-time can name is in [FIRST_MS, LAST_MS).
FIRST_MS = (datetime.min.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)
LAST_MS = (datetime.max.replace(tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1) + 1


# -- times ------------------------------------------------------------------------------------

def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as m3ter writes a date-time (UTC, milliseconds, ``Z``)."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(value: object, field_name: str) -> int:
    if not isinstance(value, str):
        raise MockError.bad_request(f"{field_name}: required, a date-time like 2026-01-01T00:00:00Z")
    try:
        moment = from_iso(value)
    except ValueError:
        raise MockError.bad_request(f"{field_name}: {value!r} is not a date-time like 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        moment.astimezone(timezone.utc)
    except OverflowError:
        raise MockError.bad_request(f"{field_name}: {value!r} is outside the years 1 to 9999 in UTC") from None
    return epoch_ms(moment)


def _month_start(moment: datetime, months_per_bucket: int) -> datetime:
    month = (moment.month - 1) // months_per_bucket * months_per_bucket + 1
    return datetime(moment.year, month, 1, tzinfo=timezone.utc)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=total // 12, month=total % 12 + 1)


class Buckets:
    """The time bucket ``[start, end)`` (epoch ms) of a timestamp, for one frequency."""

    def __init__(self, frequency: str, start_ms: int, end_ms: int):
        self.frequency = frequency
        self.whole = (start_ms, end_ms)
        self._by_day: dict[int, tuple[int, int]] = {}

    def of(self, ts: int) -> tuple[int, int]:
        frequency = self.frequency
        if frequency == "HOUR":
            start = ts - ts % _HOUR
            return start, start + _HOUR
        day = ts - ts % _DAY
        if frequency == "DAY":
            return day, day + _DAY
        if frequency == "WHOLE_PERIOD":
            return self.whole
        if frequency == "WEEK":
            # 1970-01-01 was a Thursday: three days after a Monday.
            start = day - ((day // _DAY + 3) % 7) * _DAY
            return start, start + 7 * _DAY
        cached = self._by_day.get(day)
        if cached is None:
            months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[frequency]
            start = _month_start(_EPOCH + timedelta(milliseconds=day), months)
            try:
                end = epoch_ms(_add_months(start, months))
            except ValueError:  # past the year 9999: the bucket runs to the end of time
                end = LAST_MS
            cached = self._by_day[day] = (epoch_ms(start), end)
        return cached


def export_period(time_period: str, at: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a usage export schedule's ``timePeriod`` names at run time ``at``:
    calendar periods (TODAY, YESTERDAY, PREVIOUS_*) are whole UTC days, weeks from Monday,
    months, quarters and years; ``*_TO_DATE`` and ``LAST_*`` periods end at ``at``."""
    at = at.astimezone(timezone.utc)
    today = datetime(at.year, at.month, at.day, tzinfo=timezone.utc)
    week = today - timedelta(days=today.weekday())
    month = _month_start(today, 1)
    quarter = _month_start(today, 3)
    year = _month_start(today, 12)
    periods = {
        "TODAY": (today, at), "YESTERDAY": (today - timedelta(days=1), today),
        "WEEK_TO_DATE": (week, at), "MONTH_TO_DATE": (month, at), "YEAR_TO_DATE": (year, at),
        "PREVIOUS_WEEK": (week - timedelta(days=7), week), "PREVIOUS_MONTH": (_add_months(month, -1), month),
        "PREVIOUS_QUARTER": (_add_months(quarter, -3), quarter), "PREVIOUS_YEAR": (_add_months(year, -12), year),
        "LAST_12_HOURS": (at - timedelta(hours=12), at), "LAST_7_DAYS": (at - timedelta(days=7), at),
        "LAST_30_DAYS": (at - timedelta(days=30), at), "LAST_35_DAYS": (at - timedelta(days=35), at),
        "LAST_90_DAYS": (at - timedelta(days=90), at), "LAST_120_DAYS": (at - timedelta(days=120), at),
        "LAST_YEAR": (_year_before(at), at),
    }
    if time_period not in periods:
        raise MockError.bad_request(f"timePeriod: {time_period!r} is not one of {', '.join(periods)}")
    return periods[time_period]


def _year_before(at: datetime) -> datetime:
    try:
        return at.replace(year=at.year - 1)
    except ValueError:  # 29 February
        return at.replace(year=at.year - 1, day=28)


# -- the request ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    function: str
    fields: Mapping[str, str]  # meter id -> field code


@dataclass(frozen=True)
class Group:
    name: str
    kind: str
    frequency: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)  # DIMENSION: meter id -> field code


@dataclass(frozen=True)
class UsageQuery:
    start_ms: int
    end_ms: int
    meter_ids: tuple[str, ...]        # the meters whose measurements are read
    account_ids: tuple[str, ...] | None
    filters: Mapping[str, tuple[tuple[str, frozenset[str]], ...]]  # meter id -> (field, allowed values)
    columns: tuple[Column, ...] = ()
    groups: tuple[Group, ...] = ()

    @property
    def aggregated(self) -> bool:
        return bool(self.columns)


def _field_kinds(meter: Mapping) -> dict[str, str]:
    """Field code -> MEASURE (a number field) or DIMENSION (a text field)."""
    kinds = {}
    for item in list(meter.get("dataFields") or []) + list(meter.get("derivedFields") or []):
        if isinstance(item, Mapping) and item.get("code"):
            kinds[item["code"]] = "MEASURE" if item.get("category") in NUMBER_CATEGORIES else "DIMENSION"
    return kinds


def check_query(body: Mapping, meters: Mapping[str, Mapping], accounts: Mapping[str, object], *,
                start_ms: int, end_ms: int, strict: bool = True) -> UsageQuery:
    """The request as a ``UsageQuery``, or a 400 naming the first field that is wrong.

    ``meters``: the organization's meters by id; ``accounts``: its account ids (any mapping
    keyed by id). ``strict`` (the query): an unknown meter, account or field is a 400.
    Not strict (an export run, whose meters may have gone since it was saved): what no
    longer exists selects nothing, but a request that cannot be aggregated is still a 400."""
    if end_ms <= start_ms:
        raise MockError.bad_request("endDate: must be later than startDate")
    kinds = {meter_id: _field_kinds(meter) for meter_id, meter in meters.items()}

    def meter_of(meter_id: object, where: str) -> bool:
        if meter_id in meters:
            return True
        if strict:
            raise MockError.bad_request(f"{where}: no Meter with id {meter_id!r}")
        return False

    def kind_of(meter_id: str, code: object, where: str) -> str | None:
        kind = kinds[meter_id].get(code)
        if kind is None and strict:
            raise MockError.bad_request(
                f"{where}: Meter {meters[meter_id].get('code')!r} has no data or derived field {code!r}")
        return kind

    meter_ids = list(dict.fromkeys(body.get("meterIds") or []))
    for index, meter_id in enumerate(meter_ids):
        meter_of(meter_id, f"meterIds[{index}]")
    account_ids = list(dict.fromkeys(body.get("accountIds") or [])) or None
    for index, account_id in enumerate(account_ids or []):
        if account_id not in accounts and strict:
            raise MockError.bad_request(f"accountIds[{index}]: no Account with id {account_id!r}")

    filters: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for index, item in enumerate(body.get("dimensionFilters") or []):
        where = f"dimensionFilters[{index}]"
        if not meter_of(item.get("meterId"), f"{where}.meterId"):
            filters.setdefault(item.get("meterId"), []).append((item.get("fieldCode"), frozenset()))
            continue
        kind = kind_of(item["meterId"], item.get("fieldCode"), f"{where}.fieldCode")
        if kind == "MEASURE":
            raise MockError.bad_request(
                f"{where}.fieldCode: {item['fieldCode']!r} is a number field; dimension filters take text fields")
        filters.setdefault(item["meterId"], []).append((item.get("fieldCode"), frozenset(item.get("values") or [])))

    columns: dict[str, tuple[str, dict[str, str]]] = {}
    for index, item in enumerate(body.get("aggregations") or []):
        where = f"aggregations[{index}]"
        function, field_type, code = item.get("function"), item.get("fieldType"), item.get("fieldCode")
        allowed = MEASURE_FUNCTIONS if field_type == "MEASURE" else DIMENSION_FUNCTIONS
        if function not in allowed:
            raise MockError.bad_request(
                f"{where}.function: {function} does not apply to a {field_type} field (use {', '.join(allowed)})")
        if meter_of(item.get("meterId"), f"{where}.meterId"):
            kind = kind_of(item["meterId"], code, f"{where}.fieldCode")
            if kind is not None and kind != field_type:
                raise MockError.bad_request(
                    f"{where}.fieldType: {code!r} of Meter {meters[item['meterId']].get('code')!r} "
                    f"is a {kind} field, not {field_type}")
        name = f"{code}_{str(function).lower()}"
        columns.setdefault(name, (function, {}))[1][item.get("meterId")] = code

    groups: dict[str, Group] = {}
    for index, item in enumerate(body.get("groups") or []):
        where = f"groups[{index}]"
        if not columns:
            raise MockError.bad_request(f"{where}: groups apply to aggregated usage; add aggregations")
        kind = item.get("groupType")
        if kind == "ACCOUNT":
            groups.setdefault("accountId", Group("accountId", "ACCOUNT"))
        elif kind == "TIME":
            frequency = item.get("frequency")
            if frequency not in FREQUENCIES:
                raise MockError.bad_request(f"{where}.frequency: required for a TIME group, one of "
                                            f"{', '.join(FREQUENCIES)}")
            if "timeGroup" in groups and groups["timeGroup"].frequency != frequency:
                raise MockError.bad_request(f"{where}: usage can be grouped by one time frequency only")
            groups["timeGroup"] = Group("timeGroup", "TIME", frequency)
        elif kind == "DIMENSION":
            meter_id, code = item.get("meterId"), item.get("fieldCode")
            if not meter_id or not code:
                raise MockError.bad_request(f"{where}: a DIMENSION group needs meterId and fieldCode")
            if meter_of(meter_id, f"{where}.meterId") and kind_of(meter_id, code, f"{where}.fieldCode") == "MEASURE":
                raise MockError.bad_request(f"{where}.fieldCode: {code!r} is a number field; group by a text field")
            group = groups.setdefault(code, Group(code, "DIMENSION", fields={}))
            group.fields[meter_id] = code  # type: ignore[index]
        else:
            shown = "required," if kind is None else f"{kind!r} is not"
            raise MockError.bad_request(f"{where}.groupType: {shown} one of ACCOUNT, DIMENSION, TIME")

    if columns:
        read = {m for _, fields in columns.values() for m in fields}
        read = [m for m in (meter_ids or meters) if m in read and m in meters]
    else:
        read = [m for m in (meter_ids or meters) if m in meters]
    return UsageQuery(
        start_ms=start_ms, end_ms=end_ms, meter_ids=tuple(read),
        account_ids=tuple(account_ids) if account_ids is not None else None,
        filters={m: tuple(f) for m, f in filters.items()},
        columns=tuple(Column(name, function, fields) for name, (function, fields) in columns.items()),
        groups=tuple(groups.values()))


# -- measurements to rows ------------------------------------------------------------------------

def _text(value: object) -> str | None:
    return None if value is None else str(value)


def passes(query: UsageQuery, meter_id: str) -> Callable[[object], bool]:
    """A predicate: does a measurement of ``meter_id`` pass the query's dimension filters?"""
    checks = query.filters.get(meter_id) or ()
    if not checks:
        return lambda measurement: True

    def check(measurement) -> bool:
        values = measurement.values
        return all(_text(values.get(code)) in allowed for code, allowed in checks)
    return check


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def raw_row(measurement, meter: Mapping, account_id: str | None) -> dict:
    row = {code: _json_value(value) for code, value in measurement.values.items()}
    if measurement.uid is not None:
        row["uid"] = measurement.uid
    row["ts"] = iso_ms(measurement.ts)
    if measurement.ets is not None:
        row["ets"] = iso_ms(measurement.ets)
    row.update(accountId=account_id, accountCode=measurement.account, meterId=meter.get("id"),
               meterCode=meter.get("code"))
    return row


Reader = Callable[[str, int, int, Optional[Collection[str]]], Sequence]
"""``read(meter_id, start_ms, end_ms, account_codes)``: that meter's measurements with
``start_ms <= ts < end_ms`` in ts order, of the given accounts (None: of the query's)."""

_FIRST_WINDOW = 60_000  # ms; the latest rows are looked for in windows that double from here
_TS = attrgetter("ts")
_VALUES = attrgetter("values")
_PRESENT = partial(is_not, None)
_FIRST = itemgetter(0)
_BLOCK = 256  # positions per running total of a Series' column


def _backwards(read: Reader, meter_id: str, start_ms: int, end_ms: int) -> Iterator:
    """A meter's measurements latest first, read in growing windows from the end, so the
    latest few cost the same however many are stored before them."""
    window, high = _FIRST_WINDOW, end_ms
    while high > start_ms:
        low = max(start_ms, high - window)
        yield from reversed(read(meter_id, low, high, None))
        high, window = low, window * 2


def raw_rows(query: UsageQuery, read: Reader, meters: Mapping[str, Mapping], account_ids: Mapping[str, str],
             *, limit: int | None, newest: bool = True) -> tuple[list[dict], bool]:
    """One row per measurement that passes the filters: the latest first and at most
    ``limit``, or (``newest=False``) every one, oldest first. Returns (rows, whether there
    were more)."""
    def tagged(meter_id: str) -> Iterator[tuple]:
        source = (_backwards(read, meter_id, query.start_ms, query.end_ms) if newest
                  else read(meter_id, query.start_ms, query.end_ms, None))
        return ((measurement, meter_id) for measurement in source)

    checks = {meter_id: passes(query, meter_id) for meter_id in query.meter_ids}
    merged = heapq.merge(*(tagged(meter_id) for meter_id in query.meter_ids),
                         key=lambda pair: pair[0].ts, reverse=newest)
    rows: list[dict] = []
    for measurement, meter_id in merged:
        if not checks[meter_id](measurement):
            continue
        if limit is not None and len(rows) == limit:
            return rows, True
        rows.append(raw_row(measurement, meters.get(meter_id) or {"id": meter_id},
                            account_ids.get(measurement.account)))
    return rows, False


class _Groups:
    """Where each measurement's values go: group key -> column name -> values. A key is
    (time bucket, account code, the DIMENSION groups' values...)."""

    def __init__(self, query: UsageQuery):
        self.query = query
        time_group = next((g for g in query.groups if g.kind == "TIME"), None)
        self.buckets = Buckets(time_group.frequency, query.start_ms, query.end_ms) if time_group else None
        self.by_account = any(g.kind == "ACCOUNT" for g in query.groups)
        self.dimensions = [g for g in query.groups if g.kind == "DIMENSION"]
        # group key -> column name -> values (for LATEST, (ts, value) pairs: a column can
        # span meters, so the latest is found by ts; for SUM, a run's sum may stand for its values)
        self.found: dict[tuple, dict[str, list]] = {}
        self.functions = {c.name: c.function for c in query.columns}

    def wanted(self, meter_id: str) -> list[tuple[str, str]]:
        return [(c.name, c.fields[meter_id]) for c in self.query.columns if meter_id in c.fields]

    def latest(self, name: str) -> bool:
        return self.functions[name] == "LATEST"

    def simple(self, meter_id: str) -> bool:
        """Whether nothing but time and account decides a measurement's group (so whole
        runs of measurements can be taken at once)."""
        return not self.query.filters.get(meter_id) and not any(meter_id in g.fields for g in self.dimensions)

    def add_each(self, meter_id: str, measurements: Iterable) -> None:
        """Measurement by measurement (``measurements`` in ts order): for filters, DIMENSION
        groups and ACCOUNT groups."""
        wanted = [(name, code, self.latest(name)) for name, code in self.wanted(meter_id)]
        filtered = bool(self.query.filters.get(meter_id))
        check = passes(self.query, meter_id)
        codes = [g.fields.get(meter_id) for g in self.dimensions]
        dimensional = any(codes)
        rest = (None,) * len(codes)
        buckets, by_account, found = self.buckets, self.by_account, self.found
        bucket, low, high = None, 1, 0  # the current time bucket: ts order changes it rarely
        for measurement in measurements:
            if filtered and not check(measurement):
                continue
            values = measurement.values
            if buckets:
                ts = measurement.ts
                if not low <= ts < high:
                    bucket = buckets.of(ts)
                    low, high = bucket
            if dimensional:
                key = (bucket, measurement.account if by_account else None, *map(values.get, codes))
            else:
                key = (bucket, measurement.account if by_account else None, *rest)
            columns = found.get(key)
            if columns is None:
                columns = found[key] = {}
            for name, code, latest in wanted:
                value = values.get(code)
                if value is not None:
                    if latest:
                        value = (measurement.ts, value)
                    cell = columns.get(name)
                    if cell is None:
                        columns[name] = [value]
                    else:
                        cell.append(value)

    def add_series(self, meter_id: str, series: "Series", accounts: Collection[str] | None) -> None:
        """A meter's measurements as columns, when only time and account decide their group:
        each account's (or, not grouping by account, every) run is cut into time buckets by
        bisection and each bucket's values are taken at once."""
        wanted = self.wanted(meter_id)
        if self.by_account or accounts is not None:
            parts = series.by_account()
            for account in (parts if accounts is None else [a for a in accounts if a in parts]):
                self._cut(parts[account], wanted, account if self.by_account else None)
        else:
            self._cut(series, wanted, None)

    def _cut(self, series: "Series", wanted: list[tuple[str, str]], account: str | None) -> None:
        ts, buckets = series.ts, self.buckets
        start, end = bisect_left(ts, self.query.start_ms), bisect_left(ts, self.query.end_ms)
        rest = (None,) * len(self.dimensions)
        while start < end:
            if buckets:
                bucket = buckets.of(ts[start])
                stop = bisect_left(ts, bucket[1], start, end)
            else:
                bucket, stop = None, end
            cells = self.found.setdefault((bucket, account, *rest), {})
            for name, code in wanted:
                function = self.functions[name]
                if function == "SUM":
                    total, count = series.range_sum(code, start, stop)
                    taken = [total] if count else []
                elif function == "LATEST":
                    found = series.last(code, start, stop)
                    taken = [found] if found is not None else []
                else:
                    taken = list(filter(_PRESENT, series.field(code)[start:stop]))
                if taken:
                    cells.setdefault(name, []).extend(taken)
            start = stop


class Series:
    """A meter's measurements in ts order, column by column (each column made when first
    asked for): long periods are then aggregated a slice at a time, not a measurement at a
    time. Immutable once made, so one can serve queries until the usage changes."""

    def __init__(self, measurements: Sequence):
        self.measurements = measurements
        self.ts = list(map(_TS, measurements))
        self._fields: dict[str, list] = {}
        self._totals: dict[str, tuple[list[Decimal], list[int]]] = {}
        self._accounts: dict[str, Series] | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def field(self, code: str) -> list:
        """The value of field ``code`` of each measurement (None where it has none)."""
        found = self._fields.get(code)
        if found is None:
            found = self._fields[code] = list(map(methodcaller("get", code), map(_VALUES, self.measurements)))
        return found

    def range_sum(self, code: str, start: int, stop: int) -> tuple[Decimal, int]:
        """The sum and the number of the values of ``code`` in positions [start, stop): whole
        blocks from running totals, the ends value by value."""
        values = self.field(code)
        if stop - start < 2 * _BLOCK:
            taken = list(filter(_PRESENT, values[start:stop]))
            return sum(taken, Decimal(0)), len(taken)
        sums, counts = self._blocks(code)
        first, last = -(-start // _BLOCK), stop // _BLOCK
        head = list(filter(_PRESENT, values[start:first * _BLOCK]))
        tail = list(filter(_PRESENT, values[last * _BLOCK:stop]))
        return (sum(head, sums[last] - sums[first]) + sum(tail, Decimal(0)),
                len(head) + counts[last] - counts[first] + len(tail))

    def _blocks(self, code: str) -> tuple[list[Decimal], list[int]]:
        """Running totals (sum, count) of the values of ``code`` at every ``_BLOCK`` positions."""
        found = self._totals.get(code)
        if found is None:
            values = self.field(code)
            sums, counts, total, count = [Decimal(0)], [0], Decimal(0), 0
            for at in range(0, len(values) - _BLOCK + 1, _BLOCK):
                block = list(filter(_PRESENT, values[at:at + _BLOCK]))
                total, count = sum(block, total), count + len(block)
                sums.append(total)
                counts.append(count)
            found = self._totals[code] = (sums, counts)
        return found

    def last(self, code: str, start: int, stop: int) -> tuple[int, object] | None:
        """(ts, value) of the last value of ``code`` in positions [start, stop), if any."""
        values = self.field(code)
        for at in range(stop - 1, start - 1, -1):
            if values[at] is not None:
                return self.ts[at], values[at]
        return None

    def by_account(self) -> dict[str, "Series"]:
        """The measurements of each account code, as series of their own."""
        if self._accounts is None:
            runs: dict[str, list] = {}
            for measurement in self.measurements:
                run = runs.get(measurement.account)
                if run is None:
                    runs[measurement.account] = [measurement]
                else:
                    run.append(measurement)
            self._accounts = {account: Series(run) for account, run in runs.items()}
        return self._accounts


def aggregated_rows(query: UsageQuery, read: Reader, account_ids: Mapping[str, str], *, limit: int | None,
                    newest: bool = True, accounts: Collection[str] | None = None,
                    series: Callable[[str], Series | None] | None = None) -> tuple[list[dict], bool]:
    """One row per group of the aggregations' measurements (see the module's docstring).
    ``accounts``: the account codes the query keeps (None: all); ``series``: a meter's
    measurements of the query (at least those of its period and accounts) as a ``Series``,
    when the caller keeps them (None: they are read)."""
    groups = _Groups(query)
    for meter_id in query.meter_ids:
        if not groups.wanted(meter_id):
            continue
        if groups.simple(meter_id):
            columns = series(meter_id) if series is not None else Series(read(meter_id, query.start_ms,
                                                                              query.end_ms, None))
            groups.add_series(meter_id, columns, accounts)
        else:
            groups.add_each(meter_id, read(meter_id, query.start_ms, query.end_ms, None))
    functions = groups.functions

    sign = -1 if newest else 1

    def order(key: tuple) -> tuple:
        return (sign * key[0][0] if key[0] else 0, key[1:])

    def safe_order(key: tuple) -> tuple:  # a group without an account or a dimension value comes first
        return (sign * key[0][0] if key[0] else 0, tuple("" if part is None else str(part) for part in key[1:]))

    try:
        keys = sorted(groups.found, key=order)
    except TypeError:  # None beside text
        keys = sorted(groups.found, key=safe_order)
    more = limit is not None and len(keys) > limit
    rows = []
    shown: dict[int, str] = {}  # a bucket's times recur in every group of that bucket

    def iso(ms: int) -> str:
        text = shown.get(ms)
        if text is None:
            text = shown[ms] = iso_ms(ms)
        return text

    for key in keys[:limit] if limit is not None else keys:
        bucket, account = key[0], key[1]
        start, end = (max(bucket[0], query.start_ms), min(bucket[1], query.end_ms)) if bucket else (
            query.start_ms, query.end_ms)
        row: dict = {"startDate": iso(start), "endDate": iso(end)}
        if bucket:
            row["timeGroup"] = iso(bucket[0])
        if groups.by_account:
            row["accountId"] = account_ids.get(account)
        for group, value in zip(groups.dimensions, key[2:]):
            row[group.name] = _text(value)
        cells = groups.found[key]
        for name, function in functions.items():
            cell = cells.get(name, ())
            if function == "LATEST" and cell:
                cell = [max(reversed(cell), key=_FIRST)[1]]  # the latest ts; of equal ones, the last added
            value = aggregate(function, cell)
            row[name] = _json_value(value) if value is not None else (0 if function in ("COUNT", "UNIQUE") else None)
        rows.append(row)
    return rows, more
