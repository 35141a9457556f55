"""Data exports that run: schedules on the frozen clock, ad-hoc jobs, export files,
download URLs, destinations' object keys and failure Events. No test sleeps."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.backend.crud import Caller
from tests.conftest import bearer_for, make_settings
from tests.support.receiver import receiving

ORG = "org-exports"
BASE = f"/organizations/{ORG}"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"
START = "2026-01-01T00:00:00Z"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def freeze(client, at=START):
    assert client.post("/_mock/clock", json={"freeze": True, "at": at}).status_code == 200


def advance(client, seconds):
    assert client.post("/_mock/clock", json={"advanceSeconds": seconds}).status_code == 200


def schedule(client, auth, kind, period, offset=None, **extra):
    body = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"], "scheduleType": kind,
            "period": period, "name": f"{kind} export", "code": f"{kind.lower()}_{period}_{offset}", **extra}
    if offset is not None:
        body["offset"] = offset
    return post(client, auth, "dataexports/schedules", body)


def jobs(client, auth, query=""):
    found, token = [], None
    while True:
        suffix = f"&nextToken={token}" if token else ""
        body = client.get(f"{BASE}/dataexports/jobs?pageSize=100&{query}{suffix}", headers=auth).json()
        found += body["data"]
        token = body.get("nextToken")
        if not token:
            return found


def aggregations(client, auth, n):
    return [post(client, auth, "compoundaggregations", {
        "name": f"Agg {i}, \"quoted\"", "code": f"agg_{i}", "rounding": "UP", "quantityPerUnit": 1.5, "unit": "GB",
        "calculation": "a * 2", "customFields": {"tier": "gold", "rank": i}}) for i in range(n)]


def expected_times(step: timedelta, first: datetime, end: datetime) -> list[str]:
    times, at = [], first
    while at <= end:
        times.append(at.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        at += step
    return times


def test_schedules_run_on_the_clock_exactly_once_in_order(client, auth):
    freeze(client)
    daily = schedule(client, auth, "DAY", 1, 2)
    two_hourly = schedule(client, auth, "HOUR", 2, 15)
    quarter_hourly = schedule(client, auth, "MINUTE", 15)
    end = T0 + timedelta(days=3)
    advance(client, 3 * 24 * 3600)
    every = jobs(client, auth)
    assert len(every) == 3 + 36 + 288
    created = [j["dateCreated"] for j in every]
    assert created == sorted(created)  # in order
    by_schedule = {s["id"]: [j["dateCreated"] for j in every if j["scheduleId"] == s["id"]]
                   for s in (daily, two_hourly, quarter_hourly)}
    assert by_schedule[daily["id"]] == expected_times(timedelta(days=1), T0 + timedelta(hours=2), end)
    assert by_schedule[two_hourly["id"]] == expected_times(timedelta(hours=2), T0 + timedelta(minutes=15), end)
    assert by_schedule[quarter_hourly["id"]] == expected_times(timedelta(minutes=15), T0 + timedelta(minutes=15), end)
    assert {j["status"] for j in every} == {"SUCCEEDED"}
    assert all(j["sourceType"] == "OPERATIONAL" for j in every)
    # advancing again runs only what is newly due
    advance(client, 3600)
    assert len(jobs(client, auth)) == 3 + 36 + 288 + 5  # 72:15, 72:30, 72:45, 73:00 and 72:15


def test_delete_stops_runs_and_update_reschedules(client, auth):
    freeze(client)
    stopped = schedule(client, auth, "HOUR", 1)
    moved = schedule(client, auth, "DAY", 1, 5)
    advance(client, 3600)  # 01:00 - one hourly run
    client.delete(f"{BASE}/dataexports/schedules/{stopped['id']}", headers=auth)
    client.put(f"{BASE}/dataexports/schedules/{moved['id']}", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"], "scheduleType": "DAY", "period": 1,
        "offset": 3, "version": moved["version"], "name": "moved", "code": "moved"})
    advance(client, 24 * 3600)
    assert [j["dateCreated"] for j in jobs(client, auth, f"scheduleId={stopped['id']}")] == ["2026-01-01T01:00:00.000Z"]
    assert [j["dateCreated"] for j in jobs(client, auth, f"scheduleId={moved['id']}")] == ["2026-01-01T03:00:00.000Z"]


def run_adhoc(client, auth, body):
    job_id = post(client, auth, "dataexports/adhoc", body)["jobId"]
    client.get("/_mock/deliveries?wait=true")  # waits for every worker, exports included
    job = client.get(f"{BASE}/dataexports/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "SUCCEEDED", job
    return job


def download(client, auth, job_id):
    issued = client.get(f"{BASE}/dataexports/jobs/{job_id}/getdownloadurl", headers=auth)
    assert issued.status_code == 200, issued.text
    url = issued.json()["url"]
    path = "/" + url.split("/", 3)[3]
    return path, client.get(path)  # no bearer token: like a pre-signed URL


def test_operational_csv_holds_exactly_the_orgs_aggregations(client, auth):
    made = aggregations(client, auth, 3)
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})
    _, response = download(client, auth, job["id"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [m["id"] for m in made]
    assert [r["name"] for r in rows] == [m["name"] for m in made]
    assert json.loads(rows[1]["customFields"]) == {"tier": "gold", "rank": 1}
    assert rows[0]["quantityPerUnit"] == "1.5"


def test_operational_jsonl_holds_exactly_the_orgs_aggregations(client, auth):
    made = aggregations(client, auth, 2)
    client.post("/organizations/someone-else/compoundaggregations", headers=auth, json={
        "name": "not ours", "rounding": "UP", "quantityPerUnit": 1, "unit": "u", "calculation": "a"})
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"],
                                   "exportFileFormat": "JSONL"})
    _, response = download(client, auth, job["id"])
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == made


def test_several_types_come_as_a_zip_and_unstored_types_are_header_only(client, auth):
    aggregations(client, auth, 1)
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL",
                                   "operationalDataTypes": ["COMPOUND_AGGREGATIONS", "ACCOUNTS", "CHARGES"]})
    _, response = download(client, auth, job["id"])
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = sorted(archive.namelist())
    assert names == sorted(f"{job['id']}_{t}.csv" for t in ("compoundaggregation", "account", "charge"))
    accounts = archive.read(f"{job['id']}_account.csv").decode().splitlines()
    assert len(accounts) == 1 and "id" in accounts[0].split(",")  # header only: never invented rows
    assert len(archive.read(f"{job['id']}_compoundaggregation.csv").decode().splitlines()) == 2


def test_every_stored_operational_type_exports_its_entities(client, auth):
    product = post(client, auth, "products", {"name": "Storage", "code": "storage"})
    meter = post(client, auth, "meters", {"name": "Disk", "code": "disk", "productId": product["id"],
                                         "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}],
                                         "derivedFields": []})
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS", "METERS"],
                                   "exportFileFormat": "JSONL"})
    _, response = download(client, auth, job["id"])
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    products = [json.loads(line) for line in archive.read(f"{job['id']}_product.jsonl").decode().splitlines()]
    meters = [json.loads(line) for line in archive.read(f"{job['id']}_meter.jsonl").decode().splitlines()]
    assert products == [product] and meters == [meter]


def test_usage_export_without_usage_data_is_header_only(client, auth):
    job = run_adhoc(client, auth, {"sourceType": "USAGE", "meterIds": ["m1"], "aggregations": [
        {"meterId": "m1", "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}],
        "groups": [{"groupType": "ACCOUNT"}]})
    assert job["sourceType"] == "USAGE"
    _, response = download(client, auth, job["id"])
    assert response.text.splitlines() == ["startDate,endDate,accountId,gb_sum"]


def test_download_url_expires_after_15_minutes(client, auth):
    freeze(client, "2026-03-01T12:00:00Z")
    aggregations(client, auth, 1)
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]})
    issued = client.get(f"{BASE}/dataexports/jobs/{job['id']}/getdownloadurl", headers=auth).json()
    assert issued["expirationTime"] == "2026-03-01T12:15:00.000Z"
    path, first = download(client, auth, job["id"])
    assert first.status_code == 200
    advance(client, 15 * 60 - 1)
    assert client.get(path).status_code == 200
    advance(client, 1)
    assert client.get(path).status_code == 403
    assert client.get("/_mock/downloads/guessed-token").status_code == 403


def test_no_download_url_for_a_job_older_than_24_hours(client, auth):
    freeze(client)
    job = run_adhoc(client, auth, {"sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"]})
    advance(client, 24 * 3600 + 1)
    response = client.get(f"{BASE}/dataexports/jobs/{job['id']}/getdownloadurl", headers=auth)
    assert response.status_code == 400 and "24 hours" in response.json()["message"]
    assert client.get(f"{BASE}/dataexports/jobs/nope/getdownloadurl", headers=auth).status_code == 404


def test_job_filters(client, auth):
    freeze(client)
    hourly = schedule(client, auth, "HOUR", 1)
    advance(client, 5 * 3600)
    all_jobs = jobs(client, auth)
    assert len(all_jobs) == 5
    window = jobs(client, auth, "dateCreatedStart=2026-01-01T02:00:00Z&dateCreatedEnd=2026-01-01T04:00:00Z")
    assert [j["dateCreated"] for j in window] == ["2026-01-01T02:00:00.000Z", "2026-01-01T03:00:00.000Z"]
    assert len(jobs(client, auth, f"scheduleId={hourly['id']}&status=SUCCEEDED")) == 5
    assert jobs(client, auth, "status=FAILED") == []
    picked = [all_jobs[3]["id"], all_jobs[0]["id"]]
    assert [j["id"] for j in jobs(client, auth, f"ids={','.join(picked)}")] == [all_jobs[0]["id"], all_jobs[3]["id"]]
    bad = client.get(f"{BASE}/dataexports/jobs?dateCreatedStart=yesterday", headers=auth)
    assert bad.status_code == 400 and "dateCreatedStart" in bad.json()["message"]


def test_failing_run_records_an_event_that_notifies(client, auth):
    freeze(client)
    with receiving() as receiver:
        rule = post(client, auth, "notifications/configurations", {
            "name": "export failed", "code": "export_failed", "description": "d",
            "eventName": "dataexport.job.failure", "calculation": "new.error != null"})
        hook = post(client, auth, "integrationdestinations/webhooks", {
            "name": "h", "description": "d", "url": receiver.url,
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "export-test-secret"}})
        post(client, auth, "integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                                 "destination": "Webhook", "destinationId": hook["id"]})
        daily = schedule(client, auth, "DAY", 1, 1)
        assert client.post(f"/_mock/organizations/{ORG}/dataexports/faults",
                           json={"scheduleId": daily["id"], "message": "bucket is read-only"}).status_code == 200
        advance(client, 2 * 24 * 3600)
        assert receiver.wait_for(1)
    runs = jobs(client, auth, f"scheduleId={daily['id']}")
    assert [j["status"] for j in runs] == ["FAILED", "SUCCEEDED"]  # the fault hit one run only
    failures = client.get(f"{BASE}/events?eventType=DataExportJobFailure", headers=auth).json()["data"]
    assert len(failures) == 1 and failures[0]["eventName"] == "dataexport.job.failure"
    detail = failures[0]["m3terEvent"]["eventData"]["newDto"]
    assert detail["jobId"] == runs[0]["id"] and detail["error"] == "bucket is read-only"
    delivered = json.loads(receiver.requests[0].body)
    assert delivered["m3terEvent"]["eventData"]["newDto"]["jobId"] == runs[0]["id"]
    assert client.get(f"{BASE}/dataexports/jobs/{runs[0]['id']}/getdownloadurl", headers=auth).status_code == 400


def test_run_whose_destination_is_gone_fails(app, client, auth):
    destination = post(client, auth, "dataexports/destinations", {"bucketName": "gone-bucket", "iamRoleArn": ROLE})
    caller = Caller(ORG, "test-client")
    # A run starts by taking the store's lock, as every operation does; while this test
    # holds it, the job is queued and its destination deleted (public calls only), so the
    # run begins with the destination gone.
    with app.backend.store.lock:
        job_id = app.backend.exports.create_adhoc(caller, {
            "sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"],
            "destinationIds": [destination["id"]]})["jobId"]
        assert app.backend.exports.get_job(caller, job_id)["status"] == "PENDING"
        app.backend.export_destinations.delete(caller, destination["id"])
    assert client.get("/_mock/deliveries", params={"wait": "true"}).status_code == 200  # the run has ended
    job = client.get(f"{BASE}/dataexports/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "FAILED"
    failure = client.get(f"{BASE}/events?eventName=dataexport.job.failure", headers=auth).json()["data"][0]
    detail = failure["m3terEvent"]["eventData"]["newDto"]
    assert detail["jobId"] == job_id
    assert detail["error"] == f"export destination {destination['id']!r} no longer exists"


@pytest.mark.parametrize(("order", "layout"), [
    ("TIME_FIRST", "billing/orgId={org}/date=2026-01-01/hour=02/type=compoundaggregation/{job}_compoundaggregation.csv.gz"),
    ("TYPE_FIRST", "billing/orgId={org}/type=compoundaggregation/date=2026-01-01/hour=02/{job}_compoundaggregation.csv.gz"),
])
def test_export_dir_holds_files_at_their_object_keys(tmp_path, order, layout):
    app = create_app(make_settings(export_dir=str(tmp_path)))
    client = app.test_client()
    auth = bearer_for(client)
    freeze(client)
    destination = post(client, auth, "dataexports/destinations", {
        "bucketName": "acme-exports", "iamRoleArn": ROLE, "prefix": "billing", "partitionOrder": order})
    made = aggregations(client, auth, 2)
    daily = schedule(client, auth, "DAY", 1, 2, destinationIds=[destination["id"]])
    advance(client, 3 * 3600)
    job = jobs(client, auth, f"scheduleId={daily['id']}")[0]
    details = client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{job['id']}").json()
    key = layout.format(org=ORG, job=job["id"])
    assert details["objects"] == [{"destinationId": destination["id"], "bucket": "acme-exports", "key": key}]
    written = Path(tmp_path, "acme-exports", key)
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(written.read_bytes()).decode())))
    assert [r["id"] for r in rows] == [m["id"] for m in made]
    app.backend.reset()


def test_adhoc_needs_existing_destinations(client, auth):
    response = client.post(f"{BASE}/dataexports/adhoc", headers=auth, json={
        "sourceType": "OPERATIONAL", "operationalDataTypes": ["PRODUCTS"], "destinationIds": ["missing"]})
    assert response.status_code == 400 and "destinationIds" in response.json()["message"]
    assert jobs(client, auth) == []
