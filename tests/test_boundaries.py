"""Every documented limit, just inside and just outside, through the API and the mock's
clock. Each expected value is written here as README.md (or m3ter's spec) states it, never
read from the code under test: tokens last 5 hours (``expires_in`` 18000), download URLs
15 minutes, download URLs only for jobs at most 24 hours old, pages of 10 by default and at
most 100 (200 where m3ter allows it), retries after 1, 2, 4 and 8 seconds and 5 attempts in
all, schedule periods and offsets, ``X-m3ter-timestamp`` in epoch milliseconds, and the
retention limits (10,000 Events, files of the newest 100 export jobs, 10,000 download URLs)."""

from __future__ import annotations

import threading

import pytest

from mockserver.backend.crud import Caller
from tests.conftest import basic, bearer_for
from tests.support.receiver import receiving

ORG = "org-bounds"
BASE = f"/organizations/{ORG}"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"
OPERATIONAL = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]}


def clock(client, **body) -> dict:
    response = client.post("/_mock/clock", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def freeze(client, at: str) -> None:
    assert clock(client, freeze=True, at=at)["frozen"] is True


def move_to(client, at: str) -> None:
    clock(client, at=at)


def settle(client) -> None:
    """Waits (through the admin API) until no delivery or export is due or running."""
    assert client.get("/_mock/deliveries", params={"wait": "true"}).status_code == 200


def post(client, auth, path, body):
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def aggregation(n=0):
    return {"name": f"Storage {n}", "code": f"storage_{n}", "rounding": "UP", "quantityPerUnit": 1,
            "unit": "GB", "calculation": "a"}


# -- tokens: 5 hours ------------------------------------------------------------------------

def test_a_token_lasts_five_hours_to_the_second(client):
    freeze(client, "2026-01-01T00:00:00Z")
    issued = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                         headers=basic("test-client", "test-secret"))
    assert issued.status_code == 200 and issued.json()["expires_in"] == 18000
    auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    for instant, status in [("2026-01-01T04:59:59Z", 200), ("2026-01-01T04:59:59.999Z", 200),
                            ("2026-01-01T05:00:00Z", 401), ("2026-01-01T05:00:01Z", 401)]:
        move_to(client, instant)
        response = client.get(f"{BASE}/compoundaggregations", headers=auth)
        assert response.status_code == status, instant
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_issued_within_a_second_lasts_at_least_five_hours(client):
    """Issued at .900 of a second: never refused before 5 hours have passed, always after
    5 hours and 1 second."""
    freeze(client, "2026-01-01T00:00:00.900Z")
    auth = bearer_for(client)
    move_to(client, "2026-01-01T05:00:00.899Z")
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).status_code == 200
    move_to(client, "2026-01-01T05:00:01.900Z")
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).status_code == 401


def test_a_token_issued_later_lasts_five_hours_from_then(client):
    freeze(client, "2026-01-01T00:00:00Z")
    move_to(client, "2026-01-01T03:00:00Z")
    auth = bearer_for(client)
    move_to(client, "2026-01-01T07:59:59Z")
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).status_code == 200
    move_to(client, "2026-01-01T08:00:00Z")
    assert client.get(f"{BASE}/compoundaggregations", headers=auth).status_code == 401


# -- download URLs: 15 minutes; jobs: 24 hours ----------------------------------------------

def finished_job(client, auth) -> str:
    job_id = post(client, auth, "dataexports/adhoc", OPERATIONAL)["jobId"]
    settle(client)
    assert client.get(f"{BASE}/dataexports/jobs/{job_id}", headers=auth).json()["status"] == "SUCCEEDED"
    return job_id


def download_url(client, auth, job_id):
    return client.get(f"{BASE}/dataexports/jobs/{job_id}/getdownloadurl", headers=auth)


def test_a_download_url_works_for_15_minutes_after_it_was_issued(client):
    freeze(client, "2026-01-01T00:00:00Z")
    auth = bearer_for(client)
    job_id = finished_job(client, auth)
    move_to(client, "2026-01-01T01:00:00Z")  # counted from the URL, not from the job
    issued = download_url(client, auth, job_id).json()
    assert issued["expirationTime"] == "2026-01-01T01:15:00.000Z"
    path = "/" + issued["url"].split("/", 3)[3]
    for instant, status in [("2026-01-01T01:14:59Z", 200), ("2026-01-01T01:14:59.999Z", 200),
                            ("2026-01-01T01:15:00Z", 403), ("2026-01-01T01:15:01Z", 403)]:
        move_to(client, instant)
        assert client.get(path).status_code == status, instant


@pytest.mark.parametrize(("instant", "status"), [
    ("2026-01-01T23:59:59Z", 200),
    ("2026-01-02T00:00:00Z", 200),  # exactly 24 hours old is not "more than 24 hours old"
    ("2026-01-02T00:00:00.001Z", 400),
    ("2026-01-02T00:00:01Z", 400),
])
def test_download_urls_are_given_for_jobs_up_to_24_hours_old(client, instant, status):
    freeze(client, "2026-01-01T00:00:00Z")
    auth = bearer_for(client)
    job_id = finished_job(client, auth)
    move_to(client, instant)
    response = download_url(client, bearer_for(client), job_id)  # a fresh token: the first has expired
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["message"].startswith("jobId: ") and "24 hours" in response.json()["message"]


# -- page sizes: 10 by default, at most 100 or 200 ------------------------------------------

def make_aggregation(client, auth, n):
    post(client, auth, "compoundaggregations", aggregation(n))


def make_destination(client, auth, n):
    post(client, auth, "dataexports/destinations", {"bucketName": f"bucket-{n}", "iamRoleArn": ROLE})


def make_schedule(client, auth, n):
    post(client, auth, "dataexports/schedules", {"sourceType": "USAGE", "timePeriod": "TODAY"})


def make_job(client, auth, n):
    post(client, auth, "dataexports/adhoc", OPERATIONAL)


def make_event(client, auth, n):
    response = client.post("/_mock/events", json={"orgId": ORG, "eventName": "configuration.commitment.updated",
                                                   "newDto": {"id": f"c{n}"}})
    assert response.status_code == 200


def make_notification(client, auth, n):
    post(client, auth, "notifications/configurations", {"name": f"n{n}", "code": f"n{n}", "description": "d",
                                                        "eventName": "configuration.commitment.updated"})


def make_webhook(client, auth, n):
    post(client, auth, "integrationdestinations/webhooks", {
        "name": f"h{n}", "description": "d", "url": f"http://127.0.0.1:9/h{n}",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "k", "secret": "s"}})


def make_config(client, auth, n):
    post(client, auth, "integrationconfigs", {"entityType": "Account", "destination": "Slack", "name": f"c{n}"})


# (path, how to make one, the largest page m3ter's spec allows)
LISTS = {
    "compoundaggregations": (make_aggregation, 100),
    "dataexports/destinations": (make_destination, 200),
    "dataexports/schedules": (make_schedule, 100),
    "dataexports/jobs": (make_job, 100),
    "events": (make_event, 100),
    "notifications/configurations": (make_notification, 100),
    "integrationdestinations/webhooks": (make_webhook, 200),
    "integrationconfigs": (make_config, 200),
}


@pytest.mark.parametrize("path", list(LISTS))
def test_the_default_page_is_10(client, auth, path):
    make, _ = LISTS[path]
    for n in range(11):
        make(client, auth, n)
    settle(client)
    first = client.get(f"{BASE}/{path}", headers=auth).json()
    assert len(first["data"]) == 10 and first["nextToken"]
    second = client.get(f"{BASE}/{path}", params={"nextToken": first["nextToken"]}, headers=auth).json()
    assert len(second["data"]) == 1 and "nextToken" not in second


@pytest.mark.parametrize("path", list(LISTS))
def test_page_size_bounds(client, auth, path):
    make, largest = LISTS[path]
    for n in range(2):
        make(client, auth, n)
    settle(client)
    for size in (1, largest):
        response = client.get(f"{BASE}/{path}", params={"pageSize": size}, headers=auth)
        assert response.status_code == 200, (size, response.text)
    assert len(client.get(f"{BASE}/{path}", params={"pageSize": 1}, headers=auth).json()["data"]) == 1
    for size in (0, largest + 1):
        response = client.get(f"{BASE}/{path}", params={"pageSize": size}, headers=auth)
        assert response.status_code == 400 and response.json()["message"].startswith("pageSize"), size


@pytest.mark.parametrize(("path", "largest"), [("compoundaggregations", 100), ("dataexports/destinations", 200)])
def test_the_largest_page_is_served_whole(app, client, auth, path, largest):
    make, _ = LISTS[path]
    caller = Caller(ORG, "test-client")
    service = app.backend.compound_aggregations if path == "compoundaggregations" else app.backend.export_destinations
    for n in range(largest + 1):
        body = aggregation(n) if path == "compoundaggregations" else {"bucketName": f"bucket-{n}", "iamRoleArn": ROLE}
        service.create(caller, body)
    page = client.get(f"{BASE}/{path}", params={"pageSize": largest}, headers=auth).json()
    assert len(page["data"]) == largest and page["nextToken"]
    rest = client.get(f"{BASE}/{path}", params={"pageSize": largest, "nextToken": page["nextToken"]},
                      headers=auth).json()
    assert len(rest["data"]) == 1 and "nextToken" not in rest


# -- deliveries: retried after 1, 2, 4 and 8 seconds, 5 attempts, timestamps in ms ----------

def wire(client, auth, url):
    rule = post(client, auth, "notifications/configurations", {
        "name": "n", "code": "n", "description": "d", "alwaysFireEvent": True,
        "eventName": "configuration.compoundaggregation.created"})
    hook = post(client, auth, "integrationdestinations/webhooks", {
        "name": "h", "description": "d", "url": url,
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "bounds-key", "secret": "bounds-webhook-secret"}})
    post(client, auth, "integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                              "destination": "Webhook", "destinationId": hook["id"]})


def attempts(client):
    return client.get("/_mock/deliveries", params={"orgId": ORG, "wait": "true"}).json()["data"]


def test_retries_come_after_1_2_4_and_8_seconds_and_stop_after_5_attempts(client):
    freeze(client, "2026-01-01T00:00:00Z")
    auth = bearer_for(client)
    with receiving([500] * 10) as receiver:
        wire(client, auth, receiver.url)
        post(client, auth, "compoundaggregations", aggregation())
        assert len(attempts(client)) == 1
        # each retry is not made a millisecond before it is due, and is made when it is due
        for count, (before, due) in enumerate([
            ("2026-01-01T00:00:00.999Z", "2026-01-01T00:00:01Z"),
            ("2026-01-01T00:00:02.999Z", "2026-01-01T00:00:03Z"),
            ("2026-01-01T00:00:06.999Z", "2026-01-01T00:00:07Z"),
            ("2026-01-01T00:00:14.999Z", "2026-01-01T00:00:15Z"),
        ], start=1):
            move_to(client, before)
            assert len(attempts(client)) == count, before
            move_to(client, due)
            assert len(attempts(client)) == count + 1, due
        move_to(client, "2026-01-02T00:00:00Z")
        seen = attempts(client)
        timestamps = [r.headers["X-m3ter-timestamp"] for r in receiver.requests]
    assert [a["attempt"] for a in seen] == [1, 2, 3, 4, 5]
    assert [a["startedAt"] for a in seen] == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z",
                                              "2026-01-01T00:00:03.000Z", "2026-01-01T00:00:07.000Z",
                                              "2026-01-01T00:00:15.000Z"]
    assert [a["nextAttemptAt"] for a in seen] == ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:03.000Z",
                                                  "2026-01-01T00:00:07.000Z", "2026-01-01T00:00:15.000Z", None]
    assert [a["outcome"] for a in seen] == ["retrying"] * 4 + ["failed"]
    # 2026-01-01T00:00:00Z is 1767225600 seconds after the epoch
    assert timestamps == ["1767225600000", "1767225601000", "1767225603000", "1767225607000", "1767225615000"]
    failures = client.get(f"{BASE}/events", params={"eventName": "integration.perform.error"},
                          headers=bearer_for(client)).json()
    assert [e["m3terEvent"]["eventData"]["newDto"]["attempts"] for e in failures["data"]] == [5]


def test_the_signature_timestamp_is_in_epoch_milliseconds(client):
    freeze(client, "2026-01-01T00:00:00.250Z")
    auth = bearer_for(client)
    with receiving() as receiver:
        wire(client, auth, receiver.url)
        post(client, auth, "compoundaggregations", aggregation())
        settle(client)
        assert receiver.wait_for(1)
    assert receiver.requests[0].headers["X-m3ter-timestamp"] == "1767225600250"


# -- export schedules: periods and offsets ------------------------------------------------------

def schedule_body(kind, period, offset=None):
    body = {**OPERATIONAL, "name": "s", "code": "s", "scheduleType": kind, "period": period}
    if offset is not None:
        body["offset"] = offset
    return body


# An offset left out is 0 (minute 0, hour 0); m3ter's spec gives ``offset`` a minimum of 1,
# so an explicit 0 is refused like any value below it.
@pytest.mark.parametrize(("kind", "period", "offset"), [
    ("MINUTE", 15, None), ("MINUTE", 20, None), ("MINUTE", 30, None), ("MINUTE", 60, None),
    ("HOUR", 1, None), ("HOUR", 1, 1), ("HOUR", 1, 59), ("HOUR", 23, None), ("HOUR", 24, None), ("HOUR", 48, 30),
    ("HOUR", 72, 59), ("DAY", 1, None), ("DAY", 1, 1), ("DAY", 2, 12), ("DAY", 3, 23),
])
def test_schedule_periods_and_offsets_inside_the_bounds(client, auth, kind, period, offset):
    created = client.post(f"{BASE}/dataexports/schedules", json=schedule_body(kind, period, offset), headers=auth)
    assert created.status_code == 200, created.text
    assert created.json()["scheduleType"] == kind and created.json()["cronExpression"]


@pytest.mark.parametrize(("kind", "period", "offset", "field"), [
    ("MINUTE", 10, None, "period"), ("MINUTE", 14, None, "period"), ("MINUTE", 25, None, "period"),
    ("MINUTE", 45, None, "period"), ("MINUTE", 61, None, "period"), ("MINUTE", 15, 1, "offset"),
    ("MINUTE", 15, 5, "offset"),
    ("HOUR", 0, None, "period"), ("HOUR", 25, None, "period"), ("HOUR", 47, None, "period"),
    ("HOUR", 96, None, "period"), ("HOUR", 1, 60, "offset"), ("HOUR", 1, 0, "offset"), ("HOUR", 1, -1, "offset"),
    ("DAY", 0, None, "period"), ("DAY", 4, None, "period"), ("DAY", 1, 24, "offset"), ("DAY", 1, 0, "offset"),
])
def test_schedule_periods_and_offsets_outside_the_bounds(client, auth, kind, period, offset, field):
    refused = client.post(f"{BASE}/dataexports/schedules", json=schedule_body(kind, period, offset), headers=auth)
    assert refused.status_code == 400 and refused.json()["message"].startswith(field), refused.text
    assert client.get(f"{BASE}/dataexports/schedules", headers=auth).json()["data"] == []


@pytest.mark.parametrize(("kind", "period", "offset", "cron"), [
    ("MINUTE", 15, None, "*/15 * * * *"), ("HOUR", 2, 15, "15 */2 * * *"), ("DAY", 1, 2, "0 2 * * *"),
])
def test_the_readme_cron_examples(client, auth, kind, period, offset, cron):
    assert post(client, auth, "dataexports/schedules", schedule_body(kind, period, offset))["cronExpression"] == cron


@pytest.mark.parametrize(("kind", "period", "offset", "until", "runs"), [
    ("MINUTE", 15, None, "2026-01-01T01:00:00Z",
     ["2026-01-01T00:15:00.000Z", "2026-01-01T00:30:00.000Z", "2026-01-01T00:45:00.000Z", "2026-01-01T01:00:00.000Z"]),
    ("MINUTE", 60, None, "2026-01-01T03:00:00Z",
     ["2026-01-01T01:00:00.000Z", "2026-01-01T02:00:00.000Z", "2026-01-01T03:00:00.000Z"]),
    ("HOUR", 24, 5, "2026-01-03T00:10:00Z", ["2026-01-01T00:05:00.000Z", "2026-01-02T00:05:00.000Z",
                                            "2026-01-03T00:05:00.000Z"]),
])
def test_schedules_run_at_their_period(client, kind, period, offset, until, runs):
    freeze(client, "2026-01-01T00:00:00Z")
    auth = bearer_for(client)
    made = post(client, auth, "dataexports/schedules", schedule_body(kind, period, offset))
    move_to(client, until)
    jobs = client.get(f"{BASE}/dataexports/jobs", params={"scheduleId": made["id"], "pageSize": 100},
                      headers=bearer_for(client)).json()["data"]
    assert [j["dateCreated"] for j in jobs] == runs


# -- retention defaults ---------------------------------------------------------------------

def test_an_organization_keeps_its_newest_10000_events(app, client, auth):
    first = app.backend.inject_event(ORG, "configuration.commitment.updated", new={"id": "c0"})
    second = app.backend.inject_event(ORG, "configuration.commitment.updated", new={"id": "c1"})
    for n in range(2, 10_000):
        app.backend.inject_event(ORG, "configuration.commitment.updated", new={"id": f"c{n}"})
    assert client.get(f"{BASE}/events/{first['id']}", headers=auth).status_code == 200  # 10,000 kept
    app.backend.inject_event(ORG, "configuration.commitment.updated", new={"id": "c10000"})
    assert client.get(f"{BASE}/events/{first['id']}", headers=auth).status_code == 404
    assert client.get(f"{BASE}/events/{second['id']}", headers=auth).status_code == 200


def test_the_files_of_the_newest_100_jobs_are_kept(app, client, auth):
    freeze(client, "2026-01-01T00:00:00Z")
    caller = Caller(ORG, "test-client")
    jobs = [app.backend.exports.create_adhoc(caller, OPERATIONAL)["jobId"] for _ in range(100)]
    settle(client)
    assert download_url(client, auth, jobs[0]).status_code == 200  # 100 kept
    jobs.append(app.backend.exports.create_adhoc(caller, OPERATIONAL)["jobId"])
    settle(client)
    dropped = download_url(client, auth, jobs[0])
    assert dropped.status_code == 400 and "no longer kept" in dropped.json()["message"]
    assert "newest 100 export jobs" in dropped.json()["message"]
    assert download_url(client, auth, jobs[1]).status_code == 200


def test_at_most_10000_download_urls_are_kept(app, client, auth):
    freeze(client, "2026-01-01T00:00:00Z")
    job_id = finished_job(client, auth)
    caller = Caller(ORG, "test-client")
    urls = ["/" + app.backend.exports.download_url(caller, job_id, "http://testserver/")["url"].split("/", 3)[3]
            for _ in range(10_000)]
    assert client.get(urls[0]).status_code == 200  # 10,000 kept
    urls.append("/" + download_url(client, auth, job_id).json()["url"].split("/", 3)[3])
    assert [client.get(u).status_code for u in (urls[0], urls[1], urls[-1])] == [403, 200, 200]


# -- at most 1,000 deliveries wait per destination -------------------------------------------

def test_at_most_1000_deliveries_wait_per_destination(app, client, auth, monkeypatch):
    release = threading.Event()

    def receiver_that_hangs(url, headers, body):  # the delivery worker's harness seam
        release.wait(30)
        return 200

    monkeypatch.setattr(app.backend.deliveries, "local_answer", receiver_that_hangs)
    wire(client, auth, "http://127.0.0.1:9/hook")
    try:
        # the first is in flight (and hangs), 999 more wait behind it: 1,000 in all
        for n in range(1000):
            app.backend.inject_event(ORG, "configuration.compoundaggregation.created", new={"id": f"a{n}"})
        assert app.backend.deliveries.attempts(ORG) == []  # nothing dropped (nor finished) yet
        app.backend.inject_event(ORG, "configuration.compoundaggregation.created", new={"id": "a1000"})
        dropped = app.backend.deliveries.attempts(ORG)
        assert [(a["outcome"], a["error"]) for a in dropped] == [
            ("failed", "dropped: 1000 deliveries to this destination are already waiting")]
    finally:
        release.set()
    settle(client)
    outcomes = [a["outcome"] for a in attempts_all(client)]
    assert outcomes.count("delivered") == 1000 and outcomes.count("failed") == 1


def attempts_all(client):
    seen, token = [], None
    while True:
        page = client.get("/_mock/deliveries", params={"orgId": ORG, "pageSize": 1000,
                                                       **({"nextToken": token} if token else {})}).json()
        seen += page["data"]
        token = page.get("nextToken")
        if not token:
            return seen
