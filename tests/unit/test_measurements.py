"""The rules one measurement must pass (``mockserver.domain.measurements``), checked directly:
numbers kept exactly, times as epoch milliseconds, values against the Meter's data fields by
category and type, derived fields calculated in decimal. Expected values are written out from
m3ter's spec (MeasurementRequest, DataField categories) and the rules the mock's spec states."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from mockserver.domain.errors import MockError
from mockserver.domain.measurements import (Invalid, Measurement, MeterSchema, derived_calculation, epoch_ms,
                                            read, to_decimal, wire)

METER = {
    "id": "meter-1", "code": "api", "name": "API",
    "dataFields": [
        {"category": "MEASURE", "code": "requests", "name": "Requests", "unit": "count"},
        {"category": "COST", "code": "cost", "name": "Cost", "unit": "USD"},
        {"category": "WHERE", "code": "region", "name": "Region"},
        {"category": "WHO", "code": "user", "name": "User"},
        {"category": "METADATA", "code": "note", "name": "Note"},
    ],
    "derivedFields": [
        {"category": "MEASURE", "code": "thousands", "name": "Thousands", "unit": "k",
         "calculation": "requests / 1000"},
        {"category": "MEASURE", "code": "tenths", "name": "Tenths", "unit": "x", "calculation": "requests * 0.1"},
        {"category": "COST", "code": "custom", "name": "Custom", "unit": "USD",
         "calculation": "requests * customFields.rate"},
    ],
}
SCHEMA = MeterSchema.of(METER)


def schema_for(code: str):
    return SCHEMA if code == "api" else None


def measurement(**fields) -> dict:
    return {"meter": "api", "account": "acme", "ts": "2026-01-05T10:00:00Z", **fields}


def problem(raw) -> str:
    with pytest.raises(Invalid) as caught:
        read(raw, schema_for)
    return str(caught.value)


# -- numbers and times ----------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (0.1, Decimal("0.1")), (2.675, Decimal("2.675")), (3, Decimal("3")), (-0.5, Decimal("-0.5")),
    (1e-7, Decimal("1E-7")), (10 ** 20, Decimal("100000000000000000000")),
])
def test_numbers_become_exact_decimals(value, expected):
    found = to_decimal(value)
    assert found == expected and str(found) == str(expected)


@pytest.mark.parametrize("value", [True, False, "1", None, float("nan"), float("inf"), [1]])
def test_what_is_not_a_finite_number_has_no_decimal(value):
    assert to_decimal(value) is None


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T00:00:00Z", 1_704_067_200_000),
    ("2024-01-01T00:00:00.123Z", 1_704_067_200_123),
    ("2024-01-01T00:00:00.1239Z", 1_704_067_200_123),  # below a millisecond: dropped
    ("2024-01-01T01:00:00+01:00", 1_704_067_200_000),
    ("2024-01-01T00:00:00", 1_704_067_200_000),  # no offset: UTC
    ("1969-12-31T23:59:59.999Z", -1),
])
def test_times_are_epoch_milliseconds_utc(text, expected):
    assert epoch_ms(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "", 1704067200000, None])
def test_what_is_not_an_iso_date_time_has_no_time(text):
    assert epoch_ms(text) is None


# -- a valid measurement ---------------------------------------------------------------------

def test_a_measurement_keeps_its_codes_times_and_typed_values():
    found, schema = read(measurement(uid="u-1", ets="2026-01-05T10:30:00Z", measure={"requests": 2500},
                                     cost={"cost": 0.1}, where={"region": "eu"}, who={"user": "ann"},
                                     metadata={"note": "x" * 256}), schema_for)
    assert schema is SCHEMA
    assert (found.uid, found.meter, found.account) == ("u-1", "api", "acme")
    assert (found.ts, found.ets) == (1_767_607_200_000, 1_767_609_000_000)
    assert found.values == {"requests": Decimal("2500"), "cost": Decimal("0.1"), "region": "eu", "user": "ann",
                            "note": "x" * 256, "thousands": Decimal("2.5"), "tenths": Decimal("250.0")}


def test_a_meters_data_fields_may_be_left_out():
    found, _ = read(measurement(where={"region": "us"}), schema_for)
    assert found.values == {"region": "us"}
    assert found.uid is None and found.ets is None


def test_categories_sent_as_null_are_left_out():
    found, _ = read(measurement(measure=None, where={"region": "us"}), schema_for)
    assert found.values == {"region": "us"}


def test_ets_equal_to_ts_is_allowed():
    found, _ = read(measurement(ets="2026-01-05T10:00:00Z"), schema_for)
    assert found.ets == found.ts


# -- what is refused, and the field named ------------------------------------------------------

@pytest.mark.parametrize("raw, message", [
    (["not", "an", "object"], "must be an object (a measurement)"),
    (measurement(measures={"requests": 1}),
     "measures: not a field of a measurement (it has uid, meter, account, ts, ets and the categories "
     "who, where, what, other, metadata, measure, cost, income)"),
    ({"account": "acme", "ts": "2026-01-05T10:00:00Z"}, "meter: required, the code of a Meter"),
    (measurement(meter="web"), "meter: no Meter with code 'web'"),
    (measurement(account=""), "account: required, the code of an Account (1 to 80 characters)"),
    (measurement(account="a" * 81), "account: required, the code of an Account (1 to 80 characters)"),
    (measurement(uid="u" * 51), "uid: must be a string of at most 50 characters"),
    ({"meter": "api", "account": "acme"}, "ts: required, an ISO-8601 date-time"),
    (measurement(ts="soon"), "ts: 'soon' is not an ISO-8601 date-time"),
    (measurement(ets="2026-01-05T09:59:59Z"), "ets: 2026-01-05T09:59:59Z is earlier than ts (2026-01-05T10:00:00Z)"),
    (measurement(measure={"cpu": 1}),
     "measure.cpu: Meter 'api' has no MEASURE field 'cpu' (its MEASURE fields: requests)"),
    (measurement(income={"revenue": 1}),
     "income.revenue: Meter 'api' has no INCOME field 'revenue' (its INCOME fields: none)"),
    (measurement(measure={"region": 1}),
     "measure.region: 'region' is a WHERE field of Meter 'api', not a MEASURE field (send it in where)"),
    (measurement(measure={"thousands": 1}),
     "measure.thousands: 'thousands' is a derived field of Meter 'api': its value is calculated, not submitted"),
    (measurement(measure={"requests": "12"}), "measure.requests: '12' is not a number"),
    (measurement(measure={"requests": True}), "measure.requests: True is not a number"),
    (measurement(cost={"cost": float("nan")}), "cost.cost: nan is not a number"),
    (measurement(where={"region": 3}), "where.region: 3 is not a string"),
    (measurement(where="eu"), "where: must be an object of field code to value"),
    (measurement(metadata={"note": "x" * 257}), "metadata.note: longer than 256 characters"),
])
def test_a_bad_measurement_is_refused_naming_the_field(raw, message):
    assert problem(raw) == message


def test_a_refusal_is_a_400_that_a_batch_puts_its_path_in_front_of():
    with pytest.raises(MockError) as caught:
        read(measurement(measure={"cpu": 1}), schema_for)
    assert caught.value.status == 400
    assert caught.value.at("measurements[7]") == (
        "measurements[7].measure.cpu: Meter 'api' has no MEASURE field 'cpu' (its MEASURE fields: requests)")
    assert Invalid("", "must be an object (a measurement)").at("line 3") == "line 3: must be an object (a measurement)"


# -- derived fields ----------------------------------------------------------------------------

CODES = frozenset({"a", "b", "gb"})


@pytest.mark.parametrize("calculation, expected", [
    ("a * 3", Decimal("0.3")),  # 0.1 * 3, exactly: a float would give 0.30000000000000004
    ("a + b", Decimal("0.3")),
    ("a + b * 2", Decimal("0.5")),
    ("(a + b) * 2", Decimal("0.6")),
    ("-(a + b)", Decimal("-0.3")),
    ("gb / 1024", Decimal("2")),
    ("gb / 3", Decimal("682.6666666666666666666666666666667")),  # 34 significant digits
    ("a - -b", Decimal("0.3")),
    ("2.5e2", Decimal("250")),
])
def test_an_arithmetic_calculation_is_evaluated_exactly(calculation, expected):
    found = derived_calculation(calculation, CODES).evaluate({"a": Decimal("0.1"), "b": Decimal("0.2"),
                                                              "gb": Decimal("2048")})
    assert found == expected


@pytest.mark.parametrize("calculation", [
    "a * customFields.rate",  # a custom field
    "Timestamp",              # a system field
    "max(a, b)",              # a function
    "a > b",                  # a comparison
    "a b",                    # no operator
    "(a + b",                 # unbalanced
    "",
    "unknown + 1",
])
def test_a_calculation_the_mock_cannot_evaluate_is_not_evaluated(calculation):
    assert derived_calculation(calculation, CODES) is None


def test_a_calculation_without_a_number_for_a_field_or_dividing_by_zero_has_no_value():
    calculation = derived_calculation("a / b", CODES)
    assert calculation.evaluate({"a": Decimal("1")}) is None
    assert calculation.evaluate({"a": Decimal("1"), "b": "text"}) is None
    assert calculation.evaluate({"a": Decimal("1"), "b": Decimal("0")}) is None


def test_derived_fields_are_left_out_when_they_cannot_be_calculated():
    found, _ = read(measurement(where={"region": "eu"}), schema_for)
    assert "thousands" not in found.values and "custom" not in found.values


def test_a_derived_field_may_use_an_earlier_one():
    meter = {"id": "m", "code": "storage", "dataFields": [{"category": "MEASURE", "code": "mb", "name": "MB"}],
             "derivedFields": [
                 {"category": "MEASURE", "code": "gb", "name": "GB", "calculation": "mb / 1024"},
                 {"category": "COST", "code": "price", "name": "Price", "calculation": "gb * 0.25"},
                 {"category": "WHERE", "code": "zone", "name": "Zone", "calculation": "mb"}]}
    schema = MeterSchema.of(meter)
    found, _ = read({"meter": "storage", "account": "a", "ts": "2026-01-01T00:00:00Z", "measure": {"mb": 2048}},
                    lambda code: schema)
    # Text derived fields are not calculated: the mock evaluates arithmetic only.
    assert found.values == {"mb": Decimal("2048"), "gb": Decimal("2"), "price": Decimal("0.50")}


# -- the measurement itself ------------------------------------------------------------------

def test_a_measurement_is_immutable_and_shared_by_deep_copies():
    found, _ = read(measurement(measure={"requests": 1}), schema_for)
    with pytest.raises(AttributeError):
        found.ts = 0
    assert copy.deepcopy(found) is found
    assert copy.deepcopy([found])[0] is found


def test_wire_gives_the_measurement_back_in_its_submitted_shape():
    found, _ = read(measurement(uid="u", measure={"requests": 2}, where={"region": "eu"}), schema_for)
    assert wire(found, SCHEMA.categories) == {
        "uid": "u", "meter": "api", "account": "acme", "ts": "2026-01-05T10:00:00.000Z",
        "measure": {"requests": Decimal("2"), "thousands": Decimal("0.002"), "tenths": Decimal("0.2")},
        "where": {"region": "eu"}}
    orphan = Measurement(None, "api", "acme", 0, 1000, {"gone": Decimal("1"), "label": "x"})
    assert wire(orphan, {}) == {"meter": "api", "account": "acme", "ts": "1970-01-01T00:00:00.000Z",
                                "ets": "1970-01-01T00:00:01.000Z", "measure": {"gone": Decimal("1")},
                                "other": {"label": "x"}}
