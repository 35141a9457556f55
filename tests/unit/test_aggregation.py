"""Aggregation rules and the usage query's rows, on measurements built directly (no store):
aggregation functions, quantityPerUnit and rounding (m3ter's 48,900 / 500 example), segments,
compound calculations, time buckets, filters and groups."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from mockserver.domain import aggregation as agg
from mockserver.domain import usage_query as uq
from mockserver.domain.errors import MockError
from mockserver.domain.measurements import Measurement

D = Decimal


def ms(text: str) -> int:
    return uq.parse_instant(text, "ts")


def m(ts: str, account: str = "acme", meter: str = "disk", uid: str | None = None, **values) -> Measurement:
    return Measurement(uid, meter, account, ms(ts), None,
                       {k: D(v) if isinstance(v, int) else v for k, v in values.items()})


# -- functions ------------------------------------------------------------------------------------

VALUES = [D("3"), D("1.5"), D("10"), D("1.5")]


@pytest.mark.parametrize(("function", "expected"), [
    ("SUM", D("16")), ("MIN", D("1.5")), ("MAX", D("10")), ("COUNT", D("4")),
    ("LATEST", D("1.5")), ("MEAN", D("4")), ("UNIQUE", D("3")),
])
def test_each_function_over_values_in_ts_order(function, expected):
    assert agg.aggregate(function, VALUES) == expected


@pytest.mark.parametrize("function", ["SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN", "UNIQUE"])
def test_no_value_is_none_so_the_default_value_applies(function):
    assert agg.aggregate(function, []) is None


def test_sums_are_exact_decimals_not_floats():
    assert agg.aggregate("SUM", [D("0.1"), D("0.2")]) == D("0.3")


def test_unique_counts_distinct_text():
    assert agg.aggregate("UNIQUE", ["eu", "us", "eu"]) == D(2)


@pytest.mark.parametrize("function", ["SUM", "MIN", "MAX", "LATEST", "MEAN"])
@pytest.mark.parametrize("values", [["eu"], [D(1), "eu"]])
def test_a_number_function_over_text_is_a_400(function, values):
    with pytest.raises(MockError) as caught:
        agg.aggregate(function, values)
    assert caught.value.status == 400 and f"{function} needs numbers" in caught.value.message


def test_custom_sql_is_not_evaluated():
    with pytest.raises(MockError) as caught:
        agg.aggregate("CUSTOM_SQL", [D(1)])
    assert caught.value.status == 501 and "CUSTOM_SQL" in caught.value.message


# -- units -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "per_unit", "rounding", "expected"), [
    ("48900", "500", "UP", "98"),        # m3ter's example: 97.8 rounded up
    ("48900", "500", "DOWN", "97"),
    ("48900", "500", "NEAREST", "98"),
    ("48900", "500", "NONE", "97.8"),
    ("5.1", "1", "NEAREST", "5"),         # m3ter: 5.1 is 5
    ("3.5", "1", "NEAREST", "4"),         # m3ter: 3.5 is 4
    ("-3.5", "1", "NEAREST", "-4"),
    ("-2.5", "1", "UP", "-2"),
    ("-2.5", "1", "DOWN", "-3"),
    ("10", "0.5", "UP", "20"),
    ("1", "3", "NONE", "0.3333333333333333333333333333"),
])
def test_to_units_divides_by_quantity_per_unit_then_rounds(value, per_unit, rounding, expected):
    assert agg.to_units(D(value), D(per_unit), rounding) == D(expected)


def test_units_of_uses_the_default_value_only_without_usage():
    aggregation = {"quantityPerUnit": 2.0, "rounding": "UP", "defaultValue": 5}
    assert agg.units_of(aggregation, None) == D(3)
    assert agg.units_of(aggregation, D(0)) == D(0)
    assert agg.units_of({"quantityPerUnit": 1, "rounding": "NONE"}, None) == D(0)


def test_a_float_quantity_per_unit_is_read_through_its_shortest_text():
    assert agg.units_of({"quantityPerUnit": 0.1, "rounding": "NONE"}, D("0.3")) == D(3)


# -- segments --------------------------------------------------------------------------------------

SEGMENTED = {"targetField": "ngb", "aggregation": "SUM", "segmentedFields": ["region", "tier"],
             "segments": [{"region": "eu", "tier": "gold"}, {"region": "eu", "tier": "*"}, {"region": "us"}],
             "quantityPerUnit": 1, "rounding": "NONE"}


def test_a_measurement_belongs_to_the_first_segment_it_matches_with_wildcards():
    assert agg.segment_of(SEGMENTED, m("2026-01-01T00:00:00Z", region="eu", tier="gold", ngb=1)) == \
        {"region": "eu", "tier": "gold"}
    assert agg.segment_of(SEGMENTED, m("2026-01-01T00:00:00Z", region="eu", tier="iron", ngb=1)) == \
        {"region": "eu", "tier": "*"}
    assert agg.segment_of(SEGMENTED, m("2026-01-01T00:00:00Z", region="us", ngb=1)) == {"region": "us"}
    assert agg.segment_of(SEGMENTED, m("2026-01-01T00:00:00Z", region="apac", ngb=1)) is None


def test_every_declared_segment_has_a_value_and_unmatched_usage_counts_nowhere():
    data = [m("2026-01-01T00:00:00Z", region="eu", tier="gold", ngb=2),
            m("2026-01-01T01:00:00Z", region="eu", tier="iron", ngb=3),
            m("2026-01-01T02:00:00Z", region="eu", tier="gold", ngb=4),
            m("2026-01-01T03:00:00Z", region="apac", ngb=100)]
    assert agg.values_by_segment(SEGMENTED, data) == {
        (("region", "eu"), ("tier", "gold")): D(6), (("region", "eu"), ("tier", "*")): D(3),
        (("region", "us"),): None}


def test_without_declared_segments_each_combination_of_values_is_a_segment():
    dynamic = {"targetField": "ngb", "aggregation": "COUNT", "segmentedFields": ["region"]}
    data = [m("2026-01-01T00:00:00Z", region="eu", ngb=1), m("2026-01-01T00:00:01Z", region="us", ngb=1),
            m("2026-01-01T00:00:02Z", region="eu", ngb=1), m("2026-01-01T00:00:03Z", ngb=1)]
    assert agg.values_by_segment(dynamic, data) == {
        (("region", "eu"),): D(2), (("region", "us"),): D(1), (("region", ""),): D(1)}


def test_a_number_in_a_segmented_field_is_matched_as_its_plain_text():
    aggregation = {"segmentedFields": ["size"], "segments": [{"size": "10"}, {"size": "2.5"}]}
    assert agg.segment_of(aggregation, m("2026-01-01T00:00:00Z", size=D("10.0"))) == {"size": "10"}
    assert agg.segment_of(aggregation, m("2026-01-01T00:00:00Z", size=D("2.50"))) == {"size": "2.5"}


def test_an_empty_segment_value_matches_a_measurement_without_the_field():
    aggregation = {"segmentedFields": ["region"], "segments": [{"region": ""}]}
    assert agg.segment_of(aggregation, m("2026-01-01T00:00:00Z", ngb=1)) == {"region": ""}


# -- compound calculations ------------------------------------------------------------------------------

def test_a_compound_calculation_is_exact_decimal_arithmetic_over_aggregation_codes():
    calculation = agg.compound("(aggregation.watch_seconds + aggregation.live_seconds) / 60 * 0.1")
    assert calculation.codes == ("watch_seconds", "live_seconds")
    assert calculation.evaluate({"watch_seconds": D(90), "live_seconds": D(30)}) == D("0.2")


@pytest.mark.parametrize(("text", "expected"), [
    ("aggregation.a / 0", None),
    ("aggregation.a + aggregation.missing", None),
    ("-aggregation.a", D(-4)),
    ("aggregation.a > 3", None),          # a boolean is not a quantity
    ("7 / 2", D("3.5")),
])
def test_null_and_division_by_zero_make_no_number(text, expected):
    assert agg.compound(text).evaluate({"a": D(4)}) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("account.storage", "syntax error at line 1, column 1"),
    ("storage_gb *", "syntax error at the end"),
    ("new.amount * 2", "syntax error"),
    ("aggregation.a +", "syntax error"),
    ("aggregation.a.b", "'aggregation.a.b' is not a field"),
    ("  ", "must not be empty"),
])
def test_a_calculation_that_does_not_parse_is_a_400_saying_where(text, message):
    with pytest.raises(MockError) as caught:
        agg.compound(text)
    assert caught.value.status == 400 and message in caught.value.message


def test_a_syntax_error_is_placed_in_the_calculation_as_written():
    with pytest.raises(MockError) as caught:
        agg.compound("a +\n b * )")
    assert caught.value.message == "calculation: syntax error at line 2, column 6: unexpected ')'"
    with pytest.raises(MockError) as caught:
        agg.compound("a b")
    assert caught.value.message == "calculation: syntax error at line 1, column 3: unexpected 'b'"


def test_a_bare_name_is_an_aggregation_code():
    calculation = agg.compound("storage_bytes / 1073741824 * hours + aggregation.extra")
    assert calculation.codes == ("storage_bytes", "hours", "extra")
    assert calculation.evaluate({"storage_bytes": D(2147483648), "hours": D(3), "extra": D("0.5")}) == D("6.5")
    assert agg.compound("'and' == 'and' AND null == null").evaluate({}) is None  # true: not a number


def test_compound_segments_are_those_every_segmented_aggregation_declares():
    one = {"segmentedFields": ["r"], "segments": [{"r": "eu"}, {"r": "us"}]}
    two = {"segmentedFields": ["r"], "segments": [{"r": "us"}, {"r": "apac"}]}
    plain = {"targetField": "x"}
    assert agg.compound_segments([one, plain]) == [(("r", "eu"),), (("r", "us"),)]
    assert agg.compound_segments([one, two]) == [(("r", "us"),)]
    assert agg.compound_segments([plain]) is None
    assert agg.compound_segments([one, {"segmentedFields": ["r"], "segments": [{"r": "x"}]}]) is None


# -- time ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("frequency", "ts", "start", "end"), [
    ("HOUR", "2026-03-04T05:06:07Z", "2026-03-04T05:00:00.000Z", "2026-03-04T06:00:00.000Z"),
    ("DAY", "2026-03-04T05:06:07Z", "2026-03-04T00:00:00.000Z", "2026-03-05T00:00:00.000Z"),
    ("WEEK", "2026-03-04T05:06:07Z", "2026-03-02T00:00:00.000Z", "2026-03-09T00:00:00.000Z"),  # from Monday
    ("WEEK", "2026-03-01T23:59:59Z", "2026-02-23T00:00:00.000Z", "2026-03-02T00:00:00.000Z"),  # a Sunday
    ("MONTH", "2026-02-28T23:00:00Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"),
    ("QUARTER", "2026-05-15T00:00:00Z", "2026-04-01T00:00:00.000Z", "2026-07-01T00:00:00.000Z"),
    ("QUARTER", "2026-12-31T00:00:00Z", "2026-10-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"),
    ("YEAR", "2026-05-15T00:00:00Z", "2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"),
])
def test_time_buckets_are_utc_calendar_periods(frequency, ts, start, end):
    bucket = uq.Buckets(frequency, 0, 1).of(ms(ts))
    assert (uq.iso_ms(bucket[0]), uq.iso_ms(bucket[1])) == (start, end)


@pytest.mark.parametrize(("period", "start", "end"), [
    ("TODAY", "2026-03-04T00:00:00", "2026-03-04T10:30:00"),
    ("YESTERDAY", "2026-03-03T00:00:00", "2026-03-04T00:00:00"),
    ("WEEK_TO_DATE", "2026-03-02T00:00:00", "2026-03-04T10:30:00"),
    ("PREVIOUS_WEEK", "2026-02-23T00:00:00", "2026-03-02T00:00:00"),
    ("MONTH_TO_DATE", "2026-03-01T00:00:00", "2026-03-04T10:30:00"),
    ("PREVIOUS_MONTH", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
    ("PREVIOUS_QUARTER", "2025-10-01T00:00:00", "2026-01-01T00:00:00"),
    ("PREVIOUS_YEAR", "2025-01-01T00:00:00", "2026-01-01T00:00:00"),
    ("YEAR_TO_DATE", "2026-01-01T00:00:00", "2026-03-04T10:30:00"),
    ("LAST_12_HOURS", "2026-03-03T22:30:00", "2026-03-04T10:30:00"),
    ("LAST_7_DAYS", "2026-02-25T10:30:00", "2026-03-04T10:30:00"),
    ("LAST_YEAR", "2025-03-04T10:30:00", "2026-03-04T10:30:00"),
])
def test_an_export_time_period_at_run_time(period, start, end):
    at = datetime(2026, 3, 4, 10, 30, tzinfo=timezone.utc)
    got = uq.export_period(period, at)
    assert (got[0].isoformat()[:19], got[1].isoformat()[:19]) == (start, end)


# -- the query -------------------------------------------------------------------------------------------

METERS = {
    "m-disk": {"id": "m-disk", "code": "disk", "dataFields": [
        {"category": "MEASURE", "code": "ngb"}, {"category": "WHERE", "code": "region"}], "derivedFields": []},
    "m-cpu": {"id": "m-cpu", "code": "cpu", "dataFields": [{"category": "MEASURE", "code": "ngb"}],
              "derivedFields": [{"category": "WHAT", "code": "kind", "calculation": "'x'"}]},
}
ACCOUNTS = {"a-acme": {}, "a-beta": {}}
IDS = {"acme": "a-acme", "beta": "a-beta"}
START, END = ms("2026-01-01T00:00:00Z"), ms("2026-01-03T00:00:00Z")


def query(**body):
    return uq.check_query(body, METERS, ACCOUNTS, start_ms=START, end_ms=END)


def reader(streams):
    """What the usage store's select answers, over lists of measurements by meter id."""
    def read(meter_id, start, end, accounts):
        return [x for x in streams.get(meter_id, ())
                if start <= x.ts < end and (accounts is None or x.account in accounts)]
    return read


DISK = [m("2026-01-01T01:00:00Z", "acme", uid="u1", region="eu", ngb=D(2)),
        m("2026-01-01T02:00:00Z", "beta", region="us", ngb=D(5)),
        m("2026-01-02T03:00:00Z", "acme", region="eu", ngb=D("0.5")),
        m("2026-01-02T04:00:00Z", "acme", region="us", ngb=D(1))]
CPU = [m("2026-01-01T05:00:00Z", "acme", meter="cpu", ngb=D(7)),
       m("2026-01-02T05:00:00Z", "beta", meter="cpu", ngb=D(3))]


def test_raw_rows_come_newest_first_up_to_the_limit_across_meters():
    rows, more = uq.raw_rows(query(), reader({"m-disk": DISK, "m-cpu": CPU}), METERS, IDS, limit=3)
    assert more is True
    assert [(r["ts"], r["meterCode"]) for r in rows] == [
        ("2026-01-02T05:00:00.000Z", "cpu"), ("2026-01-02T04:00:00.000Z", "disk"),
        ("2026-01-02T03:00:00.000Z", "disk")]
    assert rows[1] == {"ngb": 1, "region": "us", "ts": "2026-01-02T04:00:00.000Z", "accountId": "a-acme",
                       "accountCode": "acme", "meterId": "m-disk", "meterCode": "disk"}
    assert rows[2]["ngb"] == 0.5


def test_raw_rows_for_an_export_are_every_row_oldest_first_with_the_uid():
    rows, more = uq.raw_rows(query(), reader({"m-disk": DISK}), METERS, IDS, limit=None, newest=False)
    assert more is False and [r["ts"][:13] for r in rows] == [
        "2026-01-01T01", "2026-01-01T02", "2026-01-02T03", "2026-01-02T04"]
    assert rows[0]["uid"] == "u1" and "uid" not in rows[1]


def test_dimension_filters_keep_only_the_listed_values_of_their_meter():
    q = query(dimensionFilters=[{"meterId": "m-disk", "fieldCode": "region", "values": ["eu"]}])
    rows, _ = uq.raw_rows(q, reader({"m-disk": DISK, "m-cpu": CPU}), METERS, IDS, limit=None, newest=False)
    assert [(r["meterCode"], r.get("region")) for r in rows] == [
        ("disk", "eu"), ("cpu", None), ("disk", "eu"), ("cpu", None)]


def test_aggregations_grouped_by_account_and_day_newest_bucket_first():
    q = query(aggregations=[{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"},
                            {"meterId": "m-disk", "fieldCode": "region", "fieldType": "DIMENSION",
                             "function": "UNIQUE"}],
              groups=[{"groupType": "TIME", "frequency": "DAY"}, {"groupType": "ACCOUNT"}])
    assert q.meter_ids == ("m-disk",)
    rows, more = uq.aggregated_rows(q, reader({"m-disk": DISK}), IDS, limit=10)
    assert more is False
    assert rows == [
        {"startDate": "2026-01-02T00:00:00.000Z", "endDate": "2026-01-03T00:00:00.000Z",
         "timeGroup": "2026-01-02T00:00:00.000Z", "accountId": "a-acme", "ngb_sum": 1.5, "region_unique": 2},
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z",
         "timeGroup": "2026-01-01T00:00:00.000Z", "accountId": "a-acme", "ngb_sum": 2, "region_unique": 1},
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z",
         "timeGroup": "2026-01-01T00:00:00.000Z", "accountId": "a-beta", "ngb_sum": 5, "region_unique": 1},
    ]


def test_one_column_spans_every_meter_with_that_field_and_function_and_a_dimension_group():
    q = query(aggregations=[{"meterId": i, "fieldCode": "ngb", "fieldType": "MEASURE", "function": "MAX"}
                            for i in ("m-disk", "m-cpu")],
              groups=[{"groupType": "DIMENSION", "meterId": "m-disk", "fieldCode": "region"}])
    rows, _ = uq.aggregated_rows(q, reader({"m-disk": DISK, "m-cpu": CPU}), IDS, limit=None)
    assert [(r["region"], r["ngb_max"]) for r in rows] == [(None, 7), ("eu", 2), ("us", 5)]
    assert rows[0]["startDate"] == "2026-01-01T00:00:00.000Z" and rows[0]["endDate"] == "2026-01-03T00:00:00.000Z"


def test_a_time_bucket_is_clipped_to_the_query_period_and_the_limit_counts_rows():
    q = uq.check_query({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE",
                                          "function": "COUNT"}],
                        "groups": [{"groupType": "TIME", "frequency": "MONTH"}]},
                       METERS, ACCOUNTS, start_ms=ms("2026-01-01T02:00:00Z"), end_ms=ms("2026-01-02T12:00:00Z"))
    rows, more = uq.aggregated_rows(q, reader({"m-disk": DISK[1:3]}), IDS, limit=1)
    assert more is False and rows == [{"startDate": "2026-01-01T02:00:00.000Z", "endDate": "2026-01-02T12:00:00.000Z",
                                       "timeGroup": "2026-01-01T00:00:00.000Z", "ngb_count": 2}]


@pytest.mark.parametrize(("body", "message"), [
    ({"meterIds": ["nope"]}, "meterIds[0]: no Meter with id 'nope'"),
    ({"accountIds": ["a-acme", "nope"]}, "accountIds[1]: no Account with id 'nope'"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]},
     "aggregations[0].fieldCode: Meter 'disk' has no data or derived field 'gb'"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "region", "fieldType": "MEASURE", "function": "SUM"}]},
     "aggregations[0].fieldType: 'region' of Meter 'disk' is a DIMENSION field, not MEASURE"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "region", "fieldType": "DIMENSION", "function": "SUM"}]},
     "aggregations[0].function: SUM does not apply to a DIMENSION field (use COUNT, UNIQUE)"),
    ({"groups": [{"groupType": "ACCOUNT"}]}, "groups[0]: groups apply to aggregated usage"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}],
      "groups": [{}]}, "groups[0].groupType: required, one of ACCOUNT, DIMENSION, TIME"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}],
      "groups": [{"groupType": "TIME"}]}, "groups[0].frequency: required for a TIME group"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}],
      "groups": [{"groupType": "TIME", "frequency": "DAY"}, {"groupType": "TIME", "frequency": "HOUR"}]},
     "groups[1]: usage can be grouped by one time frequency only"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}],
      "groups": [{"groupType": "DIMENSION", "meterId": "m-disk"}]}, "groups[0]: a DIMENSION group needs meterId"),
    ({"aggregations": [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}],
      "groups": [{"groupType": "DIMENSION", "meterId": "m-disk", "fieldCode": "ngb"}]},
     "groups[0].fieldCode: 'ngb' is a number field; group by a text field"),
    ({"dimensionFilters": [{"meterId": "m-disk", "fieldCode": "ngb", "values": ["1"]}]},
     "dimensionFilters[0].fieldCode: 'ngb' is a number field"),
])
def test_a_query_that_cannot_be_answered_is_a_400_naming_the_field(body, message):
    with pytest.raises(MockError) as caught:
        query(**body)
    assert caught.value.status == 400 and message in caught.value.message


def test_an_export_selection_naming_what_is_gone_selects_nothing_instead_of_failing():
    q = uq.check_query({"meterIds": ["gone", "m-disk"], "accountIds": ["gone"],
                        "dimensionFilters": [{"meterId": "gone", "fieldCode": "x", "values": ["y"]}]},
                       METERS, ACCOUNTS, start_ms=START, end_ms=END, strict=False)
    assert q.meter_ids == ("m-disk",) and q.account_ids == ("gone",)


def test_a_derived_text_field_is_a_dimension():
    q = query(aggregations=[{"meterId": "m-cpu", "fieldCode": "kind", "fieldType": "DIMENSION", "function": "COUNT"}])
    assert q.columns[0].name == "kind_count"


def spread(count: int) -> list[Measurement]:
    """``count`` measurements 17 minutes apart from 1 January, over three accounts and regions."""
    return [Measurement(None, "disk", ("acme", "beta", "gone")[i % 3], START + i * 17 * 60_000, None,
                        {"ngb": D(i % 7) / 4, "region": ("eu", "us", "ap", "eu")[i % 4]}) for i in range(count)]


AGGREGATIONS = [{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": f}
                for f in ("SUM", "MIN", "MAX", "COUNT", "LATEST", "MEAN")] + [
    {"meterId": "m-disk", "fieldCode": "region", "fieldType": "DIMENSION", "function": "UNIQUE"}]
EVERY_REGION = [{"meterId": "m-disk", "fieldCode": "region", "values": ["eu", "us", "ap"]}]


def test_cutting_time_buckets_by_bisection_gives_the_rows_one_by_one_does():
    data = spread(300)
    hourly = [{"groupType": "TIME", "frequency": "HOUR"}]
    by_run, _ = uq.aggregated_rows(query(aggregations=AGGREGATIONS, groups=hourly),
                                   reader({"m-disk": data}), IDS, limit=None)
    # A filter that keeps everything sends each measurement through one at a time.
    one_by_one, _ = uq.aggregated_rows(query(aggregations=AGGREGATIONS, dimensionFilters=EVERY_REGION,
                                             groups=[{"groupType": "TIME", "frequency": "HOUR"}]),
                                       reader({"m-disk": data}), IDS, limit=None)
    assert by_run == one_by_one and len(by_run) == 48
    assert by_run[-1] == {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-01T01:00:00.000Z",
                          "timeGroup": "2026-01-01T00:00:00.000Z", "ngb_sum": 1.5, "ngb_min": 0, "ngb_max": 0.75,
                          "ngb_count": 4, "ngb_latest": 0.75, "ngb_mean": 0.375, "region_unique": 3}


def test_grouped_by_account_and_hour_an_account_no_longer_known_has_no_account_id():
    rows, _ = uq.aggregated_rows(query(aggregations=AGGREGATIONS, groups=[{"groupType": "TIME", "frequency": "HOUR"},
                                                                          {"groupType": "ACCOUNT"}]),
                                 reader({"m-disk": spread(300)}), IDS, limit=None)
    assert len(rows) == 48 * 3  # 48 hours, three accounts
    # hour 0: acme has i = 0 (0 GB, eu) and i = 3 (0.75 GB, eu); 'gone' (no longer an account) i = 2
    assert rows[-3] == {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-01T01:00:00.000Z",
                        "timeGroup": "2026-01-01T00:00:00.000Z", "accountId": "a-acme", "ngb_sum": 0.75,
                        "ngb_min": 0, "ngb_max": 0.75, "ngb_count": 2, "ngb_latest": 0.75, "ngb_mean": 0.375,
                        "region_unique": 1}
    assert rows[-1]["accountId"] is None and rows[-1]["ngb_sum"] == 0.5


def test_without_groups_the_whole_period_is_one_row():
    q = query(aggregations=[{"meterId": "m-disk", "fieldCode": "ngb", "fieldType": "MEASURE", "function": "SUM"}])
    rows, more = uq.aggregated_rows(q, reader({"m-disk": spread(120)}), IDS, limit=None)
    # 120 measurements: values (i % 7) / 4, 17 full cycles of 0..6 (sum 21) and 0 (i = 119): 357 / 4
    assert more is False and rows == [{"startDate": "2026-01-01T00:00:00.000Z",
                                       "endDate": "2026-01-03T00:00:00.000Z", "ngb_sum": 89.25}]


def test_the_latest_rows_are_found_without_reading_everything_before_them():
    data = [Measurement(None, "disk", "acme", START + i * 1000, None, {"ngb": D(1)}) for i in range(100_000)]
    read_so_far = []

    def counting(meter_id, start, end, accounts):
        found = reader({"m-disk": data})(meter_id, start, end, accounts)
        read_so_far.append(len(found))
        return found
    q = uq.check_query({"meterIds": ["m-disk"]}, METERS, ACCOUNTS, start_ms=START, end_ms=START + 100_000 * 1000)
    rows, more = uq.raw_rows(q, counting, METERS, IDS, limit=5)
    assert more is True and [r["ts"] for r in rows][:2] == ["2026-01-02T03:46:39.000Z", "2026-01-02T03:46:38.000Z"]
    assert sum(read_so_far) <= 120  # a first window of one minute: 60 measurements, then 120


def test_dates_beyond_what_utc_can_write_are_a_400_and_late_buckets_do_not_overflow():
    with pytest.raises(MockError) as caught:
        uq.parse_instant("0001-01-01T00:00:00+01:00", "startDate")
    assert caught.value.message == "startDate: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 in UTC"
    start, end = uq.Buckets("QUARTER", 0, 1).of(ms("9999-12-15T00:00:00Z"))
    assert uq.iso_ms(start) == "9999-10-01T00:00:00.000Z" and end > ms("9999-12-31T23:59:59.999Z")


def test_latest_is_by_ts_across_the_meters_of_one_column():
    disk = DISK + [m("2026-01-02T06:00:00Z", "acme", region="eu", ngb=D(9))]
    latest = [{"meterId": i, "fieldCode": "ngb", "fieldType": "MEASURE", "function": "LATEST"}
              for i in ("m-disk", "m-cpu")]
    for filters in ([], EVERY_REGION):  # as columns, and measurement by measurement
        rows, _ = uq.aggregated_rows(query(aggregations=latest, dimensionFilters=filters),
                                     reader({"m-disk": disk, "m-cpu": CPU}), IDS, limit=None)
        assert rows[0]["ngb_latest"] == 9  # disk's at 06:00, after cpu's last (3, at 05:00)


def test_a_series_sums_whole_blocks_from_running_totals_and_the_ends_value_by_value():
    # 0.5 everywhere except every tenth position, which has no value
    data = [Measurement(None, "disk", "acme", i, None, {} if i % 10 == 0 else {"ngb": D("0.5")})
            for i in range(2000)]
    series = uq.Series(data)
    assert series.range_sum("ngb", 5, 1005) == (D(450), 900)
    assert series.range_sum("ngb", 0, 2000) == (D(900), 1800)
    assert series.range_sum("ngb", 10, 11) == (D(0), 0)
    assert series.range_sum("nothing", 0, 2000) == (D(0), 0)
    assert series.last("ngb", 0, 1001) == (999, D("0.5")) and series.last("ngb", 10, 11) is None
