"""Usage exports write the ingested usage of their period: raw measurements or aggregated
values, for ad-hoc jobs (startDate/endDate) and for schedules on the mock clock (timePeriod
taken at the run). No test sleeps."""

from __future__ import annotations

import json

ORG = "org-usage-exports"
BASE = f"/organizations/{ORG}"


def post(client, auth, path, body, status=200):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


def wait(client):
    client.get("/_mock/deliveries?wait=true")  # waits for every worker, exports included


def export(client, auth, body):
    job_id = post(client, auth, "dataexports/adhoc", body)["jobId"]
    wait(client)
    return downloaded(client, auth, job_id)


def downloaded(client, auth, job_id):
    job = client.get(f"{BASE}/dataexports/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "SUCCEEDED", job
    url = client.get(f"{BASE}/dataexports/jobs/{job_id}/getdownloadurl", headers=auth).json()["url"]
    return client.get("/" + url.split("/", 3)[3]).text


def setup_usage(client, auth):
    meter = post(client, auth, "meters", {"name": "Disk", "code": "disk", "derivedFields": [], "dataFields": [
        {"category": "MEASURE", "code": "gb", "name": "GB"}, {"category": "WHERE", "code": "region", "name": "R"}]})
    account = post(client, auth, "accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
    post(client, auth, "measurements", {"measurements": [
        {"uid": "m1", "meter": "disk", "account": "acme", "ts": "2026-01-01T09:00:00Z", "measure": {"gb": 1.5},
         "where": {"region": "eu"}},
        {"meter": "disk", "account": "acme", "ts": "2026-01-01T23:59:59.999Z", "measure": {"gb": 2},
         "where": {"region": "us"}},
        {"meter": "disk", "account": "acme", "ts": "2026-01-02T00:00:00Z", "measure": {"gb": 4}},
    ]})
    return meter, account


def test_an_adhoc_usage_export_writes_the_raw_measurements_of_its_period(client, auth):
    meter, account = setup_usage(client, auth)
    text = export(client, auth, {"sourceType": "USAGE", "startDate": "2026-01-01T00:00:00Z",
                                 "endDate": "2026-01-02T00:00:00Z"})
    m, a = meter["id"], account["id"]
    assert text.splitlines() == [
        "ts,accountId,accountCode,meterId,meterCode,gb,region,uid",
        f"2026-01-01T09:00:00.000Z,{a},acme,{m},disk,1.5,eu,m1",
        f"2026-01-01T23:59:59.999Z,{a},acme,{m},disk,2,us,",
    ]


def test_an_adhoc_aggregated_jsonl_export_groups_like_the_usage_query(client, auth):
    meter, account = setup_usage(client, auth)
    text = export(client, auth, {
        "sourceType": "USAGE", "exportFileFormat": "JSONL", "endDate": "2026-01-03T00:00:00Z",
        "startDate": "2026-01-01T00:00:00Z", "meterIds": [meter["id"]],
        "aggregations": [{"meterId": meter["id"], "fieldCode": "gb", "fieldType": "MEASURE", "function": "SUM"}],
        "groups": [{"groupType": "TIME", "frequency": "DAY"}, {"groupType": "ACCOUNT"}]})
    assert [json.loads(line) for line in text.splitlines()] == [
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z",
         "timeGroup": "2026-01-01T00:00:00.000Z", "accountId": account["id"], "gb_sum": 3.5},
        {"startDate": "2026-01-02T00:00:00.000Z", "endDate": "2026-01-03T00:00:00.000Z",
         "timeGroup": "2026-01-02T00:00:00.000Z", "accountId": account["id"], "gb_sum": 4},
    ]


def test_without_start_date_everything_before_the_end_and_filters_apply(client, auth):
    meter, _ = setup_usage(client, auth)
    text = export(client, auth, {"sourceType": "USAGE", "endDate": "2026-02-01T00:00:00Z",
                                 "dimensionFilters": [{"meterId": meter["id"], "fieldCode": "region",
                                                       "values": ["us"]}]})
    lines = text.splitlines()
    assert lines[0] == "ts,accountId,accountCode,meterId,meterCode,region,gb"
    assert [line.split(",")[0] for line in lines[1:]] == ["2026-01-01T23:59:59.999Z"]


def test_meters_and_accounts_that_are_gone_select_nothing(client, auth):
    setup_usage(client, auth)
    text = export(client, auth, {"sourceType": "USAGE", "meterIds": ["no-such-meter"],
                                 "endDate": "2026-02-01T00:00:00Z"})
    assert text.splitlines() == ["ts,accountId,accountCode,meterId,meterCode"]


def test_an_adhoc_usage_export_that_could_never_run_is_a_400(client, auth):
    meter, _ = setup_usage(client, auth)
    backwards = post(client, auth, "dataexports/adhoc", {"sourceType": "USAGE", "startDate": "2026-01-02T00:00:00Z",
                                                         "endDate": "2026-01-01T00:00:00Z"}, status=400)
    assert backwards["message"] == "endDate: must be later than startDate"
    wrong = post(client, auth, "dataexports/adhoc", {"sourceType": "USAGE", "aggregations": [
        {"meterId": meter["id"], "fieldCode": "region", "fieldType": "DIMENSION", "function": "MEAN"}]}, status=400)
    assert wrong["message"].startswith("aggregations[0].function: MEAN does not apply to a DIMENSION field")
    assert client.get(f"{BASE}/dataexports/jobs", headers=auth).json()["data"] == []


def test_a_usage_schedule_exports_its_time_period_at_each_run(client, auth):
    assert client.post("/_mock/clock", json={"freeze": True, "at": "2026-01-01T00:30:00Z"}).status_code == 200
    setup_usage(client, auth)
    schedule = post(client, auth, "dataexports/schedules", {
        "sourceType": "USAGE", "name": "Daily usage", "code": "daily_usage", "timePeriod": "YESTERDAY",
        "scheduleType": "DAY", "period": 1, "offset": 2, "exportFileFormat": "JSONL",
        "aggregations": [{"meterId": client.get(f"{BASE}/meters", headers=auth).json()["data"][0]["id"],
                          "fieldCode": "gb", "fieldType": "MEASURE", "function": "COUNT"}]})
    runs = []
    for seconds in (2 * 3600, 24 * 3600):  # to 1 January 02:30, then 2 January 02:30
        assert client.post("/_mock/clock", json={"advanceSeconds": seconds}).status_code == 200
        wait(client)
        runs = client.get(f"{BASE}/dataexports/jobs?scheduleId={schedule['id']}", headers=auth).json()["data"]
        files = downloaded(client, auth, runs[-1]["id"])
        if len(runs) == 1:  # the 1 January run exports 31 December: nothing
            assert files == ""
    assert [r["dateCreated"] for r in runs] == ["2026-01-01T02:00:00.000Z", "2026-01-02T02:00:00.000Z"]
    # The 2 January run exports 1 January: two measurements.
    assert [json.loads(line) for line in files.splitlines()] == [
        {"startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-01-02T00:00:00.000Z", "gb_count": 2}]


def test_a_schedule_whose_aggregation_cannot_apply_fails_its_runs_saying_why(client, auth):
    assert client.post("/_mock/clock", json={"freeze": True, "at": "2026-01-01T00:30:00Z"}).status_code == 200
    meter, _ = setup_usage(client, auth)
    schedule = post(client, auth, "dataexports/schedules", {
        "sourceType": "USAGE", "name": "Bad", "code": "bad", "timePeriod": "TODAY", "scheduleType": "HOUR",
        "period": 1, "aggregations": [{"meterId": meter["id"], "fieldCode": "region", "fieldType": "DIMENSION",
                                       "function": "SUM"}]})
    assert client.post("/_mock/clock", json={"advanceSeconds": 3600}).status_code == 200
    wait(client)
    run = client.get(f"{BASE}/dataexports/jobs?scheduleId={schedule['id']}", headers=auth).json()["data"][0]
    assert run["status"] == "FAILED"
    details = client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{run['id']}").json()
    assert details["error"] == ("aggregations[0].function: SUM does not apply to a DIMENSION field "
                                "(use COUNT, UNIQUE)")
