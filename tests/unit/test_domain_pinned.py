"""Domain rules no other test pinned (issue 9): each test calls a pure function of
``mockserver/domain`` directly and asserts the exact result, or the exact message a user
would read in the 400. Grouped by module."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mockserver.domain import aggregation as agg
from mockserver.domain import balances, faults, journal, search
from mockserver.domain import webhook_policy as wp
from mockserver.domain.errors import MockError

D = Decimal
UTC = timezone.utc


def refused(call, *args, **kwargs) -> MockError:
    with pytest.raises(MockError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- aggregation: numbers --------------------------------------------------------------------

def test_a_boolean_is_not_a_number_of_an_aggregation():
    error = refused(agg.decimal_of, True)
    assert (error.status, error.message) == (400, "value: True is not a number")


def test_a_decimal_is_taken_as_it_is():
    assert str(agg.decimal_of(D("2.50"))) == "2.50"


@pytest.mark.parametrize(("value", "shown"), [("abc", "'abc'"), ([1], "[1]"), ("NaN", "'NaN'"),
                                              (float("inf"), "inf")])
def test_text_lists_and_non_finite_numbers_are_refused_naming_the_field(value, shown):
    error = refused(agg.decimal_of, value, "quantityPerUnit")
    assert (error.status, error.message) == (400, f"quantityPerUnit: {shown} is not a number")


def test_an_unknown_function_is_a_400_listing_the_functions():
    error = refused(agg.aggregate, "MEDIAN", [D(1)])
    assert (error.status, error.message) == (
        400, "aggregation: 'MEDIAN' is not one of SUM, MIN, MAX, COUNT, LATEST, MEAN, UNIQUE")


@pytest.mark.parametrize(("per_unit", "shown"), [(D(0), "0"), (D(-2), "-2")])
def test_a_quantity_per_unit_of_zero_or_less_is_refused(per_unit, shown):
    error = refused(agg.to_units, D(10), per_unit, "UP")
    assert (error.status, error.message) == (400, f"quantityPerUnit: {shown} is not greater than 0")


def test_the_smallest_positive_quantity_per_unit_is_accepted():
    assert agg.to_units(D(1), D("0.001"), "NONE") == D(1000)


def test_an_unknown_rounding_is_a_400_listing_the_roundings():
    error = refused(agg.to_units, D(10), D(3), "HALF")
    assert (error.status, error.message) == (400, "rounding: 'HALF' is not one of UP, DOWN, NEAREST, NONE")


def test_units_of_rounds_with_the_aggregations_rounding_and_none_when_it_has_none():
    assert agg.units_of({"quantityPerUnit": 4, "rounding": "DOWN"}, D(11)) == D(2)
    assert agg.units_of({"quantityPerUnit": 4}, D(11)) == D("2.75")
    assert agg.units_of({}, D("1.5")) == D("1.5")


def test_a_compound_reads_the_default_value_only_when_there_is_no_value():
    aggregation = {"defaultValue": 7, "quantityPerUnit": 2, "rounding": "UP"}
    assert agg.base_value(aggregation, None) == D(7)       # before quantityPerUnit and rounding
    assert agg.base_value(aggregation, D(3)) == D(3)
    assert agg.base_value({"defaultValue": 0}, None) == D(0)
    assert agg.base_value({}, None) is None


# -- aggregation: segments -------------------------------------------------------------------

class _M:
    def __init__(self, **values):
        self.values = values


def test_an_aggregation_without_segmented_fields_has_no_segment():
    assert agg.segment_of({"segments": [{"region": "eu"}]}, _M(region="eu")) is None
    assert agg.segment_of({"segmentedFields": [], "segments": [{"region": "eu"}]}, _M(region="eu")) is None
    assert agg.is_segmented({"segmentedFields": []}) is False
    assert agg.declared_segments({"segments": [{"region": "eu"}]}) == []


def test_a_measurement_without_the_target_field_counts_in_no_segment():
    aggregation = {"targetField": "gb", "aggregation": "COUNT", "segmentedFields": ["region"],
                   "segments": [{"region": "eu"}, {"region": "*"}]}
    got = agg.values_by_segment(aggregation, [_M(region="eu", gb=D(1)), _M(region="eu"), _M(region="us")])
    assert got == {(("region", "eu"),): D(1), (("region", "*"),): None}


# -- aggregation: compound calculations --------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("a - b", D(-2)),
    ("b - a - 1", D(1)),
    ("a * b", D(35)),
])
def test_compound_arithmetic_is_exact(text, expected):
    assert agg.compound(text).evaluate({"a": D(5), "b": D(7)}) == expected


@pytest.mark.parametrize("text", [
    "a != b", "a == a", "a != 'x'", "a == 'x'", "a < 'x'", "'x' < a", "null < 1", "1 >= null",
    "true < false", "'a' < 'b'", "a < b", "a <= a", "a > b", "b >= a",
    "a < b OR a > b", "null OR a", "a AND b", "NOT a > b", "NOT null", "NOT 'x'",
    "(a < b) + 1", "-(a < b)", "-'x'", "'x' * 2",
])
def test_a_condition_or_text_in_a_compound_is_no_quantity_and_never_an_error(text):
    # The grammar reads comparisons and logic (the notification rules' language) but a
    # compound's value is a number: whatever they give, even across types, is no quantity.
    assert agg.compound(text).evaluate({"a": D(5), "b": D(7)}) is None


def test_a_compound_nested_deeper_than_python_can_evaluate_is_a_400():
    calculation = agg.compound("-" * 3000 + "a")
    error = refused(calculation.evaluate, {"a": D(1)})
    assert (error.status, error.message) == (400, "calculation: nested too deeply to evaluate")
    assert agg.compound("-" * 20 + "a").evaluate({"a": D(1)}) == D(1)


def test_an_unexpected_character_is_placed_and_named():
    error = refused(agg.compound, "storage + $ 2")
    assert (error.status, error.message) == (
        400, "calculation: syntax error at line 1, column 11: unexpected character '$' "
             "(an aggregation is written by its code, or aggregation.<code>)")
    error = refused(agg.compound, "a +\n  b # 2")
    assert error.message.startswith("calculation: syntax error at line 2, column 5: unexpected character '#'")


# -- balances ----------------------------------------------------------------------------------

def test_money_takes_a_decimal_as_it_is():
    assert str(balances.money(D("1.50"))) == "1.50"


def test_a_datetime_start_is_read_as_utc_when_it_has_no_offset_and_kept_when_it_has_one():
    assert balances.parse_instant(datetime(2026, 1, 2, 3, 4, 5), "startDate") == datetime(2026, 1, 2, 3, 4, 5,
                                                                                          tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    got = balances.parse_instant(datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_two), "startDate")
    assert got == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC) and got.utcoffset() == timedelta(hours=2)


def test_an_unknown_schedule_frequency_is_a_400_listing_the_frequencies():
    error = refused(balances.run_at, datetime(2026, 1, 1, tzinfo=UTC), "HOURLY", 1, 1)
    assert (error.status, error.message) == (
        400, "frequency: 'HOURLY' is not one of ['DAILY', 'WEEKLY', 'MONTHLY', 'ANNUALLY']")


# -- faults ------------------------------------------------------------------------------------

def rule(body):
    return faults.parse_rule(body, "rule-1", "2026-01-01T00:00:00.000Z", {"GetMeter"}, 7)


@pytest.mark.parametrize("body", [[{"action": "drop"}], "drop", None])
def test_a_fault_rule_that_is_not_an_object_is_refused(body):
    error = refused(rule, body)
    assert (error.status, error.message) == (400, "body: must be a JSON object")


@pytest.mark.parametrize("action", ["explode", None, "STATUS"])
def test_a_fault_rule_with_an_unknown_action_is_refused_listing_the_actions(action):
    error = refused(rule, {"action": action})
    assert (error.status, error.message) == (400, "action: must be one of ['status', 'delay', 'drop']")


@pytest.mark.parametrize("message", ["x" * 501, 5, ["a"]])
def test_a_status_faults_message_is_a_string_of_at_most_500_characters(message):
    error = refused(rule, {"action": "status", "status": 503, "message": message})
    assert (error.status, error.message) == (400, "message: must be a string of at most 500 characters")


def test_a_status_faults_message_of_500_characters_is_kept():
    assert rule({"action": "status", "status": 503, "message": "x" * 500}).message == "x" * 500


def test_a_probability_of_zero_is_refused():
    error = refused(rule, {"action": "drop", "probability": 0})
    assert (error.status, error.message) == (
        400, "probability: must be more than 0 (a rule that never fires is no rule)")
    assert rule({"action": "drop", "probability": 0.001}).probability == 0.001


# -- journal -----------------------------------------------------------------------------------

def b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


@pytest.mark.parametrize("credential", [b"justanid", b"id:\x01secret"])
def test_basic_text_that_is_not_an_id_colon_secret_credential_is_left_as_it_is(credential):
    text = f"Authorization: Basic {b64(credential)}"
    assert journal.redact_string(text) == text


def test_a_basic_id_colon_secret_credential_is_hidden():
    assert journal.redact_string(f"Authorization: Basic {b64(b'id:secret')}") == "Authorization: Basic [REDACTED]"


@pytest.mark.parametrize("status", ["4x", "40", "4xxx", "abc", "x04"])
def test_a_journal_status_filter_is_a_code_or_a_class(status):
    with pytest.raises(ValueError) as caught:
        journal.JournalFilter(status=status)
    assert str(caught.value) == f"status: {status!r} is neither a status code (404) nor a class (4xx)"


@pytest.mark.parametrize("status", [None, 0])
def test_an_entry_without_a_status_matches_no_status_filter(status):
    assert journal.JournalFilter(status="4xx").status_matches(status) is False
    assert journal.JournalFilter(status="404").status_matches(status) is False
    assert journal.JournalFilter().status_matches(status) is True


def test_a_status_class_filter_matches_its_class_only():
    both = journal.JournalFilter(status="4xx")
    assert [both.status_matches(s) for s in (400, 404, 499, 500, 399)] == [True, True, True, False, False]
    assert [journal.JournalFilter(status="404").status_matches(s) for s in (404, 400)] == [True, False]


# -- search ------------------------------------------------------------------------------------

NUMBER_FIELDS = {"amount": search.SearchField("amount", "number")}


@pytest.mark.parametrize("value", ["NaN", "nan", "sNaN", "inf", "-Infinity"])
def test_a_search_term_that_is_not_a_finite_number_is_a_400(value):
    # Before the fix, ``amount>NaN`` reached Decimal's ordering of a NaN: a 500.
    error = refused(search.matcher, search.parse_query(f"amount>{value}"), NUMBER_FIELDS)
    assert (error.status, error.message) == (400, f"searchQuery: 'amount' takes a number, not {value!r}")


@pytest.mark.parametrize("value", [True, False, "NaN", "Infinity", None, "ten"])
def test_an_entity_value_that_is_not_a_number_matches_no_number_term(value):
    for query in ("amount>=0", "amount<=0", "amount:1", "amount:0"):
        assert search.matcher(search.parse_query(query), NUMBER_FIELDS)({"amount": value}) is False
    assert search.matcher(search.parse_query("amount:1"), NUMBER_FIELDS)({"amount": 1}) is True


def test_number_sort_puts_values_that_are_not_numbers_at_zero_and_never_fails():
    entities = [{"n": 5}, {"n": "NaN"}, {"n": -1}, {"n": True}, {"n": "2"}, {"n": 0.5}]
    assert [e["n"] for e in search.ordered(entities, "n", "number")] == [-1, "NaN", True, 0.5, "2", 5]


def test_boolean_sort_puts_false_before_true_and_keeps_creation_order_of_ties():
    entities = [{"id": 1, "on": True}, {"id": 2, "on": False}, {"id": 3, "on": True}, {"id": 4, "on": False}]
    assert [e["id"] for e in search.ordered(entities, "on", "boolean")] == [2, 4, 1, 3]
    assert [e["id"] for e in search.ordered(entities, "on", "boolean", descending=True)] == [1, 3, 2, 4]


# -- webhook policy ----------------------------------------------------------------------------

def test_a_host_idna_cannot_encode_is_kept_lowered():
    too_long = "\u00c9" * 70 + ".Example.com"     # a label over 63 characters: no IDNA form
    assert wp.normalise_host(too_long) == "\u00e9" * 70 + ".example.com"
    assert wp.normalise_host("B\u00fccher.example.") == "xn--bcher-kva.example"


# -- measurements ------------------------------------------------------------------------------

FIELDS = frozenset({"a", "b"})


@pytest.mark.parametrize("text", [
    "",            # nothing
    "a +",         # an operator without its right operand
    "a * (b -",    # nor inside parentheses
    "-",           # a minus without its operand
    "- *",
    ")",           # a token no operand starts with
    "a * /",
    "(a",          # an unclosed parenthesis
    "(a b)",
    "a b",         # two operands in a row
    "-" * 101 + "a",                  # deeper than 100
    "(" * 101 + "a" + ")" * 101,
])
def test_a_derived_calculation_that_does_not_parse_is_not_evaluated(text):
    from mockserver.domain import measurements
    assert measurements.derived_calculation(text, FIELDS) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("-" * 100 + "a", "3"),                # 100 deep is still read
    ("-" * 99 + "a", "-3"),
    ("(" * 100 + "a" + ")" * 100, "3"),
    ("a - - b", "7"),
    ("a * (b + 1) - -a", "18"),
    ("b / a / 2", "0.6666666666666666666666666666666665"),  # 4/3 to 34 digits, then halved
    ("a - b - 1", "-2"),
])
def test_a_derived_calculation_is_exact_decimal_arithmetic(text, expected):
    from mockserver.domain import measurements
    assert measurements.derived_calculation(text, FIELDS).evaluate({"a": D(3), "b": D(4)}) == D(expected)


DISK_METER = {"id": "m1", "code": "disk", "dataFields": [{"category": "MEASURE", "code": "gb"},
                                                         {"category": "WHERE", "code": "region"}],
              "derivedFields": [{"category": "MEASURE", "code": "tb", "calculation": "gb / 1000"},
                                {"category": "WHAT", "code": "kind", "calculation": "'x'"}]}


def read_one(raw):
    from mockserver.domain import measurements
    schema = measurements.MeterSchema.of(DISK_METER)
    return measurements.read(raw, lambda code: schema if code == "disk" else None)


def test_a_meters_derived_codes_are_its_derived_fields_only():
    from mockserver.domain import measurements
    assert measurements.MeterSchema.of(DISK_METER).derived_codes() == frozenset({"tb", "kind"})
    assert measurements.MeterSchema.of({"id": "m", "dataFields": []}).derived_codes() == frozenset()


@pytest.mark.parametrize(("ets", "message"), [
    ("tomorrow", "ets: 'tomorrow' is not an ISO-8601 date-time"),
    (5, "ets: 5 is not an ISO-8601 date-time"),
    ("2025-12-31T23:59:59.999Z", "ets: 2025-12-31T23:59:59.999Z is earlier than ts (2026-01-01T00:00:00Z)"),
])
def test_an_ets_that_is_not_a_date_time_after_ts_is_refused(ets, message):
    error = refused(read_one, {"meter": "disk", "account": "acme", "ts": "2026-01-01T00:00:00Z", "ets": ets})
    assert (error.status, error.message) == (400, message)


def test_an_ets_equal_to_ts_is_kept_in_milliseconds():
    measurement, _ = read_one({"meter": "disk", "account": "acme", "ts": "2026-01-01T00:00:00Z",
                               "ets": "2026-01-01T00:00:00Z", "measure": {"gb": 2500}})
    assert (measurement.ts, measurement.ets) == (1767225600000, 1767225600000)
    assert measurement.values == {"gb": D(2500), "tb": D("2.5")}


def test_readings_stay_right_past_the_size_of_the_shared_value_caches():
    # The caches of numbers, times and texts empty themselves when full (4,096 entries):
    # reading 5,000 distinct ones of each must still give each its own value.
    from mockserver.domain import measurements
    for i in range(5000):
        assert measurements.to_decimal(i + 0.5) == D(i) + D("0.5")
        assert measurements.to_decimal(10**6 + i) == D(10**6 + i)
    for i in range(0, 5000, 1):
        ts = f"2026-01-01T00:00:{i // 1000:02d}.{i % 1000:03d}Z"
        measurement, _ = read_one({"meter": "disk", "account": "acme", "ts": ts,
                                   "where": {"region": f"r{i}"}})
        assert (measurement.ts, measurement.values["region"]) == (1767225600000 + i, f"r{i}")


# -- usage query -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "message"), [
    (5, "startDate: required, a date-time like 2026-01-01T00:00:00Z"),
    (None, "startDate: required, a date-time like 2026-01-01T00:00:00Z"),
    ("soon", "startDate: 'soon' is not a date-time like 2026-01-01T00:00:00Z"),
    ("0001-01-01T00:00:00+01:00", "startDate: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 in UTC"),
])
def test_a_usage_date_time_that_cannot_be_read_is_a_400(value, message):
    from mockserver.domain import usage_query as uq
    error = refused(uq.parse_instant, value, "startDate")
    assert (error.status, error.message) == (400, message)


def test_a_usage_date_time_without_an_offset_is_utc():
    from mockserver.domain import usage_query as uq
    assert uq.parse_instant("2026-01-01T00:00:00", "startDate") == 1767225600000
    assert uq.parse_instant("2026-01-01T00:00:00+02:00", "startDate") == 1767225600000 - 7_200_000


def test_the_whole_period_is_one_bucket_whatever_the_time():
    from mockserver.domain import usage_query as uq
    buckets = uq.Buckets("WHOLE_PERIOD", 1000, 5000)
    assert buckets.of(1000) == (1000, 5000) and buckets.of(4999) == (1000, 5000)


@pytest.mark.parametrize(("period", "start"), [
    ("LAST_30_DAYS", "2026-02-02T10:30:00"), ("LAST_35_DAYS", "2026-01-28T10:30:00"),
    ("LAST_90_DAYS", "2025-12-04T10:30:00"), ("LAST_120_DAYS", "2025-11-04T10:30:00"),
])
def test_the_longer_export_windows_end_at_run_time(period, start):
    from mockserver.domain import usage_query as uq
    got = uq.export_period(period, datetime(2026, 3, 4, 10, 30, tzinfo=UTC))
    assert (got[0].isoformat()[:19], got[1].isoformat()[:19]) == (start, "2026-03-04T10:30:00")


def test_last_year_from_29_february_starts_on_28_february():
    from mockserver.domain import usage_query as uq
    got = uq.export_period("LAST_YEAR", datetime(2024, 2, 29, 12, tzinfo=UTC))
    assert got == (datetime(2023, 2, 28, 12, tzinfo=UTC), datetime(2024, 2, 29, 12, tzinfo=UTC))


def test_an_unknown_export_time_period_is_a_400_listing_the_periods():
    from mockserver.domain import usage_query as uq
    error = refused(uq.export_period, "LAST_WEEK", datetime(2026, 3, 4, tzinfo=UTC))
    assert (error.status, error.message) == (
        400, "timePeriod: 'LAST_WEEK' is not one of TODAY, YESTERDAY, WEEK_TO_DATE, MONTH_TO_DATE, YEAR_TO_DATE, "
             "PREVIOUS_WEEK, PREVIOUS_MONTH, PREVIOUS_QUARTER, PREVIOUS_YEAR, LAST_12_HOURS, LAST_7_DAYS, "
             "LAST_30_DAYS, LAST_35_DAYS, LAST_90_DAYS, LAST_120_DAYS, LAST_YEAR")


USAGE_METERS = {"m-disk": {"id": "m-disk", "code": "disk", "dataFields": [
    {"category": "MEASURE", "code": "gb"}, {"category": "WHERE", "code": "region"}]},
    "m-cpu": {"id": "m-cpu", "code": "cpu", "dataFields": [{"category": "MEASURE", "code": "cores"}]}}
JAN_1 = 1767225600000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def usage(ts: int, account: str = "acme", ets: int | None = None, **values):
    from mockserver.domain.measurements import Measurement
    return Measurement(None, "disk", account, ts, ets, values)


def reader(streams):
    def read(meter_id, start, end, accounts):
        return [x for x in streams.get(meter_id, ()) if start <= x.ts < end and (accounts is None or x.account in accounts)]
    return read


def usage_query(body):
    from mockserver.domain import usage_query as uq
    return uq.check_query(body, USAGE_METERS, {"a-acme": {}}, start_ms=JAN_1, end_ms=JAN_1 + 48 * HOUR)


def test_a_raw_row_shows_the_ets_in_milliseconds_after_the_ts():
    from mockserver.domain import usage_query as uq
    rows, more = uq.raw_rows(usage_query({}), reader({"m-disk": [usage(JAN_1 + HOUR, ets=JAN_1 + 2 * HOUR + 5,
                                                                        gb=D(2))]}),
                             USAGE_METERS, {"acme": "a-acme"}, limit=None)
    assert more is False and rows == [{"gb": 2, "ts": "2026-01-01T01:00:00.000Z", "ets": "2026-01-01T02:00:00.005Z",
                                       "accountId": "a-acme", "accountCode": "acme", "meterId": "m-disk",
                                       "meterCode": "disk"}]


def test_a_dimension_filter_leaves_its_other_values_out_of_an_aggregation():
    from mockserver.domain import usage_query as uq
    data = [usage(JAN_1 + HOUR, region="eu", gb=D(1)), usage(JAN_1 + 2 * HOUR, region="us", gb=D(10)),
            usage(JAN_1 + 3 * HOUR, region="eu", gb=D(100)), usage(JAN_1 + 4 * HOUR, gb=D(1000))]
    query = usage_query({"aggregations": [{"meterId": "m-disk", "fieldCode": "gb", "fieldType": "MEASURE",
                                           "function": "SUM"}],
                         "dimensionFilters": [{"meterId": "m-disk", "fieldCode": "region", "values": ["eu"]}],
                         "groups": [{"groupType": "TIME", "frequency": "DAY"}]})
    rows, more = uq.aggregated_rows(query, reader({"m-disk": data}), {"acme": "a-acme"}, limit=None)
    assert more is False and rows == [{"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z",
                                       "timeGroup": "2026-01-01T00:00:00.000Z", "gb_sum": 101}]


def test_a_series_counts_its_measurements():
    from mockserver.domain import usage_query as uq
    assert len(uq.Series([usage(JAN_1, gb=D(1)), usage(JAN_1 + 1, gb=D(2))])) == 2
    assert len(uq.Series([])) == 0


def test_a_meter_no_aggregation_reads_is_not_read():
    from mockserver.domain import usage_query as uq
    asked = []

    def read(meter_id, start, end, accounts):
        asked.append(meter_id)
        return reader({"m-disk": [usage(JAN_1, gb=D(3))], "m-cpu": [usage(JAN_1, cores=D(8))]})(
            meter_id, start, end, accounts)

    query = uq.UsageQuery(start_ms=JAN_1, end_ms=JAN_1 + HOUR, meter_ids=("m-cpu", "m-disk"), account_ids=None,
                          filters={"m-disk": (("region", frozenset({"eu"})),)},
                          columns=(uq.Column("gb_max", "MAX", {"m-disk": "gb"}),))
    rows, _ = uq.aggregated_rows(query, read, {}, limit=None)
    assert asked == ["m-disk"]
    assert rows == []      # its one measurement has no region: filtered out, so no group at all


# -- pricing -----------------------------------------------------------------------------------

def test_dec_refuses_a_boolean_and_reads_text_exactly():
    from mockserver.domain import pricing
    with pytest.raises(TypeError) as caught:
        pricing.dec(True)
    assert str(caught.value) == "not a number: True"
    assert str(pricing.dec("1.250")) == "1.250"
    assert pricing.dec(None) == D(0)


COMMITMENT = {"id": "c1", "amount": 300, "currency": "USD", "startDate": "2026-01-01", "endDate": "2026-04-01",
              "billingPlanId": "p1"}


def jan(day: int, month: int = 1) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def test_commitment_fees_with_a_plan_billed_monthly_are_one_instalment_a_month_in_arrears():
    from mockserver.domain import pricing
    fees = pricing.commitment_fees(COMMITMENT, ("monthly", 1))      # the frequency in any case
    last = timedelta(microseconds=1)
    assert fees == [(jan(1, 2) - last, D(100), (jan(1, 1), jan(1, 2))),
                    (jan(1, 3) - last, D(100), (jan(1, 2), jan(1, 3))),
                    (jan(1, 4) - last, D(100), (jan(1, 3), jan(1, 4)))]


def test_commitment_fees_for_a_bill_frequency_without_periods_are_none():
    from mockserver.domain import pricing
    assert pricing.commitment_fees(COMMITMENT, ("QUARTERLY", 1)) == []
    assert pricing.commitment_fees(COMMITMENT, ("AD_HOC", 1)) == []


def test_a_bill_epoch_after_the_start_makes_a_first_short_cycle():
    from mockserver.domain import pricing
    fees = pricing.commitment_fees({**COMMITMENT, "billEpoch": "2026-01-15"}, ("MONTHLY", 1))
    assert [(cycle, amount) for _, amount, cycle in fees] == [
        ((jan(1), jan(15)), D(75)), ((jan(15), jan(15, 2)), D(75)), ((jan(15, 2), jan(15, 3)), D(75)),
        ((jan(15, 3), jan(1, 4)), D(75))]


def test_a_billing_offset_skips_cycles_and_past_the_last_leaves_no_fee():
    from mockserver.domain import pricing
    fees = pricing.commitment_fees({**COMMITMENT, "billingOffset": 2}, ("MONTHLY", 1))
    assert [(cycle, amount) for _, amount, cycle in fees] == [((jan(1, 3), jan(1, 4)), D(300))]
    assert pricing.commitment_fees({**COMMITMENT, "billingOffset": 3}, ("MONTHLY", 1)) == []


SERVICE = {"servicePeriodStartDate": "2026-01-01T00:00:00Z", "servicePeriodEndDate": "2026-02-01T00:00:00Z",
           "currency": "USD"}


def drawn_by_line(credit_type: str | None) -> dict:
    from mockserver.domain import pricing
    credit = {"id": "cr", "lineItemType": "USAGE_CREDIT", "productId": "B", "subtotal": -45, **SERVICE}
    if credit_type:
        credit["additional"] = {"pricingType": credit_type}
    charges = [{"id": "l1", "lineItemType": "USAGE", "productId": "A", "subtotal": 50, **SERVICE},
               {"id": "l2", "lineItemType": "USAGE", "productId": "B", "subtotal": 40, **SERVICE},
               {"id": "l3", "lineItemType": "USAGE", "productId": "B", "subtotal": 30, **SERVICE}, credit]
    lines, drawn = pricing.balance_lines([{"id": "b1", "amount": 1000, "currency": "USD"}], charges,
                                         (jan(1), jan(1, 2)))
    assert drawn == {"b1": sum(-line["subtotal"] for line in lines)}
    return {line["referencedLineItemId"]: line["subtotal"] for line in lines}


def test_a_product_credit_nets_its_products_charges_first_to_last_before_a_balance_draws():
    # 45 of credit for product B: l2 (40) is paid, l3 (30) owes 25; product A's l1 is untouched.
    assert drawn_by_line(None) == {"l1": D(-50), "l3": D(-25)}
    assert drawn_by_line("PRODUCT_CREDIT") == {"l1": D(-50), "l3": D(-25)}


def test_a_global_credit_nets_any_charge_first_to_last_and_stops_when_used_up():
    assert drawn_by_line("GLOBAL_CREDIT") == {"l1": D(-5), "l2": D(-40), "l3": D(-30)}


# -- export rendering --------------------------------------------------------------------------

def test_a_column_name_that_is_not_unicode_is_named_in_the_error():
    from mockserver.domain import export_rendering
    with pytest.raises(export_rendering.RenderError) as caught:
        export_rendering.render([{"id": "r1", "gb": 1}], ["id", "gb\ud800"], "CSV")
    assert str(caught.value) == "column 'gb\\ud800' is not valid Unicode text (it holds a lone surrogate)"


# -- lookup data -------------------------------------------------------------------------------

RATES = {"fields": [{"name": "code", "type": "STRING"}, {"name": "rate", "type": "NUMBER"}], "keys": ["code"]}


@pytest.mark.parametrize("item", [["eu", 1], "eu", 5])
def test_an_upsert_by_key_whose_item_is_not_an_object_is_refused(item):
    from mockserver.domain import lookup_data
    error = refused(lookup_data.item_for_key, lookup_data.DataSchema.of(RATES), "eu", item, "items[2]")
    assert (error.status, error.message) == (400, "items[2]: must be an object of field values")


def test_an_upsert_by_key_takes_its_key_fields_from_the_key():
    from mockserver.domain import lookup_data
    assert lookup_data.item_for_key(lookup_data.DataSchema.of(RATES), "eu", {"rate": 2}) == {"code": "eu", "rate": 2}


def test_a_csv_file_the_csv_reader_refuses_is_a_400():
    from mockserver.domain import lookup_data
    content = ('code,rate\n"' + "x" * 200_000 + '",1\n').encode()
    error = refused(lookup_data.parse, lookup_data.DataSchema.of(RATES), content, lookup_data.CSV)
    assert (error.status, error.message) == (400, "file: not CSV (field larger than field limit (131072))")


# -- seed fixtures -----------------------------------------------------------------------------

def test_an_organization_id_of_200_characters_is_the_longest():
    from mockserver.domain import seed_fixture
    assert seed_fixture.check_org_id("o" * 200) == "o" * 200
    error = refused(seed_fixture.check_org_id, "o" * 201)
    assert (error.status, error.message) == (
        400, f"organizations: organization id {'o' * 40!r}... is longer than 200 characters")


def fixture_groups():
    from mockserver.domain import seed_fixture
    return {"products": seed_fixture.Group("products"),
            "organizationconfig": seed_fixture.Group("organizationconfig", singleton=True)}


@pytest.mark.parametrize("name", [".hidden", "-dash", "a b", "x" * 101, "caf\u00e9"])
def test_a_reference_name_outside_the_pattern_is_refused(name):
    from mockserver.domain import seed_fixture
    with pytest.raises(ValueError) as caught:
        seed_fixture.parse_ref(f"@products/{name}", fixture_groups())
    text = f"@products/{name}"
    assert str(caught.value) == (f"{text[:80]!r}: {name[:80]!r} is not a reference name (1-100 letters, digits, "
                                 f"'_', '.' or '-', not starting with '.' or '-')")


def test_a_reference_name_of_100_characters_is_accepted():
    from mockserver.domain import seed_fixture
    assert seed_fixture.parse_ref("@products/" + "x" * 100, fixture_groups()) == ("products", "x" * 100)
    assert seed_fixture.parse_ref("@products/_a.b-c", fixture_groups()) == ("products", "_a.b-c")


@pytest.mark.parametrize(("content", "kind"), [(["products"], "a list"), ("products", "a string"),
                                               (5, "a number"), (True, "a boolean")])
def test_an_organizations_part_that_is_not_a_mapping_is_refused(content, kind):
    from mockserver.domain import seed_fixture
    error = refused(seed_fixture.read_organization, "org-1", content, fixture_groups())
    assert (error.status, error.message) == (
        400, f"organization 'org-1': must be a mapping of resource name to entities (got {kind})")


def test_an_empty_organizations_part_holds_nothing():
    from mockserver.domain import seed_fixture
    fixture = seed_fixture.read_organization("org-1", None, fixture_groups())
    assert (fixture.org_id, fixture.entries, fixture.measurements) == ("org-1", [], [])


# -- seeded fake data --------------------------------------------------------------------------

def test_a_commitment_starting_on_29_february_ends_on_28_february_a_year_later():
    from mockserver.domain import seed_faker
    doc = seed_faker.generate(seed_faker.SeedSize(seed=3, accounts=12, products=1, measurementsPerAccount=0,
                                                  start=date(2024, 2, 29)))
    assert doc["commitments"], "the seed makes at least one commitment"
    assert {(c["startDate"], c["endDate"]) for c in doc["commitments"].values()} == {("2024-02-29", "2025-02-28")}
    doc = seed_faker.generate(seed_faker.SeedSize(seed=3, accounts=12, products=1, measurementsPerAccount=0,
                                                  start=date(2024, 3, 1)))
    assert {(c["startDate"], c["endDate"]) for c in doc["commitments"].values()} == {("2024-03-01", "2025-03-01")}


# -- fake entities (the lenient mode's generator) ----------------------------------------------

def seeded_faker(seed: int = 1):
    from faker import Faker
    faker = Faker()
    faker.seed_instance(seed)
    return faker


def fake(schema, schemas=None, seed: int = 1):
    from mockserver.domain import fake_entities
    return fake_entities.fake_value(schema, seeded_faker(seed), schemas)


def test_fake_entity_refuses_a_schema_that_is_not_an_object():
    from mockserver.domain import fake_entities
    with pytest.raises(ValueError) as caught:
        fake_entities.fake_entity({"type": "string"}, seeded_faker())
    assert str(caught.value) == "the schema does not describe an object"


@pytest.mark.parametrize(("schema", "schemas"), [
    ({"$ref": "#/components/schemas/A"}, {"A": {"$ref": "#/components/schemas/B"},
                                          "B": {"$ref": "#/components/schemas/A"}}),   # a cycle
    ({"$ref": "other.json#/components/schemas/A"}, {"A": {"type": "integer"}}),      # not this document's
])
def test_a_reference_that_cannot_be_followed_is_an_empty_schema_a_string(schema, schemas):
    assert all(isinstance(fake(schema, schemas, seed), str) for seed in range(5))


def test_a_discriminator_without_a_mapping_names_the_branchs_schema():
    schemas = {"Cat": {"type": "object", "properties": {"lives": {"type": "integer"}}}}
    value = fake({"oneOf": [{"$ref": "#/components/schemas/Cat"}], "discriminator": {"propertyName": "kind"}},
                 schemas)
    assert value["kind"] == "Cat" and isinstance(value["lives"], int)


def test_a_required_field_the_schema_does_not_describe_still_gets_a_value():
    value = fake({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a", "zeta"]})
    assert set(value) == {"a", "zeta"} and isinstance(value["zeta"], str) and value["zeta"]


@pytest.mark.parametrize("seed", range(5))
def test_min_items_is_reached_with_repeats_unless_items_must_be_unique(seed):
    enum = fake({"type": "array", "minItems": 5, "items": {"enum": ["x", "y"]}}, seed=seed)
    assert len(enum) == 5 and set(enum) <= {"x", "y"}
    flags = fake({"type": "array", "minItems": 5, "items": {"type": "boolean"}}, seed=seed)
    assert len(flags) == 5 and all(isinstance(flag, bool) for flag in flags)
    unique = fake({"type": "array", "minItems": 5, "uniqueItems": True, "items": {"enum": ["x", "y"]}}, seed=seed)
    assert sorted(unique) == ["x", "y"]


@pytest.mark.parametrize("seed", range(5))
def test_numeric_exclusive_bounds_in_either_openapi_spelling(seed):
    assert fake({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7}, seed=seed) == 6    # 3.1
    assert fake({"type": "integer", "minimum": 5, "maximum": 7, "exclusiveMinimum": True,
                 "exclusiveMaximum": True}, seed=seed) == 6                                            # 3.0
    assert fake({"type": "number", "minimum": 1, "maximum": 1.001, "exclusiveMinimum": True}, seed=seed) == 1.0005
    assert fake({"type": "number", "minimum": 0.999, "maximum": 1, "exclusiveMaximum": True}, seed=seed) == 0.9995
    assert fake({"type": "number", "multipleOf": 0.5, "minimum": 1, "maximum": 1.5, "exclusiveMinimum": True},
                seed=seed) == 1.5
    assert fake({"type": "number", "multipleOf": 0.25, "minimum": 1, "maximum": 2}, seed=seed) in (
        1, 1.25, 1.5, 1.75, 2)


@pytest.mark.parametrize("example", ["c", 5, True])
def test_an_example_outside_the_enum_or_of_another_type_is_not_used(example):
    assert fake({"type": "string", "enum": ["a", "b"], "example": example}) in ("a", "b")
    assert fake({"type": "integer", "minimum": 10, "maximum": 10, "example": str(example)}) == 10
    assert fake({"type": "integer", "minimum": 10, "maximum": 10, "example": True}) == 10


def test_a_pattern_python_cannot_read_does_not_stop_the_generator():
    value = fake({"type": "string", "pattern": "(?<=a+)b", "maxLength": 3})    # variable-width look-behind
    assert isinstance(value, str) and 0 < len(value) <= 3


@pytest.mark.parametrize("pattern", [
    "(", r"(a)\1",              # not a pattern; a back-reference, which is not followed
    r"^[^\x00-\x7f]$",          # no printable ASCII character fits
    r"^[^\s\S]$",
])
def test_a_pattern_the_generator_cannot_follow_gives_none(pattern):
    from mockserver.domain import fake_entities
    assert fake_entities.from_pattern(pattern, random_for(1)) is None


def test_a_pattern_whose_strings_miss_the_length_bounds_gives_none():
    from mockserver.domain import fake_entities
    assert fake_entities.from_pattern("^a{5}$", random_for(1), 0, 3) is None
    assert fake_entities.from_pattern("^a{5}$", random_for(1), 5, 5) == "aaaaa"


def random_for(seed: int):
    import random
    return random.Random(seed)


@pytest.mark.parametrize(("pattern", "allowed"), [
    (r"^a[^b]c$", None),
    (r"^(cat|dog)s?$", {"cat", "cats", "dog", "dogs"}),
    (r"^(?:ab)+$", None),
    (r"^(?>ab)+$", None),
    (r"^[^abc]{3}$", None),
    (r"^[^A-Za-y0-9]$", None),
    (r"^x[^0-9a-zA-Z]y$", None),
])
def test_strings_from_negations_branches_and_groups_match_their_pattern(pattern, allowed):
    import re as regex
    from mockserver.domain import fake_entities
    for seed in range(8):
        text = fake_entities.from_pattern(pattern, random_for(seed))
        assert text is not None and regex.fullmatch(pattern, text), (pattern, text)
        assert allowed is None or text in allowed


@pytest.mark.parametrize(("sizes", "message"), [
    ({"accounts": 0}, "accounts: 0 is outside 1-1000"),
    ({"accounts": 1001}, "accounts: 1001 is outside 1-1000"),
    ({"accounts": True}, "accounts: True is outside 1-1000"),
    ({"accounts": 2.0}, "accounts: 2.0 is outside 1-1000"),
    ({"products": 0}, "products: 0 is outside 1-8"),
    ({"products": 9}, "products: 9 is outside 1-8"),
    ({"days": 0}, "days: 0 is outside 1-366"),
    ({"days": 367}, "days: 367 is outside 1-366"),
    ({"seed": -1}, "seed: -1 is outside 0-2147483647"),
    ({"seed": 2**31}, "seed: 2147483648 is outside 0-2147483647"),
    ({"measurementsPerAccount": -1}, "measurements_per_account: -1 is outside 0-10000"),
    ({"measurementsPerAccount": 10001}, "measurements_per_account: 10001 is outside 0-10000"),
    ({"accounts": 1000, "measurementsPerAccount": 201},
     "measurements_per_account: accounts x measurements_per_account is 201000; at most 200000 measurements "
     "are made at once"),
])
def test_a_seed_size_beyond_its_bounds_is_a_400_naming_the_field_as_the_caller_spells_it(sizes, message):
    from mockserver.domain import seed_faker
    error = refused(seed_faker.SeedSize(**sizes).check, {"measurementsPerAccount": "measurements_per_account"})
    assert (error.status, error.message) == (400, message)


@pytest.mark.parametrize("sizes", [
    {"accounts": 1, "products": 1, "days": 1, "seed": 0, "measurementsPerAccount": 0},
    {"accounts": 1000, "measurementsPerAccount": 200, "products": 8, "days": 366, "seed": 2**31 - 1},
    {"accounts": 20, "measurementsPerAccount": 10000},
])
def test_seed_sizes_at_their_bounds_are_accepted(sizes):
    from mockserver.domain import seed_faker
    size = seed_faker.SeedSize(**sizes)
    assert size.check() is size


def test_the_default_seed_size_is_the_documented_one():
    from mockserver.domain import seed_faker
    size = seed_faker.SeedSize()
    assert (size.seed, size.accounts, size.products, size.measurementsPerAccount, size.start, size.days) == (
        0, 10, 3, 100, date(2025, 1, 1), 31)


@pytest.mark.parametrize("text", ["2026-02-30", "2026-2-3", 20260101, None, "2026-01-01T00:00:00Z", " 2026-01-01"])
def test_a_seed_start_that_is_not_a_yyyy_mm_dd_date_is_a_400(text):
    from mockserver.domain import seed_faker
    error = refused(seed_faker.parse_start, text, "--start")
    assert (error.status, error.message) == (400, f"--start: {str(text)[:40]!r} is not a date (YYYY-MM-DD)")
    assert seed_faker.parse_start("2024-02-29") == date(2024, 2, 29)


CATALOGUE = {  # product code: (name, measure field, its unit, the main aggregation, whole numbers)
    "storage": ("Object Storage", "gb_hours", "GB-h", "SUM", False),
    "api": ("API Requests", "requests", "requests", "SUM", True),
    "compute": ("Compute", "vcpu_hours", "h", "SUM", False),
    "transfer": ("Data Transfer", "gb_out", "GB", "SUM", False),
    "seats": ("Team Seats", "active_users", "users", "MAX", True),
    "messaging": ("Messaging", "messages", "messages", "SUM", True),
    "logs": ("Log Analytics", "gb_ingested", "GB", "SUM", False),
    "streaming": ("Video Streaming", "minutes", "min", "SUM", False),
}
REGIONS = {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"}


@pytest.fixture(scope="module")
def seeded_document():
    from mockserver.domain import seed_faker
    return seed_faker.generate(seed_faker.SeedSize(seed=11, accounts=30, products=8, measurementsPerAccount=6,
                                                   start=date(2026, 1, 5), days=10))


def test_a_generated_organization_has_every_catalogue_product_with_its_meter_and_aggregations(seeded_document):
    doc = seeded_document
    assert list(doc) == ["products", "meters", "aggregations", "compoundaggregations", "plantemplates", "plans",
                         "pricings", "accounts", "accountplans", "commitments", "measurements"]
    assert {code: product["name"] for code, product in doc["products"].items()} == {
        code: entry[0] for code, entry in CATALOGUE.items()}
    for code, (name, field, unit, function, _) in CATALOGUE.items():
        assert doc["products"][code] == {"name": name, "code": code}
        meter = doc["meters"][code]
        assert (meter["productId"], meter["name"], meter["code"], meter["derivedFields"]) == (
            f"@products/{code}", name, code, [])
        assert [(f["category"], f["code"], f.get("unit")) for f in meter["dataFields"]] == [
            ("MEASURE", field, unit), ("WHERE", "region", None), ("WHO", "user", None)]
        main = doc["aggregations"][f"{code}_{field}"]
        assert (main["meterId"], main["code"], main["aggregation"], main["targetField"], main["rounding"],
                main["quantityPerUnit"], main["unit"]) == (f"@meters/{code}", f"{code}_{field}", function, field,
                                                           "NONE", 1, unit)
        events = doc["aggregations"][f"{code}_events"]
        assert (events["meterId"], events["name"], events["aggregation"], events["targetField"], events["unit"]) == (
            f"@meters/{code}", f"{name} events", "COUNT", field, "events")
        thousands = doc["compoundaggregations"][f"{code}_thousands"]
        assert (thousands["productId"], thousands["code"], thousands["calculation"], thousands["unit"]) == (
            f"@products/{code}", f"{code}_thousands", f"{code}_{field} / 1000", f"k {unit}")


def test_a_generated_product_has_a_monthly_usd_template_and_a_standard_and_a_premium_plan(seeded_document):
    doc = seeded_document
    for code, (name, field, _, _, _) in CATALOGUE.items():
        template = doc["plantemplates"][f"{code}_monthly"]
        assert (template["productId"], template["name"], template["billFrequency"], template["currency"],
                template["standingCharge"]) == (f"@products/{code}", f"{name} monthly", "MONTHLY", "USD", 0)
        standard, premium = doc["plans"][f"{code}_standard"], doc["plans"][f"{code}_premium"]
        assert (standard["planTemplateId"], standard["name"], standard.get("standingCharge")) == (
            f"@plantemplates/{code}_monthly", f"{name} Standard", None)
        assert (premium["planTemplateId"], premium["name"], premium["standingChargeDescription"]) == (
            f"@plantemplates/{code}_monthly", f"{name} Premium", f"{name} Premium subscription")
        assert premium["standingCharge"] in (29, 49, 99, 199)
        tiers = doc["pricings"][f"{code}_standard"]
        assert (tiers["planId"], tiers["aggregationId"], tiers["startDate"], tiers["cumulative"]) == (
            f"@plans/{code}_standard", f"@aggregations/{code}_{field}", "2026-01-05T00:00:00Z", True)
        prices = [band["unitPrice"] for band in tiers["pricingBands"]]
        assert [band["lowerLimit"] for band in tiers["pricingBands"]][0] == 0 and len(prices) == 3
        assert prices[0] > prices[1] > prices[2] > 0 and prices[1] == pytest.approx(prices[0] * 0.8, abs=1e-4)
        volume = doc["pricings"][f"{code}_premium"]
        assert (volume["planId"], volume["compoundAggregationId"], volume["cumulative"]) == (
            f"@plans/{code}_premium", f"@compoundaggregations/{code}_thousands", False)
        assert [band["lowerLimit"] for band in volume["pricingBands"]] == [0, 10, 100]
    limits = {code: [b["lowerLimit"] for b in doc["pricings"][f"{code}_standard"]["pricingBands"]]
              for code in ("storage", "api", "seats", "logs")}
    assert limits == {"storage": [0, 4000, 40000], "api": [0, 50000, 500000], "seats": [0, 2500, 25000],
                      "logs": [0, 120, 1200]}       # a hundred and a thousand times the typical value


def test_generated_accounts_are_on_one_to_three_plans_and_about_a_third_have_a_commitment(seeded_document):
    doc = seeded_document
    assert len(doc["accounts"]) == 30
    for code, account in doc["accounts"].items():
        assert (account["code"], account["emailAddress"], account["currency"], account["address"]["country"]) == (
            code, f"billing@{code}.example", "USD", "US")
        assert account["daysBeforeBillDue"] in (7, 14, 30)
        plans = [p for key, p in doc["accountplans"].items() if key.startswith(f"{code}.")]
        assert 1 <= len(plans) <= 3
        assert all(p["accountId"] == f"@accounts/{code}" and p["startDate"] == "2026-01-05T00:00:00Z"
                   for p in plans)
    assert 3 <= len(doc["commitments"]) <= 20
    for code, commitment in doc["commitments"].items():
        assert (commitment["accountId"], commitment["currency"], commitment["startDate"], commitment["endDate"]) == (
            f"@accounts/{code}", "USD", "2026-01-05", "2027-01-05")
        assert commitment["amount"] in (1000, 2500, 5000, 10000, 25000)


def test_generated_measurements_are_each_accounts_own_products_over_the_days_from_start(seeded_document):
    import re as regex
    doc = seeded_document
    rows = doc["measurements"]
    assert len(rows) == 30 * 6
    accounts = list(doc["accounts"])
    for index, code in enumerate(accounts):
        mine = [row for row in rows if row["account"] == code]
        assert [row["uid"] for row in mine] == [f"s11-a{index}-m{n}" for n in range(6)]
        assert [row["ts"] for row in mine] == sorted(row["ts"] for row in mine)
        products = {key.split(".", 1)[1] for key in doc["accountplans"] if key.startswith(f"{code}.")}
        for row in mine:
            assert row["meter"] in products
            assert "2026-01-05T00:00:00Z" <= row["ts"] < "2026-01-15T00:00:00Z"
            assert regex.fullmatch(r"2026-01-\d\dT\d\d:\d\d:\d\dZ", row["ts"])
            name, field, _, _, whole = CATALOGUE[row["meter"]]
            (value,) = row["measure"].values()
            assert list(row["measure"]) == [field] and value > 0
            assert isinstance(value, int) if whole else isinstance(value, float)
            assert row["where"]["region"] in REGIONS
            assert regex.fullmatch(r"user(0[1-9]|[1-3][0-9]|40)", row["who"]["user"])


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SHAPES = {  # a string field's name: the shape of the realistic value it gets
    "id": UUID, "uid": UUID, "parentAccountId": UUID, "billID": UUID,
    "fileName": r"[a-z]+\.[a-z0-9]+",
    "emailAddress": r"[^@\s]+@[^@\s]+\.[a-z]+", "backupEmail": r"[^@\s]+@[^@\s]+\.[a-z]+",
    "webhookUrl": r"https?://\S+", "redirectUri": r"https?://\S+",
    "currency": r"[A-Z]{3}", "billingCurrency": r"[A-Z]{3}",
    "firstName": r"[A-Z][A-Za-z'-]+", "lastName": r"[A-Z][A-Za-z' -]+",
    "country": r"[A-Z]{2}", "countryCode": r"[A-Z]{2}",
    "locality": r"[A-Z][A-Za-z' -]+", "city": r"[A-Z][A-Za-z' -]+", "region": r"[A-Z][A-Za-z ]+",
    "postCode": r"\d{5}", "zipCode": r"\d{5}", "postalCode": r"\d{5}",
    "addressLine1": r"\d+ [A-Z].+", "addressLine4": r"\d+ [A-Z].+",
    "timezone": r"[A-Za-z_]+/[A-Za-z_/+-]+",
    "phoneNumber": r"[0-9().+x -]{10,}", "contactNumber": r"[0-9().+x -]{10,}",
    "code": r"[a-z]+_[a-z]+", "shortName": r"[a-z]+_[a-z]+", "accountCode": r"[a-z]+_[a-z]+",
    "name": r"[A-Z]\S* \S.*", "displayName": r"[A-Z]\S* \S.*", "organizationName": r"[A-Z]\S* \S.*",
    "readableName": r"[A-Z]\S* \S.*", "planName": r"[A-Z]\S* \S.*",
    "description": r"[A-Z].* .*\.", "longDescription": r"[A-Z].* .*\.", "notes": r"[A-Z].* .*\.",
    "message": r"[A-Z].* .*\.",
    "unit": r"GB|GB-hour|request|seat|event|minute", "units": r"GB|GB-hour|request|seat|event|minute",
    "accountNumber": r"[A-Z]{2}-\d{5}", "purchaseOrderReference": r"[A-Z]{2}-\d{5}",
    "createdBy": r"[a-z0-9_.]+", "lastModifiedBy": r"[a-z0-9_.]+", "approvedBy": r"[a-z0-9_.]+",
    "colour": r"[a-z]+",
}


@pytest.mark.parametrize("seed", range(6))
def test_a_string_fields_name_picks_the_shape_of_its_value(seed):
    import re as regex
    value = fake({"type": "object", "properties": {name: {"type": "string"} for name in SHAPES}}, seed=seed)
    wrong = {name: value[name] for name, shape in SHAPES.items() if not regex.fullmatch(shape, value[name])}
    assert wrong == {}


@pytest.mark.parametrize("seed", range(6))
def test_unbounded_numbers_are_realistic_amounts_up_to_a_thousand_and_counts_up_to_a_hundred(seed):
    schema = {"type": "object", "properties": {
        "count": {"type": "integer"}, "amount": {"type": "integer"}, "totalCost": {"type": "integer"},
        "ratio": {"type": "number"}, "belowFifty": {"type": "integer", "maximum": 50},
        "wide": {"type": "integer", "format": "int32"}, "negative": {"type": "integer", "maximum": -2000}}}
    values = [fake(schema, seed=seed * 40 + n) for n in range(40)]
    counts = [v["count"] for v in values]
    amounts = [v["amount"] for v in values] + [v["totalCost"] for v in values]
    assert 0 <= min(counts) and max(counts) <= 100 and max(counts) > 50
    assert 0 <= min(amounts) and max(amounts) <= 1000 and max(amounts) > 100
    assert all(0 <= v["ratio"] <= 1000 and round(v["ratio"], 2) == v["ratio"] for v in values)
    assert max(v["ratio"] for v in values) > 100
    below = [v["belowFifty"] for v in values]
    assert -50 <= min(below) < 0 and max(below) <= 50           # a hundred below the maximum
    assert all(0 <= v["wide"] <= 100 for v in values)           # int32's whole range: a realistic value
    assert all(-2100 <= v["negative"] <= -2000 for v in values)


def test_a_map_holds_one_or_two_entries():
    sizes = {len(fake({"type": "object", "additionalProperties": {"type": "integer"}}, seed=seed))
             for seed in range(30)}
    assert sizes == {1, 2}
    assert all(isinstance(key, str) and isinstance(item, str) for seed in range(5)
               for key, item in fake({"type": "object", "additionalProperties": True}, seed=seed).items())


def test_an_unbounded_repeat_runs_at_most_eight_past_its_minimum():
    from mockserver.domain import fake_entities
    star = {len(fake_entities.from_pattern("^a*$", random_for(seed))) for seed in range(200)}
    plus = {len(fake_entities.from_pattern("^(?:ab)+$", random_for(seed))) // 2 for seed in range(200)}
    bounded = {len(fake_entities.from_pattern("^a{2,40}$", random_for(seed))) for seed in range(200)}
    assert (star, plus, bounded) == (set(range(0, 9)), set(range(1, 10)), set(range(2, 11)))


@pytest.mark.parametrize("seed", range(4))
def test_generated_dates_fall_in_2024_and_2025(seed):
    schema = {"type": "object", "properties": {"on": {"type": "string", "format": "date"},
                                               "at": {"type": "string", "format": "date-time"}}}
    days = [fake(schema, seed=seed * 100 + n) for n in range(100)]
    assert all("2024-01-01" <= v["on"] <= "2025-12-30" and "2024-01-01T" <= v["at"] < "2025-12-31T" for v in days)


def test_a_dangling_reference_lists_at_most_eight_of_the_names_there_are():
    from mockserver.domain import seed_fixture
    groups = {"products": seed_fixture.Group("products"),
              "meters": seed_fixture.Group("meters", references={"productId": "products"})}

    def message(count: int) -> str:
        products = {f"p{n}": {} for n in range(count)}
        return refused(seed_fixture.read_organization, "org-1",
                       {"products": products, "meters": {"m": {"productId": "@products/x"}}}, groups).message

    prefix = "organization 'org-1': meters 'm': productId: @products/x names no entity of this organization's fixture"
    assert message(8) == f"{prefix} (products has p0, p1, p2, p3, p4, p5, p6, p7)"
    assert message(9) == f"{prefix} (products has p0, p1, p2, p3, p4, p5, p6, p7, ...)"


@pytest.mark.parametrize("org_id", ["", "a/b", "tab\there", "del\x7f", "unit\x1fsep", 5, None])
def test_an_organization_id_must_fit_one_path_segment(org_id):
    from mockserver.domain import seed_fixture
    error = refused(seed_fixture.check_org_id, org_id)
    assert (error.status, error.message) == (
        400, f"organizations: {org_id!r} is not an organization id (a non-empty string without '/' or control "
             f"characters)")


def test_an_organization_id_may_hold_spaces_and_any_printable_text():
    from mockserver.domain import seed_fixture
    assert seed_fixture.check_org_id("my org \u00e9 ~") == "my org \u00e9 ~"


# -- cors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "origin"), [
    ("http://example.com:1", "http://example.com:1"), ("http://example.com:65535", "http://example.com:65535"),
    ("http://example.com:0080", "http://example.com"), ("https://example.com:80", "https://example.com:80"),
    ("http://example.com:443", "http://example.com:443"), ("  https://a.example  ", "https://a.example"),
])
def test_origin_ports_from_1_to_65535_and_only_the_schemes_own_default_is_dropped(given, origin):
    from mockserver.domain import cors
    assert cors.parse_origin(given) == origin


@pytest.mark.parametrize("given", ["http://example.com:65536", "http://example.com:00000", "http://-a.example",
                                   "http://example.com:123456"])
def test_a_port_outside_1_to_65535_or_a_host_starting_with_a_hyphen_is_no_origin(given):
    from mockserver.domain import cors
    with pytest.raises(ValueError) as caught:
        cors.parse_origin(given)
    assert str(caught.value) == (f"{given!r} is not an origin: give scheme://host[:port] (http or https, no path) "
                                 f"or *")


def test_a_preflight_is_allowed_every_header_name_it_asks_for_after_the_two_always_allowed():
    from mockserver.domain import cors
    assert cors.CorsPolicy.allow_headers(None) == "authorization, content-type"
    assert cors.CorsPolicy.allow_headers("X-Stainless-Lang, Content-Type,, bad header, x-a;b , Idempotency-Key") == (
        "authorization, content-type, x-stainless-lang, idempotency-key")


def test_cors_is_off_without_origins_and_a_listed_origin_is_answered_only_to_itself():
    from mockserver.domain import cors
    assert cors.CorsPolicy.from_values([]) is None
    policy = cors.CorsPolicy.from_values(["https://a.example", "http://localhost:3000"])
    assert policy.any_origin is False
    assert [policy.allow_origin(o) for o in ("https://a.example", "http://localhost:3000", "https://b.example",
                                             "https://a.example:443")] == [
        "https://a.example", "http://localhost:3000", None, None]
    assert cors.CorsPolicy.from_values(["*", "https://a.example"]).allow_origin("https://b.example") == "*"


def test_journal_headers_hide_credentials_and_join_repeats():
    assert journal.headers_view([
        (b"Authorization", b"Bearer abc.def"), (b"proxy-authorization", b"sometoken"), (b"X-Api-Key", b"k"),
        (b"x-apikey", b"k"), (b"Cookie", b"a=b"), (b"x-m3ter-signature", b"s"), (b"x-refresh-token", b"t"),
        (b"x-password", b"p"), (b"x-client-secret", b"s"), (b"Accept", b"a"), (b"accept", b"b"),
        (b"x-note", b"see Bearer abcdef"), (b"x-link", b"/_mock/downloads/tok1")]) == {
        "authorization": "Bearer [REDACTED]", "proxy-authorization": "[REDACTED]", "x-api-key": "[REDACTED]",
        "x-apikey": "[REDACTED]", "cookie": "[REDACTED]", "x-m3ter-signature": "[REDACTED]",
        "x-refresh-token": "[REDACTED]", "x-password": "[REDACTED]", "x-client-secret": "[REDACTED]",
        "accept": "a, b", "x-note": "see Bearer [REDACTED]", "x-link": "/_mock/downloads/[REDACTED]"}
    assert journal.headers_view(None) == {}


def test_journal_query_hides_secret_named_values_and_url_tokens_keeping_order():
    assert journal.query_view(b"clientSecret=s1&client_secret=&x=1&x=2&u=/_mock/downloads/tok123&access_token=t"
                              b"&q=a+b") == {
        "clientSecret": ["[REDACTED]"], "client_secret": [""], "x": ["1", "2"], "u": ["/_mock/downloads/[REDACTED]"],
        "access_token": ["[REDACTED]"], "q": ["a b"]}


def test_a_whole_json_body_is_shown_as_json_with_secret_members_hidden_unless_empty():
    data = b'{"password":"p","n":null,"s":"","nested":[{"apiSecret":"x","ok":"Bearer zzz"}],"secret":0}'
    assert journal.body_view([data[:30], data[30:]], len(data), "application/json; charset=utf-8") == (
        {"password": "[REDACTED]", "n": None, "s": "", "nested": [{"apiSecret": "[REDACTED]", "ok": "Bearer [REDACTED]"}],
         "secret": "[REDACTED]"}, False)
    assert journal.body_view([b'[1,2]'], 5, None) == ([1, 2], False)              # no type: JSON by its look
    assert journal.body_view([b'{"a":1}'], 7, "application/vnd.api+json") == ({"a": 1}, False)


def test_a_body_cut_at_the_cap_or_not_json_is_text_with_secrets_hidden():
    assert journal.body_view([b'{"password":"p","n'], 9000, "application/json") == ('{"password":"[REDACTED]","n', True)
    assert journal.body_view([b'{"password":"pass'], 9000, "application/json") == ('{"password":"[REDACTED]"', True)
    assert journal.body_view([b'[1,2'], 4, None) == ("[1,2", False)
    assert journal.body_view([b'{"a":1}'], 7, "text/plain") == ('{"a":1}', False)
    assert journal.body_view([b"hello \xff"], 7, None) == ("hello \ufffd", False)
    assert journal.body_view([], 0, "application/json") == (None, False)
    assert journal.body_view([b'password=p&a=1&token=&client%5Fsecret=q'], 39,
                             "Application/X-WWW-Form-Urlencoded; charset=utf-8") == (
        "password=[REDACTED]&a=1&token=[REDACTED]&client%5Fsecret=[REDACTED]", False)
    assert journal.body_view([b'password=p'], 10, "text/plain") == ("password=p", False)   # a form only as a form


def test_a_journal_body_is_kept_up_to_8_kib():
    assert journal.BODY_LIMIT == 8192


@pytest.mark.parametrize(("path", "org"), [
    ("/organizations/org-1/meters", "org-1"), ("/organizations/o2", "o2"), ("/organizations/", None),
    ("/organizations//meters", None), ("/_mock/organizations/o3/seed", None), ("/organization/o4", None),
])
def test_the_organization_a_path_addresses(path, org):
    assert journal.org_of(path) == org


@pytest.mark.parametrize(("name", "secret"), [
    ("client-Secret", True), ("PASSWORD", True), ("mysecret", True), ("userpassword", True), ("token", True),
    ("access_token", True), ("refresh-token", True), ("id_token", True), ("bearerToken", True), ("authToken", True),
    ("api_token", True), ("apiSecret", True), ("private_key", True), ("Authorization", True), ("credential", True),
    ("passphrase", True), ("passwords", False), ("tokens", False), ("tokenType", False), ("name", False),
    ("secretive", False), ("key", False),
])
def test_a_secret_is_named_in_any_of_the_usual_spellings(name, secret):
    assert journal.is_secret_name(name) is secret


def test_a_journal_filter_reads_its_method_in_upper_case_and_binds_cursors_to_every_field():
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    chosen = journal.JournalFilter(org_id="o", operation_id="GetMeter", status="4xx", method="get", since=since,
                                   until=until)
    assert chosen.method == "GET"
    assert chosen.fingerprint() == {"orgId": "o", "operationId": "GetMeter", "status": "4xx", "method": "GET",
                                    "since": "2026-01-01T00:00:00+00:00", "until": "2026-01-02T00:00:00+00:00"}
    assert journal.JournalFilter().fingerprint() == {"orgId": None, "operationId": None, "status": None,
                                                     "method": None, "since": None, "until": None}
    assert [chosen.time_matches(at) for at in (since - timedelta(microseconds=1), since,
                                               until - timedelta(microseconds=1), until)] == [False, True, True, False]
    assert journal.JournalFilter(since=since).time_matches(until) is True
    assert journal.JournalFilter(until=until).time_matches(since) is True


def test_the_content_type_is_the_first_content_type_header():
    assert journal.content_type_of([(b"accept", b"x"), (b"content-type", b"application/json"),
                                    (b"content-type", b"text/plain")]) == "application/json"
    assert journal.content_type_of(None) is None and journal.content_type_of([(b"accept", b"x")]) is None


def test_url_tokens_and_bearer_credentials_are_hidden_but_not_a_challenge():
    assert journal.redact_string(
        'GET /_mock/uploads/abc-DEF_1?x=/_mock/downloads/zz9 WWW-Authenticate: Bearer realm="m3ter" bearer   tok.en+/==') \
        == 'GET /_mock/uploads/[REDACTED]?x=/_mock/downloads/[REDACTED] WWW-Authenticate: Bearer realm="m3ter" bearer [REDACTED]'
    assert journal.redact_string("/_mock/clock/abc") == "/_mock/clock/abc"


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "drop", "operationId": "Nope"}, "operationId: no operation 'Nope' in the m3ter API"),
    ({"action": "drop", "operationId": 5}, "operationId: no operation '5' in the m3ter API"),
    ({"action": "drop", "operationId": "x" * 150}, f"operationId: no operation {'x' * 100!r} in the m3ter API"),
    ({"action": "drop", "orgId": ""}, "orgId: must be a non-empty string"),
    ({"action": "drop", "orgId": 5}, "orgId: must be a non-empty string"),
    ({"action": "drop", "bodyField": "a..b", "bodyEquals": 1}, "bodyField: must be a field name, or a dotted path such as 'a.b'"),
    ({"action": "drop", "bodyField": "", "bodyEquals": 1}, "bodyField: must be a field name, or a dotted path such as 'a.b'"),
    ({"action": "drop", "bodyField": "a" * 201, "bodyEquals": 1}, "bodyField: must be a field name, or a dotted path such as 'a.b'"),
    ({"action": "drop", "bodyField": 5, "bodyEquals": 1}, "bodyField: must be a field name, or a dotted path such as 'a.b'"),
    ({"action": "drop", "bodyField": "a"}, "bodyEquals: required with bodyField"),
    ({"action": "drop", "bodyEquals": 1}, "bodyEquals: only with bodyField"),
    ({"action": "drop", "colour": "red", "action2": 1}, "action2: not a field of a fault rule"),
    ({"action": "status", "status": 99}, "status: must be between 100 and 599"),
    ({"action": "status", "status": 600}, "status: must be between 100 and 599"),
    ({"action": "status", "status": 1.5}, "status: must be an integer"),
    ({"action": "status", "status": True}, "status: must be an integer"),
    ({"action": "status"}, "status: required when action is 'status'"),
    *[({"action": "status", "status": s}, "status: must be 408, 409, 429 or a 5xx") for s in (200, 404, 410, 499)],
    ({"action": "status", "status": 503, "retryAfter": 3601}, "retryAfter: must be between 0 and 3600"),
    ({"action": "status", "status": 503, "retryAfter": -1}, "retryAfter: must be between 0 and 3600"),
    ({"action": "drop", "status": 503}, "status: only when action is 'status'"),
    ({"action": "drop", "retryAfter": 1}, "retryAfter: only when action is 'status'"),
    ({"action": "delay", "delaySeconds": 1, "message": "x"}, "message: only when action is 'status'"),
    ({"action": "delay"}, "delaySeconds: required when action is 'delay' (more than 0, at most 30)"),
    ({"action": "delay", "delaySeconds": 0}, "delaySeconds: required when action is 'delay' (more than 0, at most 30)"),
    ({"action": "delay", "delaySeconds": -1}, "delaySeconds: must be between 0 and 30"),
    ({"action": "delay", "delaySeconds": 30.01}, "delaySeconds: must be between 0 and 30"),
    ({"action": "delay", "delaySeconds": "1"}, "delaySeconds: must be a number"),
    ({"action": "drop", "times": 0}, "times: must be between 1 and 1000000"),       # not "1e+06"
    ({"action": "drop", "times": 1000001}, "times: must be between 1 and 1000000"),
    ({"action": "drop", "times": 2.0}, "times: must be an integer"),
    ({"action": "drop", "probability": 1.5}, "probability: must be between 0 and 1"),
    ({"action": "drop", "probability": -0.1}, "probability: must be between 0 and 1"),
    ({"action": "drop", "probability": "1"}, "probability: must be a number"),
    ({"action": "drop", "seed": 1}, "seed: only with probability"),
    ({"action": "drop", "probability": 0.5, "seed": 2**32}, "seed: must be between 0 and 4294967295"),  # not 4.29497e+09
    ({"action": "drop", "probability": 0.5, "seed": -1}, "seed: must be between 0 and 4294967295"),
])
def test_a_fault_rule_that_cannot_be_meant_is_a_400_with_the_exact_reason(body, message):
    error = refused(rule, body)
    assert (error.status, error.message) == (400, message)


def test_fault_rules_at_their_bounds_are_accepted_and_shown_with_what_was_given():
    at = "2026-01-01T00:00:00.000Z"
    assert rule({"action": "status", "status": 503, "retryAfter": 3600}).view() == {
        "id": "rule-1", "action": "status", "status": 503, "retryAfter": 3600, "matched": 0, "fired": 0,
        "active": True, "createdAt": at}
    assert rule({"action": "drop", "times": 1000000, "operationId": "GetMeter", "orgId": "o"}).view() == {
        "id": "rule-1", "action": "drop", "operationId": "GetMeter", "orgId": "o", "times": 1000000,
        "remaining": 1000000, "matched": 0, "fired": 0, "active": True, "createdAt": at}
    assert rule({"action": "drop", "probability": 1}).view() == {
        "id": "rule-1", "action": "drop", "probability": 1.0, "seed": 7, "matched": 0, "fired": 0, "active": True,
        "createdAt": at}
    assert rule({"action": "drop", "probability": 0.5, "seed": 2**32 - 1}).seed == 4294967295
    assert rule({"action": "delay", "delaySeconds": 30, "bodyField": "a." + "b" * 198, "bodyEquals": None}).view() == {
        "id": "rule-1", "action": "delay", "bodyField": "a." + "b" * 198, "bodyEquals": None, "delaySeconds": 30.0,
        "matched": 0, "fired": 0, "active": True, "createdAt": at}
    for status in (408, 409, 429, 500, 599):
        assert rule({"action": "status", "status": status}).status == status


def test_a_spent_rule_shows_no_remaining_firings_and_is_inactive():
    spent = rule({"action": "drop", "times": 2})
    assert [spent.try_fire() is not None for _ in range(2)] == [True, True]
    assert spent.view()["remaining"] == 0 and spent.view()["active"] is False
    assert spent.covers("GetMeter", None) is False


def test_a_schedule_is_walked_at_most_100000_runs():
    start = datetime(2000, 1, 1, tzinfo=UTC)
    runs = list(balances.run_times(start, datetime(9999, 1, 1, tzinfo=UTC), "DAILY", 1))
    assert len(runs) == 100_000 and runs[-1] == start + timedelta(days=99_999)
    charges = list(balances.charge_times(start, datetime(9999, 1, 1, tzinfo=UTC), "DAILY", 1, False))
    assert len(charges) == 100_000 and charges[0] == start + timedelta(days=1)


def test_the_initial_credit_is_the_first_credit_and_zero_amounts_count_nowhere():
    summary = balances.summarize([0, -5, 30, 70, 0]).view()
    assert summary == {"totalCreditAmount": 100, "totalDebitAmount": 5, "initialCreditAmount": 30,
                       "expiredBalanceAmount": 0, "rolloverConsumed": 0, "balanceConsumed": 5}
    assert balances.summarize([100, -100], rollover_amount=0, ended=True).view()["expiredBalanceAmount"] == 0
    assert balances.summarize([100, -130], ended=True).view()["expiredBalanceAmount"] == 0   # never below zero


@pytest.mark.parametrize("value", ["5", None, [5]])
def test_balance_money_is_a_json_number_only(value):
    with pytest.raises(TypeError) as caught:
        balances.money(value)
    assert str(caught.value) == f"not a number: {value!r}"


# -- messages no other test pins whole ---------------------------------------------------------

def test_a_revision_holding_data_keeps_its_fields_and_keys_in_any_order():
    from mockserver.domain import lookup_data
    existing = {"id": "r1", "status": "DRAFT", "itemCount": 3, "keys": ["a"],
                "fields": [{"name": "a", "type": "STRING"}, {"name": "b", "type": "NUMBER"}]}
    lookup_data.check_revision_change(existing, {"fields": [{"name": "b", "type": "NUMBER"},
                                                            {"name": "a", "type": "STRING"}], "keys": ["a"]})
    error = refused(lookup_data.check_revision_change, existing,
                    {"fields": [{"name": "a", "type": "STRING"}, {"name": "b", "type": "STRING"}], "keys": ["a"]})
    assert (error.status, error.message) == (
        400, "fields: Lookup Table Revision 'r1' holds data, so its fields and keys stay as they are (delete its "
             "data first, or create a new revision)")
    lookup_data.check_revision_change({**existing, "itemCount": 0}, {"fields": [{"name": "z"}], "keys": ["z"]})


TWO_KEYS = {"fields": [{"name": "code", "type": "STRING"}, {"name": "n", "type": "NUMBER"},
                       {"name": "rate", "type": "NUMBER"}], "keys": ["code", "n"]}


@pytest.mark.parametrize(("key", "count"), [("eu", 1), ("eu,1,2", 3)])
def test_a_lookup_key_gives_one_value_per_key_field(key, count):
    from mockserver.domain import lookup_data
    error = refused(lookup_data.key_values, lookup_data.DataSchema.of(TWO_KEYS), key)
    assert (error.status, error.message) == (
        400, f"lookupKey: {key!r} has {count} value(s); this revision has 2 key field(s) (code, n), given "
             f"comma-separated in that order")
    assert lookup_data.key_values(lookup_data.DataSchema.of(TWO_KEYS), "eu,1.5") == {"code": "eu", "n": 1.5}


@pytest.mark.parametrize(("content", "message"), [
    (b'{"code":"eu","n":1}\n{"code": NaN}\n', "line 2: not a JSON object (NaN is not a number JSON allows)"),
    (b'{"code":"eu","n":1}\n\n[1\n', "line 3: not a JSON object (Expecting ',' delimiter: line 1 column 3 (char 2))"),
])
def test_a_jsonl_line_that_is_not_json_is_named_by_its_number(content, message):
    from mockserver.domain import lookup_data
    error = refused(lookup_data.parse, lookup_data.DataSchema.of(TWO_KEYS), content, lookup_data.JSONL)
    assert (error.status, error.message) == (400, message)


@pytest.mark.parametrize("value", ["soon", None, 20260101])
def test_a_bill_date_time_that_cannot_be_read_is_a_400(value):
    from mockserver.domain import bills
    error = refused(bills.parse_instant, value, "billDate")
    assert (error.status, error.message) == (400, f"billDate: {value!r} is not a date-time like 2024-09-01T00:00:00Z")
    assert bills.parse_instant("2026-01-01T00:00:00", "billDate") == datetime(2026, 1, 1, tzinfo=UTC)


AGGREGATED = [{"meterId": "m-disk", "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]


@pytest.mark.parametrize(("body", "message"), [
    ({"dimensionFilters": [{"meterId": "m-disk", "fieldCode": "gb", "values": ["1"]}]},
     "dimensionFilters[0].fieldCode: 'gb' is a number field; dimension filters take text fields"),
    ({"groups": [{"groupType": "ACCOUNT"}]}, "groups[0]: groups apply to aggregated usage; add aggregations"),
    ({"aggregations": AGGREGATED, "groups": [{"groupType": "TIME", "frequency": "MINUTE"}]},
     "groups[0].frequency: required for a TIME group, one of HOUR, DAY, WEEK, MONTH, QUARTER, YEAR, WHOLE_PERIOD"),
    ({"aggregations": AGGREGATED, "groups": [{"groupType": "DIMENSION", "fieldCode": "region"}]},
     "groups[0]: a DIMENSION group needs meterId and fieldCode"),
    ({"aggregations": AGGREGATED, "groups": [{"groupType": "DIMENSION", "meterId": "m-disk"}]},
     "groups[0]: a DIMENSION group needs meterId and fieldCode"),
    ({"aggregations": AGGREGATED, "groups": [{"groupType": "REGION"}]},
     "groups[0].groupType: 'REGION' is not one of ACCOUNT, DIMENSION, TIME"),
    ({"aggregations": AGGREGATED, "groups": [{"groupType": "TIME", "frequency": "DAY"},
                                             {"groupType": "TIME", "frequency": "DAY"}, {}]},
     "groups[2].groupType: required, one of ACCOUNT, DIMENSION, TIME"),
])
def test_a_usage_query_message_names_the_field_and_what_it_takes(body, message):
    error = refused(usage_query, body)
    assert (error.status, error.message) == (400, message)


def test_a_usage_query_ends_after_it_starts():
    from mockserver.domain import usage_query as uq
    error = refused(uq.check_query, {}, USAGE_METERS, {}, start_ms=JAN_1, end_ms=JAN_1)
    assert (error.status, error.message) == (400, "endDate: must be later than startDate")
    assert uq.check_query({}, USAGE_METERS, {}, start_ms=JAN_1, end_ms=JAN_1 + 1).end_ms == JAN_1 + 1


@pytest.mark.parametrize("seed", range(10))
def test_every_kind_of_date_pair_runs_forwards(seed):
    pairs = [("fromDate", "toDate"), ("dtStarted", "dtCompleted"), ("Start", "End"), ("billStart", "billEnd")]
    schema = {"type": "object", "properties": {name: {"type": "string", "format": "date-time"}
                                               for pair in pairs for name in pair}}
    value = fake(schema, seed=seed)
    assert [value[first] <= value[second] for first, second in pairs] == [True] * len(pairs)


def test_a_pair_of_texts_of_different_lengths_is_left_as_it_is():
    schema = {"type": "object", "properties": {"startCode": {"type": "string"}, "endCode": {"type": "string"},
                                               "startTag": {"type": "string"}, "endTag": {"type": "string"}},
              "example": {"startCode": "bb", "endCode": "a", "startTag": "b", "endTag": "a"}}
    value = fake(schema)
    assert (value["startCode"], value["endCode"]) == ("bb", "a")
    assert (value["startTag"], value["endTag"]) == ("a", "b")       # same length: read as a pair and ordered


# -- survivors of the lead's domain sample (1 in 8, offset 3) ------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-01T10:00:00Z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-01-01T10:00:00z", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-01-01T10:00:00.250Z", datetime(2026, 1, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ("2026-01-01T10:00:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ("2026-01-01T10:00:00+02:00", datetime(2026, 1, 1, 8, tzinfo=UTC)),
    (" 2026-01-01 ", datetime(2026, 1, 1, tzinfo=UTC)),
    ("2026-01-01Z", None), ("soon", None), (20260101, None),
])
def test_a_search_instant_reads_z_in_either_case(text, expected):
    assert search.instant(text) == expected


def test_a_word_class_excludes_the_underscore_from_its_negation():
    from mockserver.domain import fake_entities
    # Every printable ASCII character but the space is a word character or excluded here:
    # only a space is left, and "_" (a word character) must not be taken for one that is not.
    pattern = r"^[^\w!-/:-@\[-\^`{-~]$"
    assert {fake_entities.from_pattern(pattern, random_for(seed)) for seed in range(5)} == {" "}


def test_a_negated_set_of_literals_excludes_each_of_them():
    import string as strings
    from mockserver.domain import fake_entities
    pattern = "^[^" + strings.ascii_letters + strings.digits + "]{2}$"
    for seed in range(5):
        text = fake_entities.from_pattern(pattern, random_for(seed))
        assert text is not None and len(text) == 2 and set(text) <= set(strings.punctuation + " ")


def test_an_objects_example_value_is_used_only_when_it_has_the_propertys_type():
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "integer"}},
                                               "size": {"type": "integer", "minimum": 500, "maximum": 600},
                                               "name": {"type": "string"}, "anything": {}},
              "example": {"tags": "red", "size": "12", "name": 7, "anything": None}}
    for seed in range(5):
        value = fake(schema, seed=seed)
        assert isinstance(value["tags"], list) and all(isinstance(t, int) for t in value["tags"])
        assert 500 <= value["size"] <= 600 and isinstance(value["name"], str)
        assert value["anything"] is not None          # a null example is no value
    fitting = fake({**schema, "example": {"tags": [3, 1], "size": 512, "name": "n", "anything": [1]}})
    assert (fitting["tags"], fitting["size"], fitting["name"], fitting["anything"]) == ([3, 1], 512, "n", [1])


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_example_is_used_for_a_boolean(flag):
    assert {fake({"type": "boolean", "example": flag}, seed=seed) for seed in range(8)} == {flag}
    assert {fake({"type": "boolean"}, seed=seed) for seed in range(8)} == {True, False}


def test_a_string_example_that_misses_the_pattern_is_not_used():
    for seed in range(5):
        assert fake({"type": "string", "pattern": "^[0-9]{4}$", "example": "abcd"}, seed=seed).isdigit()
    assert fake({"type": "string", "pattern": "^[0-9]{4}$", "example": "2024"}) == "2024"


@pytest.mark.parametrize("example", [5, 100])
def test_a_number_example_at_its_bounds_is_used(example):
    for seed in range(5):
        assert fake({"type": "integer", "minimum": 5, "maximum": 100, "example": example}, seed=seed) == example
    assert fake({"type": "integer", "minimum": 5, "maximum": 100, "example": 101}) != 101
    assert fake({"type": "integer", "minimum": 5, "maximum": 100, "example": 4}) != 4


def test_a_status_fault_is_the_rules():
    fault = rule({"action": "status", "status": 503}).fault()
    assert (fault.rule_id, fault.action, fault.status) == ("rule-1", "status", 503)
    drop = rule({"action": "drop"}).fault()
    assert (drop.rule_id, drop.action, drop.status, drop.body) == ("rule-1", "drop", None, None)


def test_a_revision_field_without_a_name_is_read_with_an_empty_one():
    from mockserver.domain import lookup_data
    schema = lookup_data.DataSchema.of({"fields": [{"type": "NUMBER"}, {"name": "b"}], "keys": []})
    assert schema.fields == (("", "NUMBER"), ("b", "STRING"))


@pytest.mark.parametrize(("ts", "shown"), [
    ("x" * 38, repr("x" * 38)),                      # its repr is 40 characters: shown whole
    ("x" * 39, repr("x" * 39)[:39] + "\u2026"),       # 41: cut to 39 and an ellipsis
])
def test_a_value_in_a_measurement_message_is_shown_whole_up_to_40_characters(ts, shown):
    error = refused(read_one, {"meter": "disk", "account": "acme", "ts": ts})
    assert error.message == f"ts: {shown} is not an ISO-8601 date-time"


def test_an_unknown_field_of_a_category_lists_the_meters_fields_of_that_category():
    from mockserver.domain import measurements
    meter = {"id": "m2", "code": "net", "dataFields": [{"category": "MEASURE", "code": "in_gb"},
                                                       {"category": "MEASURE", "code": "out_gb"}]}
    schema = measurements.MeterSchema.of(meter)
    error = refused(measurements.read, {"meter": "net", "account": "a", "ts": "2026-01-01T00:00:00Z",
                                        "measure": {"total": 1}}, lambda code: schema)
    assert error.message == "measure.total: Meter 'net' has no MEASURE field 'total' (its MEASURE fields: in_gb, out_gb)"
    error = refused(measurements.read, {"meter": "net", "account": "a", "ts": "2026-01-01T00:00:00Z",
                                        "cost": {"total": 1}}, lambda code: schema)
    assert error.message == "cost.total: Meter 'net' has no COST field 'total' (its COST fields: none)"


@pytest.mark.parametrize(("members", "kind"), [(None, "null"), (3, "a number"), (2.5, "a number"),
                                               ("x", "a string"), (b"x", "bytes")])
def test_a_resource_that_is_not_a_mapping_says_what_it_got(members, kind):
    from mockserver.domain import seed_fixture
    error = refused(seed_fixture.read_organization, "org-1", {"products": members}, fixture_groups())
    assert error.message == f"organization 'org-1': products: a mapping of reference name to body (got {kind})"


def test_a_lenient_values_seed_is_the_first_8_bytes_of_the_sha256_of_its_parts():
    # Pinned by value: a change would change every value the lenient mode answers.
    from mockserver.domain import fake_entities
    assert fake_entities.seed_for("org", "plans", "id") == 12177562564941871658
    assert fake_entities.seed_for("ab", "c") != fake_entities.seed_for("a", "bc")   # the parts stay apart
    assert 0 <= fake_entities.seed_for() < 2**64


def test_an_array_holds_one_to_three_items_unless_its_bounds_say_otherwise():
    sizes = {len(fake({"type": "array", "items": {"type": "integer"}}, seed=seed)) for seed in range(40)}
    assert sizes == {1, 2, 3}
    assert {len(fake({"type": "array", "maxItems": 2, "items": {"type": "integer"}}, seed=seed))
            for seed in range(40)} == {1, 2}
    assert {len(fake({"type": "array", "minItems": 2, "items": {"type": "integer"}}, seed=seed))
            for seed in range(40)} == {2, 3}
    assert {len(fake({"type": "array", "maxItems": 0, "items": {"type": "integer"}}, seed=seed))
            for seed in range(5)} == {0}


def test_optional_fields_are_followed_six_objects_deep():
    schemas = {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "next": {"$ref": "#/components/schemas/Node"}}}}

    def links(node: dict) -> int:
        assert isinstance(node["name"], str)
        return 1 + links(node["next"]) if "next" in node else 0

    for seed in range(3):
        assert links(fake({"$ref": "#/components/schemas/Node"}, schemas, seed)) == 6


def test_an_all_of_that_includes_itself_is_merged_a_bounded_number_of_times():
    schemas = {"A": {"allOf": [{"$ref": "#/components/schemas/A"},
                               {"type": "object", "required": ["x"],
                                "properties": {"x": {"type": "integer", "minimum": 3, "maximum": 3}}}]}}
    assert fake({"$ref": "#/components/schemas/A"}, schemas) == {"x": 3}


def test_all_of_parts_join_their_required_fields():
    value = fake({"allOf": [{"type": "object", "required": ["zeta"]},
                            {"required": ["eta"], "properties": {"n": {"type": "integer"}}}]})
    assert {"zeta", "eta", "n"} <= set(value) and isinstance(value["zeta"], str) and isinstance(value["eta"], str)


@pytest.mark.parametrize("keyword", ["oneOf", "anyOf"])
def test_one_branch_of_a_one_of_or_any_of_is_taken(keyword):
    branches = [{"type": "integer", "minimum": 7, "maximum": 7}, {"type": "boolean", "enum": [True]}]
    assert {fake({keyword: branches}, seed=seed) for seed in range(12)} == {7, True}


@pytest.mark.parametrize("seed", range(3))
def test_properties_beside_a_one_of_are_merged_into_the_branch(seed):
    common = {"type": "integer", "minimum": 1, "maximum": 1}
    branch = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 2, "maximum": 2}}}
    assert fake({"properties": {"common": common}, "oneOf": [branch]}, seed=seed) == {"common": 1, "a": 2}
    only_required = fake({"required": ["zeta"], "oneOf": [branch]}, seed=seed)
    assert set(only_required) == {"zeta", "a"}
    assert fake({"description": "d", "oneOf": [branch]}, seed=seed) == {"a": 2}


def test_an_enum_of_null_only_gives_null_and_null_is_avoided_otherwise():
    assert fake({"enum": [None]}) is None
    assert {fake({"enum": [None, "a"]}, seed=seed) for seed in range(8)} == {"a"}


def test_without_a_type_the_keywords_say_what_a_value_is():
    assert isinstance(fake({"additionalProperties": {"type": "integer"}}), dict)
    assert all(isinstance(v, int) for v in fake({"additionalProperties": {"type": "integer"}}).values())
    assert fake({"properties": {"n": {"type": "integer", "minimum": 4, "maximum": 4}}}) == {"n": 4}
    listed = fake({"items": {"type": "integer", "minimum": 5, "maximum": 5}})
    assert isinstance(listed, list) and set(listed) <= {5} and len(listed) >= 1
    assert isinstance(fake({}), str)


def test_a_write_only_field_is_never_shown():
    schemas = {"Secret": {"type": "string", "writeOnly": True}}
    for seed in range(3):
        value = fake({"type": "object", "required": ["password"], "properties": {
            "password": {"type": "string", "writeOnly": True}, "apiKey": {"$ref": "#/components/schemas/Secret"},
            "name": {"type": "string"}}}, schemas, seed)
        assert "password" not in value and "apiKey" not in value and "name" in value


def test_an_array_counts_as_a_level_of_depth_itself():
    schemas = {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}}}

    def levels(node: dict) -> set[int]:
        children = node.get("children") or []
        return {1} if not children else {1 + level for child in children for level in levels(child)}

    for seed in range(3):
        assert levels(fake({"$ref": "#/components/schemas/Node"}, schemas, seed)) == {4}   # objects at 0, 2, 4, 6


def test_int32_bounds_are_those_of_a_32_bit_integer():
    top = {fake({"type": "integer", "format": "int32", "minimum": 2147483646}, seed=seed) for seed in range(30)}
    bottom = {fake({"type": "integer", "format": "int32", "maximum": -2147483647}, seed=seed) for seed in range(30)}
    assert (top, bottom) == ({2147483646, 2147483647}, {-2147483648, -2147483647})
    assert {fake({"type": "integer", "format": "int32", "maximum": 0}, seed=seed) for seed in range(5)} == {0}
    assert {fake({"type": "integer", "format": "int32", "maximum": -5000}, seed=seed) >= -2147483648
            for seed in range(5)} == {True}


def test_integer_multiples_within_bounds_that_hold_one():
    assert {fake({"type": "integer", "multipleOf": 5, "minimum": 10, "maximum": 10}, seed=seed)
            for seed in range(5)} == {10}
    assert {fake({"type": "integer", "multipleOf": 5, "minimum": 9, "maximum": 21}, seed=seed)
            for seed in range(40)} == {10, 15, 20}
    assert fake({"type": "integer", "multipleOf": 5, "minimum": 11, "maximum": 14}) == 15   # none fits: the first


def test_number_multiples_stay_within_their_bounds():
    assert {fake({"type": "number", "multipleOf": 0.5, "minimum": 10, "maximum": 11}, seed=seed)
            for seed in range(40)} == {10, 10.5, 11}


def test_an_inclusive_bound_may_be_the_value_itself():
    assert {fake({"type": "number", "minimum": 1, "maximum": 1.001}, seed=seed) for seed in range(5)} == {1.0}
    assert {fake({"type": "number", "minimum": 0.999, "maximum": 1}, seed=seed) for seed in range(5)} == {1.0}


def test_a_uri_or_url_format_is_an_absolute_url_with_a_path():
    import re as regex
    for seed in range(10):
        for fmt in ("uri", "url"):
            value = fake({"type": "string", "format": fmt}, seed=seed)
            assert regex.fullmatch(r"https?://[a-z0-9.-]+/[a-z0-9][a-z0-9/._-]*", value), value
            assert "//" not in value.split("://", 1)[1]


def test_a_property_example_of_another_type_is_not_used():
    schema = {"type": "object", "properties": {
        "text": {"type": "string", "minLength": 1}, "amount": {"type": "number", "minimum": 2, "maximum": 2},
        "nested": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 1}}},
        "flag": {"type": "boolean"}, "short": {"type": "string", "minLength": 3}},
        "example": {"text": 5, "amount": "2", "nested": "x", "flag": "yes", "short": "ab"}}
    for seed in range(5):
        value = fake(schema, seed=seed)
        assert isinstance(value["text"], str) and value["amount"] == 2 and value["nested"] == {"n": 1}
        assert isinstance(value["flag"], bool) and len(value["short"]) >= 3
    fitting = fake({**schema, "example": {"text": "t", "amount": 2.0, "nested": {"n": 9}, "flag": False,
                                          "short": "abc"}})
    assert fitting == {"text": "t", "amount": 2.0, "nested": {"n": 9}, "flag": False, "short": "abc"}


@pytest.mark.parametrize("name", ["amount", "unitPrice", "subtotal", "standingCharge", "monthlySpend", "totalCost",
                                  "setupFee"])
def test_a_money_named_integer_runs_up_to_a_thousand(name):
    values = [fake({"type": "object", "properties": {name: {"type": "integer"}}}, seed=seed)[name]
              for seed in range(40)]
    assert 0 <= min(values) and 100 < max(values) <= 1000


def test_a_negated_range_excludes_its_whole_range():
    from mockserver.domain import fake_entities
    assert {fake_entities.from_pattern("^[^0-9A-Za-y]{3}$", random_for(seed)) for seed in range(5)} == {"zzz"}


@pytest.mark.parametrize(("pattern", "check"), [
    (r"^\d{3}$", str.isdigit), (r"^\D{3}$", lambda t: not any(c.isdigit() for c in t)),
    (r"^\s{3}$", str.isspace), (r"^\S{3}$", lambda t: not any(c.isspace() for c in t)),
    (r"^\w{3}$", lambda t: all(c.isalnum() or c == "_" for c in t)),
    (r"^\W{3}$", lambda t: not any(c.isalnum() or c == "_" for c in t)),
    (r"^[\d\s]{6}$", lambda t: all(c.isdigit() or c.isspace() for c in t)),
])
def test_character_categories_are_followed(pattern, check):
    from mockserver.domain import fake_entities
    for seed in range(5):
        text = fake_entities.from_pattern(pattern, random_for(seed))
        assert text is not None and check(text), (pattern, text)


def test_a_one_of_without_a_discriminator_adds_no_field():
    schemas = {"Cat": {"type": "object", "properties": {"lives": {"type": "integer", "minimum": 9, "maximum": 9}}}}
    assert fake({"oneOf": [{"$ref": "#/components/schemas/Cat"}]}, schemas) == {"lives": 9}
    assert fake({"oneOf": [{"type": "integer", "minimum": 2, "maximum": 2}],
                 "discriminator": {"propertyName": "kind"}}) == 2


def test_a_map_six_objects_deep_is_left_empty_and_its_entries_count_as_a_level():
    def nested(levels: int, inner: dict) -> dict:
        for _ in range(levels):
            inner = {"type": "object", "required": ["a"], "properties": {"a": inner}}
        return inner

    integers = {"type": "object", "additionalProperties": {"type": "integer"}}
    deep, shallower = fake(nested(6, integers)), fake(nested(5, integers))
    for _ in range(6):
        deep = deep["a"]
    for _ in range(5):
        shallower = shallower["a"]
    assert deep == {} and 1 <= len(shallower) <= 2

    schemas = {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "next": {"$ref": "#/components/schemas/Node"}}}}

    def links(node: dict) -> int:
        return 1 + links(node["next"]) if "next" in node else 0

    entries = fake({"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Node"}}, schemas)
    assert {links(node) for node in entries.values()} == {5}        # entries are objects 1 to 6 deep
