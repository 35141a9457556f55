"""The usage engine: the quantities bills price, the usage query, and the rows of usage exports.

Everything is read from the one store (``backend.usage`` holds the measurements, the
resources hold meters, accounts and aggregations) under its lock, so an answer never mixes
two states. The rules are pure and live in ``mockserver.domain.aggregation`` (aggregation
functions, units, segments, compound calculations) and ``mockserver.domain.usage_query``
(the query and the rows).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from mockserver.domain import aggregation as rules
from mockserver.domain import usage_query as usage
from mockserver.domain.errors import MockError

from . import usage as usage_store
from .crud import Caller

Segment = tuple[tuple[str, str], ...]


class _AccountIds:
    """Account code -> id, read from the accounts collection's code index."""

    def __init__(self, accounts):
        self._accounts = accounts

    def get(self, code, default=None):
        return self._accounts.id_for_code(code) if code is not None else default


class UsageEngine:
    """``backend.usage_engine``."""

    # How many (meter, period) series are kept, the most recently used; each holds a list
    # per column asked for: about 8 bytes per measurement and column.
    SERIES_KEPT = 16

    def __init__(self, backend):
        self.backend = backend
        # (org, meter id, period, account codes) -> (the usage table it was read from, its
        # count then, the series).
        # The store's usage table only grows, and reset or restore replace it, so the
        # same table with the same count holds the same measurements.
        self._kept: OrderedDict[tuple, tuple[weakref.ref, int, usage.Series]] = OrderedDict()

    # -- reading the store ---------------------------------------------------------------------
    def _collection(self, org_id: str, key: str):
        return self.backend.store.peek(org_id, self.backend.resources[key].kind.collection)

    def _select(self, org_id: str, meter_id: str, start_ms: int, end_ms: int,
                accounts: Iterable[str] | None) -> list:
        return self.backend.usage.select(org_id, meter_id, start_ms, end_ms, accounts)

    def _series(self, org_id: str, meter_id: str, start_ms: int, end_ms: int,
                codes: tuple[str, ...] | None) -> usage.Series:
        """The meter's measurements of the period (of the accounts ``codes``) as a ``Series``,
        kept until the organization's usage changes, so a query asked again (a dashboard
        polling, another grouping of the same period) reuses its columns. Call with the
        store locked."""
        store = self.backend.store
        table = store.org(org_id).tables.get(usage_store.TABLE) if org_id in store.org_ids() else None
        count = self.backend.usage.count(org_id)
        key = (org_id, meter_id, start_ms, end_ms, codes)
        kept = self._kept.get(key)
        if kept is not None and kept[0]() is table and kept[1] == count:
            self._kept.move_to_end(key)
            return kept[2]
        series = usage.Series(self._select(org_id, meter_id, start_ms, end_ms, codes))
        if table is None:
            return series
        for stale in [k for k, (ref, _, _) in self._kept.items() if ref() is None]:  # pragma: no mutate  memory only
            del self._kept[stale]  # pragma: no mutate  memory only: a stale entry never matches (an organization reset or restored since)
        self._kept[key] = (weakref.ref(table), count, series)
        while len(self._kept) > self.SERIES_KEPT:  # pragma: no mutate  a bound on memory; answers are the same
            self._kept.popitem(last=False)  # pragma: no mutate  as above
        return series

    # -- quantities for bills ------------------------------------------------------------------
    def quantities(self, org_id: str, target_id: str, account_code: str, start_ms: int, end_ms: int
                   ) -> dict[Segment | None, Decimal]:
        """The billable quantity of an aggregation OR a compound aggregation (looked up by id in
        ``backend.resources["aggregations"]`` / ``["compoundaggregations"]``) for one account over
        ``[start_ms, end_ms)``: ``{segment as sorted (field, value) pairs, or None when not
        segmented: quantity after quantityPerUnit and rounding}``. Compound aggregations are
        evaluated by their calculation over the simple aggregations' values.

        Every declared segment has a quantity; no usage is the aggregation's ``defaultValue``,
        or 0. A 404 when neither collection holds ``target_id``; a 400 (or 501 for CUSTOM_SQL)
        naming the aggregation when it cannot be evaluated: a calculation that does not parse
        or names an aggregation code that does not exist."""
        with self.backend.store.lock:
            simple = self._collection(org_id, "aggregations").get(target_id)
            if simple is not None:
                return self._simple_quantities(org_id, simple, account_code, start_ms, end_ms)
            compound = self._collection(org_id, "compoundaggregations").get(target_id)
            if compound is None:
                raise MockError.not_found(f"No Aggregation or CompoundAggregation with id {target_id!r}")
            return self._compound_quantities(org_id, compound, account_code, start_ms, end_ms)

    def _raw_values(self, org_id: str, aggregation: dict, account_code: str, start_ms: int, end_ms: int
                    ) -> tuple[dict[Segment | None, Decimal | None], list]:
        measurements = self._select(org_id, aggregation["meterId"], start_ms, end_ms, [account_code])
        try:
            return rules.values_by_segment(aggregation, measurements), measurements
        except MockError as error:
            raise MockError(error.status, f"Aggregation {aggregation.get('code') or aggregation['id']!r}: "
                                          f"{error.message}") from None

    def _simple_quantities(self, org_id, aggregation, account_code, start_ms, end_ms):
        values, _ = self._raw_values(org_id, aggregation, account_code, start_ms, end_ms)
        return {segment: rules.units_of(aggregation, value) for segment, value in values.items()}

    def _compound_quantities(self, org_id, compound, account_code, start_ms, end_ms):
        label = f"CompoundAggregation {compound.get('code') or compound['id']!r}"
        try:
            calculation = rules.compound(compound.get("calculation") or "")
        except MockError as error:
            raise MockError(error.status, f"{label}: {error.message}") from None
        simples = self._collection(org_id, "aggregations")
        referenced = {}
        for code in calculation.codes:
            found = simples.get(simples.id_for_code(code) or "")
            if found is None:
                raise MockError.bad_request(f"{label}: calculation: no Aggregation with code {code!r}")
            referenced[code] = found
        by_segment, totals = {}, {}
        for code, simple in referenced.items():
            by_segment[code], measurements = self._raw_values(org_id, simple, account_code, start_ms, end_ms)
            if rules.is_segmented(simple):
                whole = rules.aggregate(simple["aggregation"],
                                        [v for v in (m.values.get(simple["targetField"]) for m in measurements)
                                         if v is not None])
            else:
                whole = by_segment[code][None]
            totals[code] = rules.base_value(simple, whole)
        evaluate_nulls = bool(compound.get("evaluateNullAggregations"))

        def value_of(values: dict[str, Decimal | None]) -> Decimal:
            if not evaluate_nulls and any(v is None for v in values.values()):
                result = None
            else:
                try:
                    result = calculation.evaluate(values)
                except MockError as error:
                    raise MockError(error.status, f"{label}: {error.message}") from None
            return rules.units_of(compound, result)

        segments = rules.compound_segments(referenced.values())
        if segments is None:
            return {None: value_of(totals)}
        result = {}
        for segment in segments:
            values = {code: (rules.base_value(simple, by_segment[code].get(segment))
                             if rules.is_segmented(simple) else totals[code])
                      for code, simple in referenced.items()}
            result[segment] = value_of(values)
        return result

    # -- the usage query -------------------------------------------------------------------------
    def query(self, caller: Caller, body: dict) -> dict:
        """PostUsageDataQuery: ``{"data": [...], "hasMoreData": bool}``."""
        start_ms = usage.parse_instant(body.get("startDate"), "startDate")
        end_ms = usage.parse_instant(body.get("endDate"), "endDate")
        with self.backend.store.lock:
            rows, more = self._rows(caller.org_id, body, start_ms, end_ms, strict=True,
                                    limit=body.get("limit") or usage.MAX_LIMIT, newest=True)
        return {"data": rows, "hasMoreData": more}

    def _rows(self, org_id: str, body: dict, start_ms: int, end_ms: int, *, strict: bool,
              limit: int | None, newest: bool) -> tuple[list[dict], bool]:
        meters = {meter["id"]: meter for meter in self.backend.resources["meters"].entities(org_id)}
        accounts = self._collection(org_id, "accounts")
        query = usage.check_query(body, meters, accounts.items, start_ms=start_ms, end_ms=end_ms, strict=strict)
        if query.account_ids is not None:
            codes = [accounts.get(i)["code"] for i in query.account_ids if accounts.get(i) is not None]
        else:
            codes = None

        def read(meter_id: str, start: int, end: int, only: Iterable[str] | None) -> list:
            return self._select(org_id, meter_id, start, end, codes if only is None else only)

        account_ids = _AccountIds(accounts)
        if query.aggregated:
            kept = tuple(codes) if codes is not None else None
            return usage.aggregated_rows(
                query, read, account_ids, limit=limit, newest=newest, accounts=codes,
                series=lambda meter_id: self._series(org_id, meter_id, start_ms, end_ms, kept))
        return usage.raw_rows(query, read, meters, account_ids, limit=limit, newest=newest)

    # -- usage exports ---------------------------------------------------------------------------
    def export_period(self, selection: dict, at: datetime) -> tuple[int, int]:
        """The ``[start, end)`` of a usage export run at ``at``: a schedule's ``timePeriod``,
        or an ad-hoc export's ``startDate`` (everything before ``endDate`` when absent) and
        ``endDate`` (the time the job was created when absent)."""
        if selection.get("timePeriod"):
            start, end = usage.export_period(selection["timePeriod"], at)
            return usage.epoch_ms(start), usage.epoch_ms(end)
        start = usage.parse_instant(selection["startDate"], "startDate") if selection.get("startDate") else 0
        end = usage.parse_instant(selection["endDate"], "endDate") if selection.get("endDate") else usage.epoch_ms(at)
        return start, end

    def check_export(self, caller: Caller, request: dict, at: datetime) -> None:
        """An ad-hoc usage export request that could never run: a period that ends before it
        starts, or aggregations and groups that cannot apply (a 400 naming the field)."""
        start, end = self.export_period(request, at)
        if request.get("startDate") and request.get("endDate") and end <= start:
            raise MockError.bad_request("endDate: must be later than startDate")
        with self.backend.store.lock:
            meters = {meter["id"]: meter for meter in self.backend.resources["meters"].entities(caller.org_id)}
            usage.check_query(request, meters, {}, start_ms=0, end_ms=1, strict=False)

    def export_rows(self, org_id: str, selection: dict, at: datetime) -> list[dict]:
        """Every row of a usage export run at ``at``, oldest first: raw measurements, or
        aggregated values when the selection has aggregations. Meters and accounts that no
        longer exist select nothing. Call with the store locked."""
        start, end = self.export_period(selection, at)
        if end <= start:
            return []
        rows, _ = self._rows(org_id, selection, start, end, strict=False, limit=None, newest=False)
        return rows
