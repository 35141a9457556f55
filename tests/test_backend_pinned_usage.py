"""Usage behaviour that mutation testing found unpinned: a repeated aggregated query, the
quantities of compound aggregations (a calculation that does not parse or cannot be
evaluated, segmented aggregations without a shared segment, a segment without usage and its
defaultValue, CUSTOM_SQL), a usage export's period and its refusals, the failure Events of
the direct interface (Decimals as their number text), several failures of one batch in
order, uploaded files waiting to be processed across a restore, and the lifetimes of the
upload (1 minute), failed-ingest (5 minutes) and original-file (15 minutes) URLs from both
sides, with the refusals of an upload URL."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from mockserver.backend.crud import Caller
from mockserver.domain.errors import MockError
from mockserver.domain.usage_query import parse_instant
from tests.support.org_calls import AppCalls

ORG = "org-pinned-usage"
CLIENT = "test-client"
SEPTEMBER = {"startDate": "2026-09-01T00:00:00Z", "endDate": "2026-10-01T00:00:00Z"}


def ms(text: str) -> int:
    return parse_instant(text, "ts")


class Api(AppCalls):
    org = ORG

    def disk(self) -> dict:
        return self.ok("post", "/meters", {"name": "Disk", "code": "disk", "derivedFields": [], "dataFields": [
            {"category": "MEASURE", "code": "gb", "name": "GB"}, {"category": "WHERE", "code": "region", "name": "R"}]})

    def aggregation(self, meter: dict, code: str, **fields) -> dict:
        return self.ok("post", "/aggregations", {
            "name": code, "code": code, "meterId": meter["id"], "targetField": "gb", "aggregation": "SUM",
            "quantityPerUnit": 1, "rounding": "NONE", "unit": "GB", **fields})

    def compound(self, code: str, calculation: str, **fields) -> dict:
        return self.ok("post", "/compoundaggregations", {
            "name": code, "code": code, "rounding": "NONE", "quantityPerUnit": 1, "unit": "u",
            "calculation": calculation, **fields})

    def quantities(self, target: dict, account: str = "acme") -> dict:
        return self.backend.usage_engine.quantities(ORG, target["id"], account, ms(SEPTEMBER["startDate"]),
                                                    ms(SEPTEMBER["endDate"]))

    def submit(self, *measurements: dict, status: int = 200) -> dict:
        response = self.call("post", "/measurements", {"measurements": list(measurements)})
        assert response.status_code == status, response.text
        return response.json()

    def failure_events(self) -> list[dict]:
        """The ``ingest.validation.failure`` Events' newDto, oldest first."""
        events = self.ok("get", "/events", eventName="ingest.validation.failure", pageSize=100)["data"]
        return [e["m3terEvent"]["eventData"]["newDto"] for e in reversed(events)]


@pytest.fixture
def api(app, client, auth):
    app.backend.change_clock(freeze=True, at="2026-10-02T00:00:00Z")
    return Api(app, client, auth)


def gb(value, account="acme", ts="2026-09-01T10:00:00Z", region="eu", **more) -> dict:
    return {"meter": "disk", "account": account, "ts": ts, "measure": {"gb": value}, "where": {"region": region},
            **more}


# -- the usage query ---------------------------------------------------------------------------

def test_an_aggregated_query_asked_again_over_the_same_usage_answers_the_same(api):
    meter = api.disk()
    api.submit(gb(10), gb(5, ts="2026-09-02T00:00:00Z"), gb(7, account="beta"))
    body = {**SEPTEMBER, "accountIds": [api.ok("get", "/accounts", codes="acme")["data"][0]["id"]], "aggregations": [
        {"meterId": meter["id"], "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]}
    first = api.ok("post", "/usage/query", body)
    assert [row["gb_sum"] for row in first["data"]] == [15]
    assert api.ok("post", "/usage/query", body) == first  # the second one reads the kept series
    api.submit(gb(1, ts="2026-09-03T00:00:00Z"))
    assert [row["gb_sum"] for row in api.ok("post", "/usage/query", body)["data"]] == [16]


# -- quantities of compound aggregations ----------------------------------------------------------

def test_a_compound_whose_stored_calculation_does_not_parse_is_a_400_naming_it(api):
    api.aggregation(api.disk(), "disk_gb")
    compound = api.compound("broken", "aggregation.disk_gb *")
    with pytest.raises(MockError) as caught:
        api.quantities(compound)
    assert (caught.value.status, caught.value.message) == (
        400, "CompoundAggregation 'broken': calculation: syntax error at the end: unexpected end of input")


def test_a_compound_over_segmented_aggregations_without_a_common_segment_reads_their_whole_values(api):
    meter = api.disk()
    api.submit(gb(10), gb(2, region="us"), gb(100, account="beta"))
    api.aggregation(meter, "by_region", segmentedFields=["region"])  # no declared segment
    api.aggregation(meter, "eu_only", segmentedFields=["region"], segments=[{"region": "eu"}])
    api.aggregation(meter, "us_only", segmentedFields=["region"], segments=[{"region": "us"}])
    assert api.quantities(api.compound("whole", "aggregation.by_region * 2")) == {None: Decimal(24)}
    assert api.quantities(api.compound("disjoint", "aggregation.eu_only + aggregation.us_only")) == {
        None: Decimal(24)}


def test_a_compound_over_a_segment_without_usage_reads_the_aggregations_default_value(api):
    meter = api.disk()
    api.submit(gb(10), gb(2, region="us"))
    api.aggregation(meter, "regions", segmentedFields=["region"], defaultValue=3,
                    segments=[{"region": "eu"}, {"region": "apac"}])
    compound = api.compound("plus_one", "aggregation.regions + 1")
    assert api.quantities(compound) == {(("region", "eu"),): Decimal(11), (("region", "apac"),): Decimal(4)}


# -- ingest failures ------------------------------------------------------------------------------

def test_a_failure_of_the_direct_interface_records_its_decimals_as_their_number_text(api):
    api.disk()
    caller = Caller(ORG, CLIENT)
    with pytest.raises(MockError) as caught:
        api.backend.usage.submit(caller, [gb(Decimal("1.5"), uid="u-1", cost={"x": Decimal("2")})])
    assert caught.value.status == 400
    [event] = api.failure_events()
    assert event["measurement"] == {"meter": "disk", "account": "acme", "ts": "2026-09-01T10:00:00Z",
                                    "measure": {"gb": "1.5"}, "where": {"region": "eu"}, "uid": "u-1",
                                    "cost": {"x": "2"}}


def test_several_failures_of_one_batch_are_named_and_recorded_in_the_batchs_order(api):
    # The spec refuses such account codes over HTTP first; the direct interface and uploaded
    # files meet the rule here, after each measurement's own checks.
    api.disk()
    with pytest.raises(MockError) as caught:
        api.backend.usage.submit(Caller(ORG, CLIENT), [
            gb(1), gb(1, account=" padded "), gb(1, region=7), gb(1, account="tab\there")])
    assert (caught.value.status, caught.value.message) == (400, (
        "measurements[1].account: ' padded ' cannot be an Account code (control characters, or whitespace at either "
        "end); nothing of this batch was stored (3 of 4 measurements failed: see the ingest.validation.failure "
        "Events)"))
    assert [event["error"] for event in api.failure_events()] == [
        "measurements[1].account: ' padded ' cannot be an Account code (control characters, or whitespace at either "
        "end)",
        "measurements[2].where.region: 7 is not a string",
        "measurements[3].account: 'tab\\there' cannot be an Account code (control characters, or whitespace at "
        "either end)"]


# -- file uploads across a restore ------------------------------------------------------------------

def test_an_uploaded_file_waiting_at_a_restore_is_processed_a_second_after_it(api):
    api.disk()
    content = json.dumps({"measurements": [gb(4, uid="f1"), gb(6, uid="f2")]}).encode()
    answer = api.ok("post", "/fileuploads/measurements/generateUploadUrl",
                    {"fileName": "usage.json", "contentType": "application/json", "contentLength": len(content)})
    put = api.client.put(answer["url"].replace("http://testserver", ""), content=content,
                         headers={"Content-Type": "application/json"})
    assert put.status_code == 200, put.text
    api.backend.state.take("waiting", ORG)
    api.advance(1)
    assert api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")["status"] == "succeeded"
    api.backend.state.restore("waiting")
    assert api.backend.usage.count(ORG) == 0
    assert api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")["status"] == "running"
    api.advance(0.5)
    assert api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")["status"] == "running"
    api.advance(0.5)
    job = api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")
    assert (job["status"], job["processedRows"]) == ("succeeded", 2)
    assert api.backend.usage.count(ORG) == 2


# -- more of the usage engine ---------------------------------------------------------------------------

def test_an_aggregated_query_of_an_organization_without_usage_answers_no_row(api):
    meter = api.disk()
    body = {**SEPTEMBER, "aggregations": [
        {"meterId": meter["id"], "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}]}
    assert api.ok("post", "/usage/query", body) == {"data": [], "hasMoreData": False}
    assert api.ok("post", "/usage/query", body) == {"data": [], "hasMoreData": False}


def test_a_custom_sql_aggregation_is_a_501_naming_it(api):
    aggregation = api.aggregation(api.disk(), "by_sql", aggregation="CUSTOM_SQL", customSql="SELECT 1")
    with pytest.raises(MockError) as caught:
        api.quantities(aggregation)
    assert (caught.value.status, caught.value.message) == (
        501, "Aggregation 'by_sql': aggregation: CUSTOM_SQL aggregations are not evaluated by the mock")


def test_a_compound_whose_calculation_cannot_be_evaluated_is_a_400_naming_it(api):
    api.aggregation(api.disk(), "disk_gb")
    api.submit(gb(10))
    with pytest.raises(MockError) as caught:
        api.quantities(api.compound("deep", "disk_gb" + "+1" * 2400))
    assert (caught.value.status, caught.value.message) == (
        400, "CompoundAggregation 'deep': calculation: nested too deeply to evaluate")


AT = datetime(2026, 10, 2, 5, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("selection, period", [
    ({}, (0, "2026-10-02T05:30:00Z")),  # everything before the job was created
    ({"startDate": "2026-09-01T00:00:00Z"}, ("2026-09-01T00:00:00Z", "2026-10-02T05:30:00Z")),
    ({"endDate": "2026-09-15T00:00:00Z"}, (0, "2026-09-15T00:00:00Z")),
    ({"startDate": "2026-09-01T00:00:00Z", "endDate": "2026-09-15T00:00:00Z"},
     ("2026-09-01T00:00:00Z", "2026-09-15T00:00:00Z")),
    ({"timePeriod": "YESTERDAY", "startDate": "2026-01-01T00:00:00Z"},
     ("2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z")),
])
def test_a_usage_exports_period_is_its_time_period_else_its_dates_else_all_before_it_runs(api, selection, period):
    expected = tuple(value if isinstance(value, int) else ms(value) for value in period)
    assert api.backend.usage_engine.export_period(selection, AT) == expected


def test_an_adhoc_usage_export_must_end_after_it_starts(api):
    engine, caller = api.backend.usage_engine, Caller(ORG, CLIENT)
    with pytest.raises(MockError) as caught:
        engine.check_export(caller, {"startDate": "2026-09-01T00:00:00Z", "endDate": "2026-09-01T00:00:00Z"}, AT)
    assert (caught.value.status, caught.value.message) == (400, "endDate: must be later than startDate")
    assert engine.check_export(caller, {"startDate": "2026-09-01T00:00:00Z",
                                        "endDate": "2026-09-01T00:00:00.001Z"}, AT) is None
    # Without endDate it ends when it runs: a start after that is not refused, it selects nothing.
    assert engine.check_export(caller, {"startDate": "2026-11-01T00:00:00Z"}, AT) is None


def test_a_usage_export_that_starts_after_it_runs_has_no_rows(api):
    api.disk()
    api.submit(gb(10), gb(5, ts="2026-10-02T05:29:59Z"))
    engine = api.backend.usage_engine
    with api.backend.store.lock:
        assert engine.export_rows(ORG, {"startDate": "2026-10-02T05:30:00Z"}, AT) == []
        assert [row["gb"] for row in engine.export_rows(ORG, {"startDate": "2026-10-02T05:29:59Z"}, AT)] == [5]


# -- more of ingest and file uploads --------------------------------------------------------------------

def test_the_direct_interface_refuses_measurements_that_are_not_a_list(api):
    with pytest.raises(MockError) as caught:
        api.backend.usage.submit(Caller(ORG, CLIENT), {"measurements": []})
    assert (caught.value.status, caught.value.message) == (400, "measurements: must be an array of measurements")


def upload(api: Api, content: bytes, content_type: str = "application/json") -> dict:
    return api.ok("post", "/fileuploads/measurements/generateUploadUrl",
                  {"fileName": "usage.json", "contentType": content_type, "contentLength": len(content)})


def put(api: Api, url: str, content: bytes, content_type: str | None = "application/json"):
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return api.client.put(url.replace("http://testserver", ""), content=content, headers=headers)


def fetch(api: Api, url: str):
    return api.client.get(url.replace("http://testserver", ""))


FILE = json.dumps({"measurements": [gb(1, uid="one")]}).encode()


def test_an_upload_url_lasts_one_minute_to_the_millisecond(api):
    api.disk()
    answer = upload(api, FILE)
    api.advance(59.999)
    assert put(api, answer["url"], FILE).status_code == 200
    late = upload(api, FILE)
    api.advance(60)
    response = put(api, late["url"], FILE)
    assert (response.status_code, response.json()) == (403, {"message": (
        "this upload URL is not valid, was used or has expired (they last one minute); ask for a new one")})


def test_an_upload_urls_content_type_is_compared_without_parameters_or_case(api):
    answer = upload(api, FILE)
    response = put(api, answer["url"], FILE, None)
    assert (response.status_code, response.json()) == (400, {
        "message": "Content-Type: this URL takes application/json, as its headers say (got none)"})
    token = answer["url"].rsplit("/", 1)[-1]
    job = api.backend.usage.receive_upload(token, FILE, "Application/JSON ; charset=utf-8")
    assert (job["id"], job["status"]) == (answer["jobId"], "running")


def test_an_upload_url_refuses_json_with_nan_and_a_job_reset_since(api):
    content = b'{"measurements": NaN}'
    answer = upload(api, content)
    with pytest.raises(MockError) as caught:
        api.backend.usage.receive_upload(answer["url"].rsplit("/", 1)[-1], content, "application/json")
    assert (caught.value.status, caught.value.message) == (400, "body: not valid JSON: NaN is not a JSON number")
    assert api.client.post("/_mock/reset", params={"orgId": ORG}).status_code == 200
    response = put(api, answer["url"], FILE)
    assert (response.status_code, response.json()) == (403, {"message": "the upload job of this URL no longer exists"})


def test_a_file_with_an_empty_measurements_array_fails_its_job_saying_so(api):
    content = b'{"measurements": []}'
    answer = upload(api, content)
    assert put(api, answer["url"], content).status_code == 200
    api.advance(1)
    job = api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")
    assert (job["status"], job["totalRows"], job["processedRows"], job["failedRows"]) == ("failed", 0, 0, 0)
    assert [event["error"] for event in api.failure_events()] == [
        "file: 'usage.json' has no measurements to ingest: its measurements array is empty"]


def test_an_original_file_url_lasts_fifteen_minutes(api):
    api.disk()
    answer = upload(api, FILE)
    assert put(api, answer["url"], FILE).status_code == 200
    url = api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}/original")["url"]
    api.advance(15 * 60 - 0.001)
    assert fetch(api, url).content == FILE
    api.advance(0.001)
    assert fetch(api, url).status_code == 403


def test_a_failed_ingest_url_lasts_five_minutes_and_names_what_is_kept(api):
    api.disk()
    api.submit(gb(1, measure={"cpu": 1}), status=400)
    assert api.refused(404, "get", "/measurements/failedIngest/getDownloadUrl", file="failedIngest/none.jsonl") == (
        "file: no failed ingest file 'failedIngest/none.jsonl' (the path is in the ingest.validation.failure Event's "
        "getDownloadUrl; the newest 100 are kept)")
    url = api.ok("get", "/measurements/failedIngest/getDownloadUrl")["url"]
    api.advance(5 * 60 - 0.001)
    assert fetch(api, url).status_code == 200
    api.advance(0.001)
    assert fetch(api, url).status_code == 403


def test_a_download_url_of_a_failure_file_no_longer_kept_is_a_403_saying_so(api):
    api.disk()
    settings = api.backend.settings
    kept, settings.retain_export_files = settings.retain_export_files, 1
    try:
        api.submit(gb(1, measure={"cpu": 1}), status=400)
        url = api.ok("get", "/measurements/failedIngest/getDownloadUrl")["url"]
        api.submit(gb(2, measure={"cpu": 2}), status=400)
    finally:
        settings.retain_export_files = kept
    response = fetch(api, url)
    assert (response.status_code, response.json()) == (403, {
        "message": "the file of this download URL is no longer kept (newer files replaced it)"})


def test_an_original_file_whose_name_the_direct_interface_left_empty_is_served_as_measurements_json(api):
    answer = api.backend.usage.upload_url(Caller(ORG, CLIENT), {
        "fileName": "", "contentType": "application/json", "contentLength": len(FILE)}, "http://testserver")
    assert put(api, answer["url"], FILE).status_code == 200
    download = fetch(api, api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}/original")["url"])
    assert download.headers["content-disposition"] == 'attachment; filename="measurements.json"'


def test_an_uploaded_file_waiting_when_a_fixture_is_refused_is_still_processed(api):
    api.disk()
    api.ok("post", "/products", {"name": "Kept", "code": "kept"})
    answer = upload(api, FILE)
    assert put(api, answer["url"], FILE).status_code == 200
    refused = api.client.post(f"/_mock/organizations/{ORG}/fixture", json={
        "products": {"new": {"name": "New", "code": "new"}, "clash": {"name": "Clash", "code": "kept"}}})
    assert refused.status_code == 409, refused.text
    api.advance(1)
    job = api.ok("get", f"/fileuploads/measurements/jobs/{answer['jobId']}")
    assert (job["status"], job["processedRows"]) == ("succeeded", 1)
    assert [p["code"] for p in api.ok("get", "/products")["data"]] == ["kept"]
