"""Measurements in: SubmitMeasurements with m3ter's batch rules, the usage store that keeps
them (``backend.usage.select``/``count``), failed ingest Events and files, and the file
upload service (upload URL, jobs processed on the mock's clock, original files), through HTTP
and through the official SDK. Expected values are the ones m3ter's spec and the mock's spec
state, written out."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import m3ter
import pytest
import yaml

from mockserver.app import M3TER_SPEC
from mockserver.backend.crud import Caller
from tests.conftest import ORG as SDK_ORG
from tests.conftest import bearer_for

ORG = "org-ingest"
BASE = f"/organizations/{ORG}"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
METER = {"name": "API calls", "code": "api", "derivedFields": [
    {"category": "MEASURE", "code": "kilo", "name": "Thousands", "unit": "k", "calculation": "requests / 1000"}],
    "dataFields": [{"category": "MEASURE", "code": "requests", "name": "Requests", "unit": "count"},
                   {"category": "WHERE", "code": "region", "name": "Region"}]}
JAN = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch milliseconds
HOUR = 3_600_000


class Api:
    def __init__(self, app):
        self.app = app
        self.backend = app.backend
        self.client = app.test_client()
        self.headers = bearer_for(self.client)
        self.meter = self.post("meters", METER)

    def post(self, path: str, body: dict, status: int = 200):
        response = self.client.post(f"{BASE}/{path}", json=body, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()

    def get(self, path: str, status: int = 200, **query):
        response = self.client.get(f"{BASE}/{path}", params=query, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()

    def submit(self, *measurements: dict, status: int = 200):
        return self.post("measurements", {"measurements": list(measurements)}, status)

    def fetch(self, url: str, headers: dict | None = None) -> httpx.Response:
        return self.client.get(url.replace("http://testserver", ""), headers=headers)

    def put(self, url: str, content: bytes, content_type: str = "application/json") -> httpx.Response:
        return self.client.put(url.replace("http://testserver", ""), content=content,
                               headers={"Content-Type": content_type})

    def advance(self, seconds: float) -> None:
        self.backend.change_clock(advance_seconds=seconds)

    def stored(self, start=0, end=2 ** 62, accounts=None) -> list:
        return list(self.backend.usage.select(ORG, self.meter["id"], start, end, accounts))

    def events(self, name: str) -> list[dict]:
        return self.get("events", eventName=name, pageSize=100)["data"]


@pytest.fixture
def api(app):
    app.backend.clock.freeze(START)
    return Api(app)


def m(account="acme", ts="2026-01-01T00:00:00Z", **fields) -> dict:
    return {"meter": "api", "account": account, "ts": ts, **fields}


# -- submit ---------------------------------------------------------------------------------

def test_a_batch_is_accepted_and_stored_with_exact_values(api):
    answer = api.submit(m(uid="a-1", measure={"requests": 0.1}, where={"region": "eu"}),
                        m(ts="2026-01-01T01:00:00+01:00", ets="2026-01-01T00:30:00Z", measure={"requests": 2500}))
    assert answer == {"result": "accepted"}
    assert api.backend.usage.count(ORG) == 2
    first, second = api.stored()
    assert (first.uid, first.meter, first.account, first.ts, first.ets) == ("a-1", "api", "acme", JAN, None)
    assert first.values == {"requests": Decimal("0.1"), "region": "eu", "kilo": Decimal("0.0001")}
    assert (second.ts, second.ets) == (JAN, JAN + HOUR // 2)
    assert second.values == {"requests": Decimal("2500"), "kilo": Decimal("2.5")}


def test_an_unknown_account_code_gets_a_skeleton_account(api):
    api.submit(m(account="new-customer", measure={"requests": 1}))
    accounts = api.get("accounts", codes="new-customer")["data"]
    assert [(a["name"], a["code"]) for a in accounts] == [("new-customer", "new-customer")]
    created = api.events("configuration.account.created")
    assert [e["m3terEvent"]["eventData"]["newDto"]["code"] for e in created] == ["new-customer"]
    api.submit(m(account="new-customer", measure={"requests": 1}))
    assert len(api.get("accounts", codes="new-customer")["data"]) == 1


def test_a_uid_the_meter_holds_is_not_stored_twice(api):
    api.submit(m(uid="u-1", measure={"requests": 1}), m(uid="u-1", measure={"requests": 2}),
               m(uid="u-2", measure={"requests": 3}))
    assert api.submit(m(uid="u-2", measure={"requests": 4}), m(measure={"requests": 5}),
                      m(measure={"requests": 5})) == {"result": "accepted"}
    assert [s.values["requests"] for s in api.stored()] == [Decimal(1), Decimal(3), Decimal(5), Decimal(5)]
    # A uid belongs to its Meter: another Meter may hold the same one.
    other = api.post("meters", {**METER, "code": "web", "name": "Web", "derivedFields": []})
    api.submit({**m(uid="u-1", measure={"requests": 9}), "meter": "web"})
    assert [s.uid for s in api.backend.usage.select(ORG, other["id"], 0, 2 ** 62)] == ["u-1"]


def test_an_invalid_measurement_rejects_the_whole_batch_and_names_itself(api):
    api.submit(m(account="known", measure={"requests": 1}))
    before = api.backend.store.contents()
    answer = api.submit(m(account="brand-new", measure={"requests": 1}), m(measure={"cpu": 2}),
                        m(meter="nope"), status=400)
    assert answer == {"message": "measurements[1].measure.cpu: Meter 'api' has no MEASURE field 'cpu' (its MEASURE "
                                 "fields: requests); nothing of this batch was stored (2 of 3 measurements failed: see "
                                 "the ingest.validation.failure Events)"}
    assert api.backend.usage.count(ORG) == 1
    assert api.get("accounts", codes="brand-new")["data"] == []
    after = api.backend.store.contents()
    assert {name: items for name, items in after[ORG].items() if name not in ("events", "ingestfailures")} == \
        {name: items for name, items in before[ORG].items() if name != "events"}


def test_each_invalid_measurement_records_an_event_and_the_failure_file_lists_them(api):
    api.submit(m(account="known", measure={"requests": 1}))
    api.submit(m(account="known", uid="x-1", measure={"cpu": 2}), m(meter="nope", ts="2026-01-02T00:00:00Z"),
               status=400)
    events = api.events("ingest.validation.failure")
    assert len(events) == 2
    meter_error, cpu_error = (e["m3terEvent"]["eventData"]["newDto"] for e in events)  # newest first
    url = cpu_error["getDownloadUrl"]
    assert url.startswith(f"http://testserver{BASE}/measurements/failedIngest/getDownloadUrl?file=failedIngest/")
    assert cpu_error == {
        "error": "measurements[0].measure.cpu: Meter 'api' has no MEASURE field 'cpu' (its MEASURE fields: requests)",
        "measurement": m(account="known", uid="x-1", measure={"cpu": 2}), "getDownloadUrl": url,
        "meterCode": "api", "meterId": api.meter["id"], "accountCode": "known", "ts": "2026-01-01T00:00:00Z",
        "uid": "x-1"}
    assert meter_error["error"] == "measurements[1].meter: no Meter with code 'nope'"
    assert "meterId" not in meter_error and meter_error["getDownloadUrl"] == url
    known = api.get("accounts", codes="known")["data"][0]["id"]
    assert [e["id"] for e in api.get("events", accountId=known)["data"]] == [events[1]["id"]]

    # The Event's URL is the (authenticated) call that hands out the file's download URL.
    link = api.fetch(url, api.headers)
    assert link.status_code == 200, link.text
    download = api.fetch(link.json()["url"])
    assert download.status_code == 200 and download.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in download.text.splitlines()] == [
        {"index": 0, "error": cpu_error["error"], "measurement": m(account="known", uid="x-1", measure={"cpu": 2})},
        {"index": 1, "error": meter_error["error"], "measurement": m(meter="nope", ts="2026-01-02T00:00:00Z")}]


def test_the_failed_ingest_url_serves_the_newest_file_without_file_and_lasts_five_minutes(api):
    assert api.get("measurements/failedIngest/getDownloadUrl", 404) == {
        "message": "No failed ingest file: no measurement has failed ingest yet"}
    api.submit(m(measure={"cpu": 1}), status=400)
    api.submit(m(measure={"gpu": 1}), status=400)
    url = api.get("measurements/failedIngest/getDownloadUrl")["url"]
    assert json.loads(api.fetch(url).text)["measurement"] == m(measure={"gpu": 1})
    unknown = api.get("measurements/failedIngest/getDownloadUrl", 404, file="failedIngest/nothing.jsonl")
    assert unknown["message"].startswith("file: no failed ingest file 'failedIngest/nothing.jsonl'")
    api.advance(5 * 60)
    assert api.fetch(url).status_code == 403


@pytest.mark.parametrize("measurement, message", [
    (m(ets="2025-12-31T23:59:59Z"), "measurements[0].ets: 2025-12-31T23:59:59Z is earlier than ts "
                                    "(2026-01-01T00:00:00Z)"),
    (m(measure={"region": 1}), "measurements[0].measure.region: 'region' is a WHERE field of Meter 'api', not a "
                               "MEASURE field (send it in where)"),
    (m(measure={"kilo": 1}), "measurements[0].measure.kilo: 'kilo' is a derived field of Meter 'api': its value is "
                             "calculated, not submitted"),
    (m(measures={"requests": 1}), "measurements[0].measures: not a field of a measurement (it has uid, meter, "
                                  "account, ts, ets and the categories who, where, what, other, metadata, measure, "
                                  "cost, income)"),
])
def test_m3ters_rules_for_one_measurement(api, measurement, message):
    assert api.submit(measurement, status=400)["message"].startswith(message + "; nothing of this batch was stored")
    assert api.backend.usage.count(ORG) == 0


@pytest.mark.parametrize("measurement, field", [
    ({"meter": "api", "account": "acme"}, "measurements.0: 'ts' is a required property"),
    (m(ts="yesterday"), "measurements.0.ts: 'yesterday' is not a 'date-time'"),
    (m(measure={"requests": "12"}), "measurements.0.measure.requests: '12' is not of type 'number'"),
    (m(account=" padded"), "measurements.0.account: ' padded' does not match"),
    (m(uid="u" * 51), "measurements.0.uid:"),
])
def test_the_spec_refuses_malformed_measurements_first(api, measurement, field):
    assert api.submit(measurement, status=400)["message"].startswith(field)


def test_a_batch_holds_1_to_1000_measurements_in_under_512000_bytes(api):
    assert api.submit(status=400)["message"] == "measurements: [] should be non-empty"
    assert api.submit(*[m(measure={"requests": n}) for n in range(1001)], status=400)["message"] == \
        "measurements: [... 1001 items ...] is too long"
    assert api.submit(*[m(uid=f"u{n}", measure={"requests": n}) for n in range(1000)]) == {"result": "accepted"}
    big = json.dumps({"measurements": [m(uid=f"{n:0>50}", where={"region": "r" * 400}) for n in range(1000)]})
    assert len(big) >= 512_000
    response = api.client.post(f"{BASE}/measurements", content=big.encode(),
                               headers={**api.headers, "Content-Type": "application/json"})
    assert (response.status_code, response.json()["message"]) == (
        413, f"body: {len(big)} bytes; a measurements payload must be smaller than 512000 bytes (send fewer "
             f"measurements per call)")

    def body_of(size: int) -> bytes:
        empty = len(json.dumps({"measurements": [m(uid="y", where={"region": ""})]}))
        return json.dumps({"measurements": [m(uid="y", where={"region": "r" * (size - empty)})]}).encode()

    headers = {**api.headers, "Content-Type": "application/json"}
    assert len(body_of(511_999)) == 511_999
    assert api.client.post(f"{BASE}/measurements", content=body_of(512_000), headers=headers).status_code == 413
    assert api.client.post(f"{BASE}/measurements", content=body_of(511_999), headers=headers).status_code == 200
    assert api.backend.usage.count(ORG) == 1001


# -- the usage store -------------------------------------------------------------------------

def test_select_keeps_a_period_and_accounts_in_ts_order(api):
    api.submit(m(account="b", ts="2026-01-01T02:00:00Z", uid="b2"), m(account="a", ts="2026-01-01T01:00:00Z", uid="a1"),
               m(account="c", ts="2026-01-01T01:00:00Z", uid="c1"), m(account="a", ts="2026-01-01T00:00:00Z", uid="a0"))
    api.submit(m(account="b", ts="2026-01-01T01:00:00Z", uid="b1"), m(account="a", ts="2026-01-01T03:00:00Z", uid="a3"))
    assert [s.uid for s in api.stored()] == ["a0", "a1", "c1", "b1", "b2", "a3"]  # one ts: in arrival order
    assert [s.uid for s in api.stored(JAN + HOUR, JAN + 3 * HOUR)] == ["a1", "c1", "b1", "b2"]  # end excluded
    assert [s.uid for s in api.stored(JAN + HOUR, JAN + 3 * HOUR, ["b"])] == ["b1", "b2"]
    assert [s.uid for s in api.stored(JAN, JAN + 4 * HOUR, {"a", "b"})] == ["a0", "a1", "b1", "b2", "a3"]
    assert api.stored(accounts=[]) == [] and api.stored(accounts=["nobody"]) == []
    assert api.stored(JAN + HOUR, JAN + HOUR) == []
    assert list(api.backend.usage.select(ORG, "no-such-meter", 0, 2 ** 62)) == []
    assert list(api.backend.usage.select("org-never-written", api.meter["id"], 0, 2 ** 62)) == []
    assert "org-never-written" not in api.backend.store.org_ids()


def test_snapshot_restore_and_reset_cover_the_measurements(api):
    api.submit(m(uid="1"), m(uid="2"))
    snapshot = api.backend.store.snapshot()
    api.submit(m(uid="3"))
    assert api.backend.usage.count(ORG) == 3
    api.backend.store.restore(snapshot)
    assert [s.uid for s in api.stored()] == ["1", "2"] and api.backend.usage.count(ORG) == 2
    api.submit(m(uid="3"), m(uid="2"))  # the restored uids are the ones held
    assert [s.uid for s in api.stored()] == ["1", "2", "3"]
    api.client.post("/_mock/reset")
    assert api.backend.usage.count(ORG) == 0


def test_the_direct_interface_takes_the_same_rules(api):
    caller = Caller(ORG, "test-client")
    assert api.backend.usage.submit(caller, [m(measure={"requests": Decimal("1.25")})]) == {"result": "accepted"}
    assert api.stored()[0].values["requests"] == Decimal("1.25")
    with pytest.raises(Exception) as caught:
        api.backend.usage.submit(caller, [])
    assert str(caught.value) == "measurements: a batch holds 1 to 1000 measurements (got 0)"


# -- file uploads -------------------------------------------------------------------------------

def upload(api, content: bytes, content_type="application/json", name="usage.json") -> dict:
    return api.post("fileuploads/measurements/generateUploadUrl",
                    {"fileName": name, "contentType": content_type, "contentLength": len(content)})


def test_an_uploaded_file_is_processed_a_second_later(api):
    content = json.dumps({"measurements": [m(uid="f1", measure={"requests": 1}), m(uid="f2", measure={"cpu": 1}),
                                           m(uid="f3", account="fresh", measure={"requests": 3})]}).encode()
    answer = upload(api, content)
    assert answer["headers"] == {"Content-Type": "application/json"}
    assert answer["url"].startswith("http://testserver/_mock/uploads/")
    job = api.get(f"fileuploads/measurements/jobs/{answer['jobId']}")
    assert job == {"id": answer["jobId"], "version": 1, "fileName": "usage.json", "contentLength": len(content),
                   "status": "notUploaded", "totalRows": 0, "processedRows": 0, "failedRows": 0}
    assert api.get(f"fileuploads/measurements/jobs/{answer['jobId']}/original", 404)["message"] == (
        f"File upload job {answer['jobId']!r} has no original file: no file was uploaded for it yet")

    put = api.put(answer["url"], content)
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "running"
    running = api.get(f"fileuploads/measurements/jobs/{answer['jobId']}")
    assert (running["status"], running["uploadDate"]) == ("running", "2026-03-01T00:00:00.000Z")
    assert api.backend.usage.count(ORG) == 0

    api.advance(1)
    done = api.get(f"fileuploads/measurements/jobs/{answer['jobId']}")
    assert (done["status"], done["totalRows"], done["processedRows"], done["failedRows"]) == ("succeeded", 3, 2, 1)
    assert [s.uid for s in api.stored()] == ["f1", "f3"]  # a file is not all or nothing
    assert [a["code"] for a in api.get("accounts")["data"]] == ["acme", "fresh"]
    failure = api.events("ingest.validation.failure")[0]["m3terEvent"]["eventData"]["newDto"]
    assert failure["error"] == ("measurements[1].measure.cpu: Meter 'api' has no MEASURE field 'cpu' (its MEASURE "
                                "fields: requests)")

    original = api.get(f"fileuploads/measurements/jobs/{answer['jobId']}/original")
    assert (original["jobId"], original["headers"]) == (answer["jobId"], {"Content-Type": "application/json"})
    download = api.fetch(original["url"])
    assert download.status_code == 200 and download.content == content


def test_an_original_file_comes_back_under_a_plain_name_and_goes_with_newer_uploads(api):
    content = json.dumps({"measurements": [m(uid="n1")]}).encode()
    answer = upload(api, content, name='my "usage"\r\nX-Injected: 1.json')
    assert api.put(answer["url"], content).status_code == 200
    download = api.fetch(api.get(f"fileuploads/measurements/jobs/{answer['jobId']}/original")["url"])
    assert download.content == content
    assert download.headers["content-disposition"] == 'attachment; filename="my__usage___X-Injected__1.json"'
    assert "x-injected" not in download.headers
    api.backend.settings.retain_export_files, kept = 1, api.backend.settings.retain_export_files
    try:
        newer = upload(api, content)
        assert api.put(newer["url"], content).status_code == 200
        assert api.get(f"fileuploads/measurements/jobs/{answer['jobId']}/original", 404)["message"].endswith(
            "has no original file: its file is no longer kept (the newest 1 are)")
    finally:
        api.backend.settings.retain_export_files = kept


def test_a_file_without_measurements_fails_its_job(api):
    content = b'{"usage": []}'
    answer = upload(api, content, "text/json")
    assert api.put(answer["url"], content, "text/json").status_code == 200
    api.advance(1)
    job = api.get(f"fileuploads/measurements/jobs/{answer['jobId']}")
    assert (job["status"], job["totalRows"], job["processedRows"], job["failedRows"]) == ("failed", 0, 0, 0)
    event = api.events("ingest.validation.failure")[0]["m3terEvent"]["eventData"]["newDto"]
    assert event["error"] == ("file: 'usage.json' has no measurements to ingest: it is not a JSON object "
                              '{"measurements": [...]}')


def test_an_upload_url_takes_only_json_of_its_type_and_length_once_within_a_minute(api):
    content = json.dumps({"measurements": [m(uid="x")]}).encode()
    answer = upload(api, content, "text/json")
    assert api.put(answer["url"], content, "application/json").json() == {
        "message": "Content-Type: this URL takes text/json, as its headers say (got application/json)"}
    assert api.put(answer["url"], content[:-1], "text/json").json() == {
        "message": f"Content-Length: this URL takes a file of {len(content)} bytes (got {len(content) - 1})"}
    not_json = b"x" * len(content)
    assert api.put(answer["url"], not_json, "text/json").json()["message"].startswith("body: not valid JSON")
    assert api.get(f"fileuploads/measurements/jobs/{answer['jobId']}")["status"] == "notUploaded"
    assert api.put(answer["url"], content, "text/json").status_code == 200
    assert api.put(answer["url"], content, "text/json").status_code == 403  # used
    late = upload(api, content)
    api.advance(60)
    assert api.put(late["url"], content).status_code == 403  # expired
    assert api.get(f"fileuploads/measurements/jobs/{late['jobId']}")["status"] == "notUploaded"


def test_upload_jobs_are_listed_in_creation_order_and_by_creation_date(api):
    first = upload(api, b"{}")["jobId"]
    api.advance(3600)
    second = upload(api, b"{}")["jobId"]
    third = upload(api, b"{}")["jobId"]
    page = api.get("fileuploads/measurements/jobs", pageSize=2)
    assert [j["id"] for j in page["data"]] == [first, second]
    rest = api.get("fileuploads/measurements/jobs", pageSize=2, nextToken=page["nextToken"])
    assert [j["id"] for j in rest["data"]] == [third] and "nextToken" not in rest
    later = api.get("fileuploads/measurements/jobs", dateCreatedStart="2026-03-01T01:00:00Z")
    assert [j["id"] for j in later["data"]] == [second, third]
    earlier = api.get("fileuploads/measurements/jobs", dateCreatedEnd="2026-03-01T01:00:00Z")
    assert [j["id"] for j in earlier["data"]] == [first]
    assert api.get("fileuploads/measurements/jobs", 400, dateCreatedStart="March")["message"] == (
        "dateCreatedStart: 'March' is not an ISO-8601 date-time (yyyy-MM-ddTHH:mm:ssZ)")
    assert api.get("fileuploads/measurements/jobs/no-such-job", 404)["message"] == (
        "No file upload job with id 'no-such-job'")


def test_the_measurement_operations_are_served_and_documented():
    spec = yaml.safe_load(M3TER_SPEC.read_text(encoding="utf-8"))
    served = {"SubmitMeasurements", "GetValidationErrorDownloadUrl", "GenerateUploadUrl", "ListJobs",
              "GetUploadJobResponse", "GetJobOriginalFileDownloadUrl"}
    found = {op["operationId"]: op for item in spec["paths"].values() for op in item.values()
             if isinstance(op, dict) and op.get("operationId") in served}
    assert set(found) == served
    for op in found.values():
        assert "x-mock" not in op and "501" not in op["responses"]
        assert "Not served by the mock" not in op["description"]


# -- the official SDK ------------------------------------------------------------------------------

def test_the_sdk_submits_measurements_to_the_mock(sdk, live_app):
    sdk.meters.create(code="api", name="API calls", data_fields=METER["dataFields"], derived_fields=[])
    answer = sdk.usage.submit(measurements=[
        {"account": "sdk-account", "meter": "api", "ts": "2026-01-01T00:00:00Z", "measure": {"requests": 0.1},
         "uid": "sdk-1"},
        {"account": "sdk-account", "meter": "api", "ts": datetime(2026, 1, 1, 1, tzinfo=timezone.utc),
         "measure": {"requests": 2}}])
    assert answer.result == "accepted"
    meter = sdk.meters.list().data[0]
    stored = list(live_app.backend.usage.select(SDK_ORG, meter.id, JAN, JAN + 2 * HOUR))
    assert [(s.account, s.ts, s.values["requests"]) for s in stored] == [
        ("sdk-account", JAN, Decimal("0.1")), ("sdk-account", JAN + HOUR, Decimal("2"))]

    with pytest.raises(m3ter.BadRequestError) as refused:
        sdk.usage.submit(measurements=[{"account": "sdk-account", "meter": "web", "ts": "2026-01-01T00:00:00Z"}])
    assert refused.value.body["message"].startswith("measurements[0].meter: no Meter with code 'web'")
    link = sdk.usage.get_failed_ingest_download_url()
    assert json.loads(httpx.get(link.url, trust_env=False).text)["error"] == (
        "measurements[0].meter: no Meter with code 'web'")


def test_the_sdk_uploads_a_measurements_file(sdk, live_app):
    sdk.meters.create(code="api", name="API calls", data_fields=METER["dataFields"], derived_fields=[])
    content = json.dumps({"measurements": [m(uid="s1", measure={"requests": 4})]}).encode()
    answer = sdk.usage.file_uploads.generate_upload_url(content_length=len(content), content_type="application/json",
                                                        file_name="usage.json")
    put = httpx.put(answer.url, content=content, headers=answer.headers, trust_env=False)
    assert put.status_code == 200, put.text
    live_app.backend.change_clock(advance_seconds=1)
    job = sdk.usage.file_uploads.jobs.retrieve(answer.job_id)
    assert (job.status, job.total_rows, job.processed_rows, job.failed_rows) == ("succeeded", 1, 1, 0)
    assert [j.id for j in sdk.usage.file_uploads.jobs.list()] == [answer.job_id]
    original = sdk.usage.file_uploads.jobs.get_original_download_url(answer.job_id)
    assert httpx.get(original.url, trust_env=False).content == content
    assert live_app.backend.usage.count(SDK_ORG) == 1
