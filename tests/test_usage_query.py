"""POST /usage/query over measurements ingested through the API, and the usage engine's
quantities for bills (aggregations, compound aggregations, segments, defaultValue,
quantityPerUnit and rounding) as the spec's descriptions state them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mockserver.domain.usage_query import parse_instant

ORG = "org-usage-query"
BASE = f"/organizations/{ORG}"


def post(client, auth, path, body, status=200):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


def ms(text):
    return parse_instant(text, "ts")


@pytest.fixture
def usage(client, auth):
    """Two meters, two accounts and eight measurements (September 2026)."""
    disk = post(client, auth, "meters", {"name": "Disk", "code": "disk", "derivedFields": [], "dataFields": [
        {"category": "MEASURE", "code": "gb", "name": "GB"}, {"category": "WHERE", "code": "region", "name": "Region"},
        {"category": "WHAT", "code": "tier", "name": "Tier"}]})
    calls = post(client, auth, "meters", {"name": "API", "code": "api", "derivedFields": [], "dataFields": [
        {"category": "MEASURE", "code": "n", "name": "Calls"}]})
    acme = post(client, auth, "accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
    beta = post(client, auth, "accounts", {"name": "Beta", "code": "beta", "emailAddress": "b@example.com"})
    measurements = [
        {"uid": "d1", "meter": "disk", "account": "acme", "ts": "2026-09-01T10:00:00Z",
         "measure": {"gb": 10.5}, "where": {"region": "eu"}, "what": {"tier": "gold"}},
        {"meter": "disk", "account": "acme", "ts": "2026-09-01T11:00:00Z",
         "measure": {"gb": 0.25}, "where": {"region": "us"}, "what": {"tier": "gold"}},
        {"meter": "disk", "account": "beta", "ts": "2026-09-02T09:00:00Z",
         "measure": {"gb": 100}, "where": {"region": "eu"}, "what": {"tier": "iron"}},
        {"meter": "disk", "account": "acme", "ts": "2026-09-03T00:00:00Z",
         "measure": {"gb": 0.1}, "where": {"region": "eu"}, "what": {"tier": "iron"}},
        {"meter": "disk", "account": "acme", "ts": "2026-10-01T00:00:00Z",  # after the period
         "measure": {"gb": 1000}, "where": {"region": "eu"}},
        {"meter": "api", "account": "acme", "ts": "2026-09-01T12:00:00Z", "measure": {"n": 400}},
        {"meter": "api", "account": "acme", "ts": "2026-09-02T12:00:00Z", "measure": {"n": 600}},
        {"meter": "api", "account": "beta", "ts": "2026-09-02T13:00:00Z", "measure": {"n": 7}},
    ]
    assert post(client, auth, "measurements", {"measurements": measurements}) == {"result": "accepted"}
    return {"disk": disk, "api": calls, "acme": acme, "beta": beta}


SEPTEMBER = {"startDate": "2026-09-01T00:00:00Z", "endDate": "2026-10-01T00:00:00Z"}


def test_raw_usage_comes_latest_first_with_every_field(client, auth, usage):
    body = post(client, auth, "usage/query", {**SEPTEMBER, "meterIds": [usage["disk"]["id"]], "limit": 2})
    assert body["hasMoreData"] is True
    assert body["data"] == [
        {"gb": 0.1, "region": "eu", "tier": "iron", "ts": "2026-09-03T00:00:00.000Z",
         "accountId": usage["acme"]["id"], "accountCode": "acme", "meterId": usage["disk"]["id"], "meterCode": "disk"},
        {"gb": 100, "region": "eu", "tier": "iron", "ts": "2026-09-02T09:00:00.000Z",
         "accountId": usage["beta"]["id"], "accountCode": "beta", "meterId": usage["disk"]["id"], "meterCode": "disk"},
    ]


def test_every_meter_and_the_period_end_is_exclusive(client, auth, usage):
    body = post(client, auth, "usage/query", SEPTEMBER)
    assert body["hasMoreData"] is False
    assert len(body["data"]) == 7 and all(row["ts"] < "2026-10" for row in body["data"])
    assert body["data"][-1]["uid"] == "d1"


def test_accounts_and_dimension_filters_narrow_what_is_read(client, auth, usage):
    body = post(client, auth, "usage/query", {
        **SEPTEMBER, "accountIds": [usage["acme"]["id"]],
        "dimensionFilters": [{"meterId": usage["disk"]["id"], "fieldCode": "region", "values": ["eu"]}]})
    assert [(r["meterCode"], r["ts"][:13]) for r in body["data"]] == [
        ("disk", "2026-09-03T00"), ("api", "2026-09-02T12"), ("api", "2026-09-01T12"), ("disk", "2026-09-01T10")]


def test_aggregated_by_account_and_day(client, auth, usage):
    disk, api = usage["disk"]["id"], usage["api"]["id"]
    body = post(client, auth, "usage/query", {
        **SEPTEMBER,
        "aggregations": [{"meterId": disk, "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"},
                         {"meterId": api, "fieldCode": "n", "fieldType": "MEASURE", "function": "MAX"}],
        "groups": [{"groupType": "ACCOUNT"}, {"groupType": "TIME", "frequency": "DAY"}]})
    acme, beta = usage["acme"]["id"], usage["beta"]["id"]

    def day(d):
        return {"startDate": f"2026-09-0{d}T00:00:00.000Z", "endDate": f"2026-09-0{d + 1}T00:00:00.000Z",
                "timeGroup": f"2026-09-0{d}T00:00:00.000Z"}
    assert body == {"hasMoreData": False, "data": [
        {**day(3), "accountId": acme, "gb_sum": 0.1, "n_max": None},
        {**day(2), "accountId": acme, "gb_sum": None, "n_max": 600},
        {**day(2), "accountId": beta, "gb_sum": 100, "n_max": 7},
        {**day(1), "accountId": acme, "gb_sum": 10.75, "n_max": 400},
    ]}


def test_aggregated_by_dimension_over_the_whole_period(client, auth, usage):
    disk = usage["disk"]["id"]
    body = post(client, auth, "usage/query", {
        **SEPTEMBER,
        "aggregations": [{"meterId": disk, "fieldCode": "gb", "fieldType": "MEASURE", "function": "COUNT"},
                         {"meterId": disk, "fieldCode": "tier", "fieldType": "DIMENSION", "function": "UNIQUE"}],
        "groups": [{"groupType": "DIMENSION", "meterId": disk, "fieldCode": "region"}], "limit": 1})
    assert body == {"hasMoreData": True, "data": [
        {"startDate": "2026-09-01T00:00:00.000Z", "endDate": "2026-10-01T00:00:00.000Z", "region": "eu",
         "gb_count": 3, "tier_unique": 2}]}


@pytest.mark.parametrize(("body", "message"), [
    ({"endDate": "2026-10-01T00:00:00Z"}, "startDate: required"),
    ({**SEPTEMBER, "endDate": "2026-09-01T00:00:00Z"}, "endDate: must be later than startDate"),
    ({**SEPTEMBER, "meterIds": ["nope"]}, "meterIds[0]: no Meter with id 'nope'"),
    ({**SEPTEMBER, "groups": [{"groupType": "ACCOUNT"}]}, "groups[0]: groups apply to aggregated usage"),
])
def test_a_query_that_cannot_be_answered_is_a_400_naming_the_field(client, auth, usage, body, message):
    assert message in post(client, auth, "usage/query", body, status=400)["message"]


def test_a_wrong_function_for_the_field_is_a_400(client, auth, usage):
    body = {**SEPTEMBER, "aggregations": [
        {"meterId": usage["disk"]["id"], "fieldCode": "region", "fieldType": "DIMENSION", "function": "SUM"}]}
    message = post(client, auth, "usage/query", body, status=400)["message"]
    assert message.startswith("aggregations[0].function: SUM does not apply to a DIMENSION field")


def test_the_sdk_queries_usage(sdk):
    sdk.meters.create(name="Disk", code="disk", data_fields=[{"category": "MEASURE", "code": "gb", "name": "GB"}],
                      derived_fields=[])
    sdk.accounts.create(name="Acme", code="acme", email_address="a@example.com")
    sdk.usage.submit(measurements=[{"meter": "disk", "account": "acme", "ts": "2026-09-01T10:00:00Z",
                                    "measure": {"gb": 2}},
                                   {"meter": "disk", "account": "acme", "ts": "2026-09-01T11:00:00Z",
                                    "measure": {"gb": 3}}])
    meter_id = sdk.meters.list().data[0].id
    result = sdk.usage.query(start_date="2026-09-01T00:00:00Z", end_date="2026-10-01T00:00:00Z",
                             aggregations=[{"meter_id": meter_id, "field_code": "gb", "field_type": "MEASURE",
                                            "function": "SUM"}],
                             groups=[{"group_type": "ACCOUNT"}])
    assert result.has_more_data is False
    assert [row["gb_sum"] for row in result.data] == [5]


# -- quantities for bills -----------------------------------------------------------------------

def aggregation(client, auth, meter, **fields):
    body = {"name": fields.get("code", "agg"), "code": "agg", "meterId": meter["id"], "targetField": "gb",
            "aggregation": "SUM", "quantityPerUnit": 1, "rounding": "NONE", "unit": "GB", **fields}
    return post(client, auth, "aggregations", body)


def quantities(app, target, account="acme", start="2026-09-01T00:00:00Z", end="2026-10-01T00:00:00Z"):
    return app.backend.usage_engine.quantities(ORG, target["id"], account, ms(start), ms(end))


def test_an_aggregation_quantity_is_per_account_and_period_in_units(app, client, auth, usage):
    # acme's September disk usage: 10.5 + 0.25 + 0.1 = 10.85 GB; per 0.5 GB rounded up: 22 units.
    target = aggregation(client, auth, usage["disk"], quantityPerUnit=0.5, rounding="UP")
    assert quantities(app, target) == {None: Decimal(22)}
    assert quantities(app, target, account="beta") == {None: Decimal(200)}
    assert quantities(app, target, start="2026-09-01T10:30:00Z", end="2026-09-02T00:00:00Z") == {None: Decimal(1)}


def test_no_usage_is_the_default_value_then_units(app, client, auth, usage):
    target = aggregation(client, auth, usage["disk"], defaultValue=3, quantityPerUnit=2, rounding="NEAREST")
    assert quantities(app, target, start="2027-01-01T00:00:00Z", end="2027-02-01T00:00:00Z") == {None: Decimal(2)}


def test_a_segmented_aggregation_has_a_quantity_per_declared_segment(app, client, auth, usage):
    target = aggregation(client, auth, usage["disk"], segmentedFields=["region", "tier"],
                         segments=[{"region": "eu", "tier": "gold"}, {"region": "eu", "tier": "*"},
                                   {"region": "apac"}])
    assert quantities(app, target) == {
        (("region", "eu"), ("tier", "gold")): Decimal("10.5"), (("region", "eu"), ("tier", "*")): Decimal("0.1"),
        (("region", "apac"),): Decimal(0)}


def test_a_compound_aggregation_calculates_over_base_values_then_its_own_units(app, client, auth, usage):
    # Base values: disk 10.85 GB (its quantityPerUnit of 100 is not applied), api 1000 calls.
    aggregation(client, auth, usage["disk"], code="disk_gb", quantityPerUnit=100, rounding="UP")
    post(client, auth, "aggregations", {"name": "Calls", "code": "calls", "meterId": usage["api"]["id"],
                                        "targetField": "n", "aggregation": "SUM", "quantityPerUnit": 1,
                                        "rounding": "NONE", "unit": "calls"})
    compound = post(client, auth, "compoundaggregations", {
        "name": "Blend", "code": "blend", "rounding": "DOWN", "quantityPerUnit": 0.5, "unit": "u",
        "calculation": "aggregation.disk_gb * 2 + aggregation.calls / 1000"})
    # (10.85 * 2 + 1) / 0.5 = 45.4, rounded down: 45
    assert quantities(app, compound) == {None: Decimal(45)}


def test_a_compound_over_an_aggregation_without_usage_is_zero_unless_nulls_are_evaluated(app, client, auth, usage):
    aggregation(client, auth, usage["disk"], code="disk_gb")
    body = {"name": "C", "rounding": "NONE", "quantityPerUnit": 1, "unit": "u",
            "calculation": "aggregation.disk_gb + 5"}
    strict = post(client, auth, "compoundaggregations", {**body, "code": "strict"})
    lenient = post(client, auth, "compoundaggregations", {**body, "code": "lenient", "evaluateNullAggregations": True,
                                                          "calculation": "aggregation.disk_gb == null"})
    empty = {"start": "2027-01-01T00:00:00Z", "end": "2027-02-01T00:00:00Z"}
    assert quantities(app, strict, **empty) == {None: Decimal(0)}
    assert quantities(app, strict) == {None: Decimal("15.85")}
    assert quantities(app, lenient, **empty) == {None: Decimal(0)}  # true is not a number


def test_a_compound_naming_an_unknown_aggregation_is_a_400_naming_both(app, client, auth, usage):
    from mockserver.domain.errors import MockError

    compound = post(client, auth, "compoundaggregations", {
        "name": "C", "code": "c", "rounding": "NONE", "quantityPerUnit": 1, "unit": "u",
        "calculation": "aggregation.nothing * 2"})
    with pytest.raises(MockError) as caught:
        quantities(app, compound)
    assert caught.value.status == 400
    assert caught.value.message == "CompoundAggregation 'c': calculation: no Aggregation with code 'nothing'"


def test_quantities_of_an_unknown_id_is_a_404(app, usage):
    from mockserver.domain.errors import MockError

    with pytest.raises(MockError) as caught:
        quantities(app, {"id": "nope"})
    assert caught.value.status == 404


def test_aggregates_follow_every_change_of_the_usage_even_a_restored_store(app, client, auth, usage):
    body = {**SEPTEMBER, "aggregations": [
        {"meterId": usage["api"]["id"], "fieldCode": "n", "fieldType": "MEASURE", "function": "SUM"}]}

    def total():
        return post(client, auth, "usage/query", body)["data"][0]["n_sum"]

    def submit(n):
        post(client, auth, "measurements", {"measurements": [
            {"meter": "api", "account": "acme", "ts": "2026-09-20T00:00:00Z", "measure": {"n": n}}]})
    assert total() == 1007
    saved = app.backend.store.snapshot()
    submit(3)
    assert total() == 1010
    # Back to the snapshot, then as many measurements as before but another value.
    app.backend.store.restore(saved)
    submit(5)
    assert total() == 1012
