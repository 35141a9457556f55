"""Outbound work that mutation testing found unpinned (issue 9): webhook deliveries (what a
failed or dropped delivery records and reports, once; the request a receiver gets; what the
admin list of attempts says when no HTTP answer came: no address, a deadline passing while
connecting, sending or reading, a receiver that never accepts, resets or answers too much;
names with several addresses, the mock's own port on every address), notifications (the rule
and trigger they name, inactive and calculated rules, evaluating on an Event), webhooks and
integration configurations (URL checks, active, enabled, runs, the lookup by entity), export
destinations, schedules and jobs (defaults, failures logged and recorded, a long path in an
error, a symlink in place of a file, download windows, faults per schedule, a restore, job
list dates), download URL lifetimes as said, the request journal's body count and bound, a
fault body rule for another organization, and the background workers (failed items and
listeners logged, the lane bound, discards, work from before a clear).

Every expected value is written as the README or the spec states it, never read from the
code under test; time is the mock's clock, and the workers are waited for, never slept on."""

from __future__ import annotations

import base64
import csv
import errno
import io
import json
import logging
import shutil
import socket
import struct
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from mockserver.app import create_app
from mockserver.backend import deliveries as deliveries_module
from mockserver.backend import notifying
from mockserver.backend.crud import Caller
from mockserver.backend.worker import DueWorker, LaneWorker
from mockserver.domain.clock import Clock
from mockserver.domain.errors import MockError
from tests.conftest import bearer_for, make_settings
from tests.support.org_calls import AppCalls
from tests.support.tcp_server import tcp_server
from tests.support.receiver import receiving

ORG = "org-pinned-outbound"
CLIENT = "test-client"
ROLE = "arn:aws:iam::123456789012:role/m3ter-export"
NO_RESPONSE = "could not connect to the receiver, or it did not answer in time"
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


class Api(AppCalls):
    org = ORG
    webhook_secret = "pinned-outbound-secret"

    def rule(self, event_name: str = "configuration.compoundaggregation.created", code: str = "n") -> dict:
        return self.ok("post", "/notifications/configurations", {
            "name": code, "code": code, "description": "d", "eventName": event_name, "alwaysFireEvent": True})

    def link(self, rule: dict, hook: dict) -> dict:
        return self.ok("post", "/integrationconfigs", {"entityType": "Notification", "entityId": rule["id"],
                                                      "destination": "Webhook", "destinationId": hook["id"]})

    def wire(self, url: str) -> dict:
        """A rule on every compound aggregation created, linked to a webhook at ``url``."""
        return self.link(self.rule(), self.webhook(url))

    def fire(self, code: str = "storage") -> dict:
        return self.ok("post", "/compoundaggregations", {"name": code.title(), "code": code, "rounding": "UP",
                                                         "quantityPerUnit": 1, "unit": "GB", "calculation": "1"})

    def events(self, name: str) -> list[dict]:
        return self.ok("get", "/events", eventName=name)["data"]

    def run(self, config: dict) -> dict:
        return self.ok("get", f"/integrationconfigs/{config['id']}")


@pytest.fixture
def api(app, client, auth):
    app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    return Api(app, client, auth)


# -- the failure Event of a delivery ------------------------------------------------------------------

def test_the_failure_event_of_a_delivery_names_the_notification_its_link_and_the_answer(api):
    with receiving(statuses=[404]) as receiver:
        rule, hook = api.rule(), api.webhook(receiver.url)
        config = api.link(rule, hook)
        api.fire()
        api.attempts()
    [failure] = api.events("integration.perform.error")
    assert failure["m3terEvent"]["eventData"]["newDto"] == {
        "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"],
        "integrationConfigId": config["id"], "url": receiver.url, "error": "HTTP 404", "attempts": 1,
        "statusCode": 404}
    # the Event is about the configuration: its resource is the configuration
    assert [e["id"] for e in api.ok("get", "/events", resourceId=config["id"])["data"]] == [failure["id"]]


# -- no HTTP answer: what the admin list keeps, what tenants see -------------------------------------

def test_a_name_without_an_address_is_retried_and_the_attempt_says_so(api, monkeypatch):
    monkeypatch.setattr(api.backend.deliveries, "resolve", lambda host, port: [])
    config = api.wire("https://no-address.example.com/hook")
    api.fire()
    [attempt] = api.attempts()
    assert (attempt["outcome"], attempt["statusCode"], attempt["nextAttemptAt"]) == (
        "retrying", None, "2026-03-01T00:00:01.000Z")
    assert attempt["error"] == f"OSError: [Errno {errno.EADDRNOTAVAIL}] no-address.example.com has no address"
    assert (api.run(config)["status"], api.run(config)["error"]) == ("AWAITING_RETRY", NO_RESPONSE)


class _LateTime:
    """The deliveries module's view of ``time``: real, until ``expire_after`` calls of
    ``monotonic`` (or ``expire()``), then an hour late, past every attempt's deadline."""

    def __init__(self, expire_after: int | None = None):
        self.calls, self.expire_after, self.offset = 0, expire_after, 0.0

    def expire(self) -> None:
        self.offset = 3600.0

    def monotonic(self) -> float:
        self.calls += 1
        if self.expire_after is not None and self.calls > self.expire_after:
            self.expire()
        return time.monotonic() + self.offset

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


@pytest.mark.parametrize("expire_after, error", [
    (1, "ConnectTimeout: the attempt's deadline passed while connecting"),  # checked before each connect
    (2, "WriteTimeout: the attempt's deadline passed"),  # checked before each send
])
def test_a_deadline_that_passes_before_a_step_ends_the_attempt_naming_the_step(api, monkeypatch, expire_after, error):
    with receiving() as receiver:
        config = api.wire(receiver.url)
        monkeypatch.setattr(deliveries_module, "time", _LateTime(expire_after))
        api.fire()
        [attempt] = api.attempts()
    assert (attempt["outcome"], attempt["statusCode"], attempt["error"]) == ("retrying", None, error)
    assert receiver.requests == []
    assert api.run(config)["error"] == NO_RESPONSE


def test_a_deadline_that_passes_between_reads_ends_the_attempt(api, monkeypatch):
    late = _LateTime()
    hold, drip = threading.Event(), threading.Event()
    with receiving(hold=hold, drip=drip, drip_bytes=5) as receiver:
        api.wire(receiver.url)
        monkeypatch.setattr(deliveries_module, "time", late)
        api.fire()
        try:
            assert receiver.wait_for(1)  # the request is out; the reply is held back
            late.expire()
            hold.set()  # the status line comes, then the body a byte at a time
            [attempt] = api.attempts()
        finally:
            hold.set()
            drip.set()
    assert (attempt["outcome"], attempt["error"]) == ("retrying", "ReadTimeout: the attempt's deadline passed")


@pytest.fixture(scope="module")
def short_deadline_app():
    return create_app(make_settings(delivery_timeout_seconds=0.3))


@pytest.fixture
def short(short_deadline_app):
    """An Api on an emptied app whose delivery attempts have 0.3 s in all."""
    short_deadline_app.backend.reset()
    client = short_deadline_app.test_client()
    short_deadline_app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    return Api(short_deadline_app, client, bearer_for(client))


def test_a_receiver_that_never_accepts_the_connection_times_out_within_the_deadline(short):
    api = short
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())  # the backlog is full: the next SYN is dropped
    try:
        config = api.wire(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        api.fire()
        [attempt] = api.attempts()
    finally:
        filler.close()
        listener.close()
    assert (attempt["outcome"], attempt["error"]) == ("retrying", "ConnectTimeout: timed out")
    assert api.run(config)["error"] == NO_RESPONSE


# -- download URLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lifetime, said", [
    (timedelta(minutes=1), "one minute"), (timedelta(seconds=119), "one minute"),
    (timedelta(minutes=2), "2 minutes"), (timedelta(minutes=90), "90 minutes"),
    (timedelta(hours=2), "2 hours"), (timedelta(hours=24), "24 hours"), (timedelta(seconds=30), "0 minutes"),
])
def test_an_expired_download_url_says_how_long_urls_last(app, lifetime, said):
    backend = app.backend
    backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    url, expires = backend.downloads.issue(ORG, "exports", "job", lifetime, "http://mock.test/")
    assert expires == START + lifetime
    token = url.removeprefix("http://mock.test/_mock/downloads/")
    backend.change_clock(at=START + lifetime)
    with pytest.raises(MockError) as refused:
        backend.downloads.open(token)
    assert (refused.value.status, refused.value.message) == (
        403, f"this download URL has expired (they last {said}); ask for a new one")


# -- export runs -------------------------------------------------------------------------------------

OPERATIONAL = {"sourceType": "OPERATIONAL", "operationalDataTypes": ["COMPOUND_AGGREGATIONS"]}


@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("pinned-outbound-exports")


@pytest.fixture(scope="module")
def exporting_app(export_root):
    return create_app(make_settings(export_dir=str(export_root / "exports")))


@pytest.fixture
def exporting(exporting_app, export_root):
    """An Api on an emptied app whose --export-dir is ``export_root/exports`` (emptied too)."""
    exporting_app.backend.reset()
    shutil.rmtree(export_root / "exports", ignore_errors=True)
    (export_root / "exports").mkdir()
    client = exporting_app.test_client()
    exporting_app.backend.change_clock(freeze=True, at="2026-03-01T00:00:00Z")
    return Api(exporting_app, client, bearer_for(client))


def export_key(job_id: str, prefix: str = "") -> str:
    """Where a run of OPERATIONAL's one type, made at START, writes its CSV (TIME_FIRST)."""
    return (f"{prefix}orgId={ORG}/date=2026-03-01/hour=00/type=compoundaggregation/"
            f"{job_id}_compoundaggregation.csv.gz")


def job_error(api: Api, job_id: str) -> str | None:
    return api.client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{job_id}").json().get("error")


def test_a_run_that_cannot_write_logs_a_warning_naming_the_job_and_the_reason(exporting, caplog):
    api = exporting
    export_dir = api.backend.exports.export_dir
    (export_dir / "acme-exports").write_text("a file where the bucket's directory goes")
    destination = api.ok("post", "/dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    with caplog.at_level(logging.WARNING, logger="m3ter_mock"):
        job_id = api.ok("post", "/dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
        api.backend.run_due()
    problem = f"could not write 'acme-exports/{export_key(job_id)}' in the export directory: Not a directory"
    assert job_error(api, job_id) == problem
    assert f"export job {job_id} of {ORG} failed: {problem}" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("length", [200, 201])
def test_an_export_error_shows_a_path_up_to_200_characters_whole(exporting, length):
    api = exporting
    export_dir = api.backend.exports.export_dir
    (export_dir / "acme-exports").write_text("a file where the bucket's directory goes")
    bare = len(f"acme-exports/{export_key('0' * 36)}")
    prefix = "p" * (length - bare - 1) + "/"
    destination = api.ok("post", "/dataexports/destinations",
                         {"bucketName": "acme-exports", "prefix": prefix, "iamRoleArn": ROLE})
    job_id = api.ok("post", "/dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    api.backend.run_due()
    where = f"acme-exports/{export_key(job_id, prefix)}"
    assert len(where) == length
    shown = repr(where) if length <= 200 else repr(where[:200]) + f"... ({length} characters)"
    assert job_error(api, job_id) == f"could not write {shown} in the export directory: Not a directory"


def test_a_symlink_put_in_place_of_an_export_file_is_not_written_through(exporting):
    api = exporting
    export_dir = api.backend.exports.export_dir
    destination = api.ok("post", "/dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    target = export_dir / "elsewhere.gz"
    target.write_bytes(b"untouched")
    caller = Caller(ORG, CLIENT)
    # The run waits for the store's lock, which this test holds while it puts the link where
    # the run's file goes (inside the export directory, so only O_NOFOLLOW stops the write).
    with api.backend.store.lock:
        job_id = api.backend.exports.create_adhoc(caller, {**OPERATIONAL, "destinationIds": [destination["id"]]})[
            "jobId"]
        path = export_dir / "acme-exports" / export_key(job_id)
        path.parent.mkdir(parents=True)
        path.symlink_to(target)
    api.backend.run_due()
    assert api.ok("get", f"/dataexports/jobs/{job_id}")["status"] == "FAILED"
    assert job_error(api, job_id) == (f"could not write 'acme-exports/{export_key(job_id)}' in the export "
                                      f"directory: Too many levels of symbolic links")
    assert target.read_bytes() == b"untouched"


def test_a_failed_scheduled_run_names_its_schedule_in_the_failure_event(api):
    schedule = api.ok("post", "/dataexports/schedules", {
        **OPERATIONAL, "scheduleType": "DAY", "period": 1, "offset": 2, "name": "daily", "code": "daily"})
    response = api.client.post(f"/_mock/organizations/{ORG}/dataexports/faults",
                               json={"scheduleId": schedule["id"], "message": "bucket is read-only"})
    assert response.status_code == 200, response.text
    api.advance(3 * 3600)
    api.backend.run_due()
    assert (schedule["scheduleType"], schedule["period"], schedule["offset"]) == ("DAY", 1, 2)
    [job] = api.ok("get", "/dataexports/jobs")["data"]
    [failure] = api.events("dataexport.job.failure")
    assert failure["m3terEvent"]["eventData"]["newDto"] == {
        "jobId": job["id"], "scheduleId": schedule["id"], "sourceType": "OPERATIONAL", "destinationIds": [],
        "error": "bucket is read-only", "dateCreated": "2026-03-01T02:00:00.000Z"}


def test_a_pricing_bands_rows_name_the_pricing_they_belong_to(api):
    product = api.ok("post", "/products", {"name": "P", "code": "p"})
    meter = api.ok("post", "/meters", {"name": "Disk", "code": "disk", "productId": product["id"],
                                       "dataFields": [{"category": "MEASURE", "code": "gb", "name": "GB"}],
                                       "derivedFields": []})
    aggregation = api.ok("post", "/aggregations", {"name": "GB", "code": "gb", "meterId": meter["id"],
                                                   "targetField": "gb", "aggregation": "SUM", "rounding": "NONE",
                                                   "quantityPerUnit": 1, "unit": "GB"})
    template = api.ok("post", "/plantemplates", {"name": "T", "productId": product["id"], "billFrequency": "MONTHLY",
                                                 "currency": "USD", "standingCharge": 0})
    plan = api.ok("post", "/plans", {"name": "Plan", "code": "plan", "planTemplateId": template["id"]})
    pricing = api.ok("post", "/pricings", {"planId": plan["id"], "aggregationId": aggregation["id"], "type": "DEBIT",
                                           "startDate": "2026-01-01T00:00:00Z", "pricingBands": [
                                               {"lowerLimit": 0, "fixedPrice": 0, "unitPrice": 1},
                                               {"lowerLimit": 10, "fixedPrice": 0, "unitPrice": 0.5}]})
    job_id = api.ok("post", "/dataexports/adhoc", {"sourceType": "OPERATIONAL",
                                                   "operationalDataTypes": ["PRICING_BANDS"]})["jobId"]
    api.backend.run_due()
    url = api.ok("get", f"/dataexports/jobs/{job_id}/getdownloadurl")["url"]
    response = api.client.get("/" + url.split("/", 3)[3])
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["pricingId"], r["lowerLimit"]) for r in rows] == [(pricing["id"], "0"), (pricing["id"], "10")]


# -- the workers ---------------------------------------------------------------------------------------

def test_an_item_that_fails_is_logged_with_its_worker_and_the_next_one_still_runs(caplog):
    clock = Clock(frozen_at=START)
    ran = []

    def handle(item):
        if item == "broken":
            raise RuntimeError("a bug in one item")
        ran.append(item)

    due, lanes = DueWorker(clock, "probe", handle), LaneWorker(clock, "lanes", handle, lambda i: "one", max_lanes=2)
    try:
        with caplog.at_level(logging.ERROR, logger="m3ter_mock"):
            for worker in (due, lanes):
                worker.schedule("broken", START)
                worker.schedule(f"after {worker is due}", START)
                assert worker.wait_idle()
    finally:
        due.stop()
        lanes.stop()
    assert ran == ["after True", "after False"]
    failures = [(r.getMessage(), r.exc_info[0]) for r in caplog.records if r.levelno == logging.ERROR]
    assert failures == [("probe worker: an item failed", RuntimeError), ("lanes worker: an item failed", RuntimeError)]


def test_a_done_listener_that_fails_is_logged_and_the_worker_goes_on(caplog):
    clock = Clock(frozen_at=START)
    ran, heard = [], []
    worker = DueWorker(clock, "probe", ran.append)

    def broken():
        raise RuntimeError("a bug in a listener")

    worker.add_done_listener(broken)
    worker.add_done_listener(lambda: heard.append(len(ran)))
    try:
        with caplog.at_level(logging.ERROR, logger="m3ter_mock"):
            worker.schedule("a", START)
            worker.schedule("b", START)
            assert worker.wait_idle()
    finally:
        worker.stop()
    assert (ran, heard) == (["a", "b"], [1, 2])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "probe worker: a done listener failed", "probe worker: a done listener failed"]


def test_a_lane_worker_never_runs_more_lanes_at_once_than_its_bound():
    clock = Clock(frozen_at=START)
    gates = {"a": threading.Event(), "b": threading.Event()}
    entered, order = threading.Semaphore(0), []

    def handle(item):
        order.append(("start", item))
        entered.release()
        assert gates[item].wait(30)
        order.append(("end", item))

    worker = LaneWorker(clock, "bound", handle, lane_of=lambda item: item, max_lanes=1)
    try:
        worker.schedule("a", START)
        assert entered.acquire(timeout=30)  # lane a is running on the one runner
        worker.schedule("b", START)
        deadline = time.monotonic() + 30
        while worker.next_due_time() is not None and time.monotonic() < deadline:
            time.sleep(0.001)  # until the dispatcher has moved b to its lane (a wait, not an assertion)
        runners = [t for t in threading.enumerate() if t.name == "m3ter-mock-bound-lane"]
        assert len(runners) == 1  # b waits for the one runner
        gates["a"].set()
        gates["b"].set()
        assert worker.wait_idle()
    finally:
        for gate in gates.values():
            gate.set()
        worker.stop()
    assert order == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]


# -- what a delivery sends ---------------------------------------------------------------------------

def test_a_delivery_posts_compact_key_sorted_json_with_the_mocks_headers_to_the_urls_path_and_query(api):
    with receiving(path="/hook?tenant=acme") as receiver:
        api.wire(receiver.url)
        api.fire()
        assert [a["outcome"] for a in api.attempts()] == ["delivered"]
    [request] = receiver.requests
    assert request.path == "/hook?tenant=acme"
    headers = request.headers
    assert (headers["Host"], headers["User-Agent"], headers["Content-Type"], headers["X-m3ter-apikey"]) == (
        receiver.url.split("/")[2], "m3ter-mock", "application/json", "key-1")
    assert headers["X-m3ter-mock-delivery"] == api.backend.instance_id  # this mock's, so it refuses it
    assert "Authorization" not in headers
    assert request.body == json.dumps(json.loads(request.body), separators=(",", ":"), sort_keys=True).encode()


def test_a_notification_names_its_rule_and_the_event_that_triggered_it(api):
    with receiving() as receiver:
        rule = api.rule(code="made")
        api.link(rule, api.webhook(receiver.url))
        api.advance(5)
        made = api.fire()
        api.attempts()
    [trigger] = [e for e in api.events("configuration.compoundaggregation.created")
                 if e["m3terEvent"].get("notification") is None]
    delivered = json.loads(receiver.requests[0].body)
    assert delivered["eventName"] == "configuration.compoundaggregation.created"
    assert delivered["m3terEvent"]["notification"] == {"id": rule["id"], "code": "made", "name": "made"}
    assert delivered["m3terEvent"]["triggeringEvent"] == {
        "id": trigger["id"], "eventName": "configuration.compoundaggregation.created",
        "eventTime": "2026-03-01T00:00:05.000Z"}
    assert delivered["m3terEvent"]["eventData"]["newDto"]["id"] == made["id"]
    # The Notification Event is listed with its rule's id and code, its type, the trigger's resource.
    for query in ({"eventType": "notification"}, {"eventType": "NOTIFICATION"}, {"notificationId": rule["id"]},
                  {"notificationCode": "made"}):
        assert [e["id"] for e in api.ok("get", "/events", **query)["data"]] == [delivered["id"]], query
    by_resource = api.ok("get", "/events", resourceId=made["id"])["data"]
    assert {e["id"] for e in by_resource} == {trigger["id"], delivered["id"]}
    assert api.ok("get", "/events", notificationCode="other")["data"] == []


@pytest.mark.parametrize("userinfo, decoded", [("hook-user@", b"hook-user:"), (":p%40ss@", b":p@ss")])
def test_half_given_credentials_in_a_webhook_url_are_still_sent_as_basic_authorization(api, userinfo, decoded):
    with receiving() as receiver:
        host = receiver.url.split("/")[2]
        hook = api.backend.webhooks.create(Caller(ORG, CLIENT), {
            "name": "Receiver", "description": "d", "url": f"http://{userinfo}{host}/hook",
            "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "pinned-outbound-secret"}})
        api.link(api.rule(), hook)
        api.fire()
        assert [a["outcome"] for a in api.attempts()] == ["delivered"]
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(decoded).decode()


# -- deliveries that cannot go out -------------------------------------------------------------------

def test_a_retry_whose_webhook_was_deleted_fails_at_once_and_says_why(api):
    with receiving(statuses=[500]) as receiver:
        config = api.wire(receiver.url)
        api.fire()
        api.attempts()
        api.ok("delete", f"/integrationconfigs/{config['id']}")
        api.ok("delete", f"/integrationdestinations/webhooks/{config['destinationId']}")
        api.advance(1)
        attempts = api.attempts()
    assert [(a["attempt"], a["outcome"], a["statusCode"], a["error"]) for a in attempts] == [
        (1, "retrying", 500, "HTTP 500"), (2, "failed", None, "the webhook destination was deleted")]
    [failure] = api.events("integration.perform.error")
    data = failure["m3terEvent"]["eventData"]["newDto"]
    assert (data["error"], data["attempts"], data["statusCode"]) == ("the webhook destination was deleted", 2, None)
    assert len(receiver.requests) == 1


def test_a_dropped_delivery_is_recorded_failed_and_its_failure_notifies_once(api, monkeypatch):
    monkeypatch.setattr(api.backend.deliveries, "max_waiting", 0)
    hook = api.webhook("https://hooks.example.com/m3ter")
    config = api.link(api.rule(), hook)
    api.link(api.rule("integration.perform.error", code="failed"), hook)
    api.fire()
    message = "dropped: 0 deliveries to this destination are already waiting"
    attempts = api.attempts()
    assert [{k: a[k] for k in ("eventName", "attempt", "statusCode", "error", "outcome", "startedAt", "finishedAt",
                               "nextAttemptAt")} for a in attempts] == [
        {"eventName": name, "attempt": 0, "statusCode": None, "error": message, "outcome": "failed",
         "startedAt": "2026-03-01T00:00:00.000Z", "finishedAt": "2026-03-01T00:00:00.000Z", "nextAttemptAt": None}
        for name in ("configuration.compoundaggregation.created", "integration.perform.error")]
    # Only the first drop reports a failure: the one of a failure's own notification does not.
    [failure] = [e for e in api.events("integration.perform.error") if e["m3terEvent"].get("notification") is None]
    data = failure["m3terEvent"]["eventData"]["newDto"]
    assert (data["error"], data["attempts"], data["statusCode"], data["integrationConfigId"]) == (
        message, 0, None, config["id"])
    run = api.run(config)
    assert (run["status"], run["error"], run["dtStarted"], run["dtCompleted"]) == (
        "ERROR", message, "2026-03-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z")


def test_a_name_that_resolves_to_no_ip_address_is_refused_without_retry(api, monkeypatch):
    monkeypatch.setattr(api.backend.deliveries, "resolve",
                        lambda host, port: [(socket.AF_INET, ("not-an-ip", port))])
    config = api.wire("https://odd.example.com/hook")
    api.fire()
    reason = "refused by the webhook policy: odd.example.com resolved to 'not-an-ip', which is not an IP address"
    assert [(a["outcome"], a["error"]) for a in api.attempts()] == [("failed", reason)]
    assert api.run(config)["error"] == reason  # a refusal is no secret: tenants see it whole


def read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += connection.recv(65536)


def replying(reply: bytes | None, reset: bool = False):
    """A loopback server that reads a request and then sends ``reply`` (None: says nothing
    until the test ends), or resets the connection; yields its URL."""

    def behaviour(connection: socket.socket) -> None:
        read_request(connection)
        if reset:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()
        elif reply is not None:
            connection.sendall(reply)

    return tcp_server(behaviour)


def test_a_reply_whose_head_outgrows_the_byte_limit_is_no_answer(api, monkeypatch):
    monkeypatch.setattr(api.backend.settings, "delivery_max_response_bytes", 64)
    with replying(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 200 + b"\r\nContent-Length: 0\r\n\r\n") as url:
        config = api.wire(url)
        api.fire()
        [attempt] = api.attempts()
    assert (attempt["outcome"], attempt["statusCode"], attempt["error"]) == (
        "retrying", None, "ReplyTooLarge: no status line and headers within 64 bytes")
    assert api.run(config)["error"] == NO_RESPONSE


def test_a_reply_whose_head_fits_the_byte_limit_is_an_answer(api, monkeypatch):
    monkeypatch.setattr(api.backend.settings, "delivery_max_response_bytes", 64)
    head = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    with replying(head + b"x" * (64 - len(head))) as url:
        api.wire(url)
        api.fire()
        assert [(a["outcome"], a["statusCode"]) for a in api.attempts()] == [("delivered", 204)]


def test_a_silent_receiver_is_cut_off_at_the_deadline_while_reading(short):
    with replying(None) as url:
        short.wire(url)
        short.fire()
        [attempt] = short.attempts()
    assert attempt["error"] == "ReadTimeout: the attempt's deadline passed while reading"


def test_a_receiver_that_resets_the_connection_is_a_read_error(api):
    with replying(None, reset=True) as url:
        api.wire(url)
        api.fire()
        [attempt] = api.attempts()
    assert attempt["outcome"] == "retrying"
    assert attempt["error"] == f"ReadError: [Errno {errno.ECONNRESET}] Connection reset by peer"


# -- the admin list of attempts, a page at a time --------------------------------------------------

def test_a_page_of_attempts_that_ends_the_list_gives_no_position_to_go_on(api, monkeypatch):
    monkeypatch.setattr(api.backend.deliveries, "local_answer", lambda url, headers, body: 200)
    api.wire("https://hooks.example.com/m3ter")
    for code in ("a", "b", "c"):
        api.fire(code)
    api.attempts()
    deliveries = api.backend.deliveries
    every = deliveries.attempts(ORG)
    assert len(every) == 3
    page, after = deliveries.attempts_page(ORG, 2)
    assert page == every[:2] and after is not None
    rest, end = deliveries.attempts_page(ORG, 2, after)
    assert (rest, end) == (every[2:], None)
    assert deliveries.attempts_page(ORG, 3) == (every, None)  # exactly full: still the last page
    assert deliveries.attempts_page(ORG, 1)[0] == every[:1]
    with pytest.raises(ValueError) as refused:
        deliveries.attempts_page(ORG, 0)
    assert str(refused.value) == "page_size must be at least 1"
    assert deliveries.attempts("org-someone-else") == []


# -- webhooks, notification rules, integration configurations ------------------------------------

def test_a_webhook_is_active_until_switched_off_and_its_credentials_name_is_kept(api):
    created = api.ok("post", "/integrationdestinations/webhooks", {
        "name": "Receiver", "description": "d", "url": "https://hooks.example.com/m3ter", "code": "rx",
        "credentials": {"type": "M3TER_SIGNED_REQUEST", "apiKey": "key-1", "secret": "s3cr3t-webhook",
                        "name": "Main key"}})
    assert (created["active"], created["code"], created["credentials"]["name"]) == (True, "rx", "Main key")
    assert created["credentials"]["secret"] == "s3cr3t-webhook"  # the create answer only
    shown = api.ok("get", f"/integrationdestinations/webhooks/{created['id']}")
    assert "secret" not in shown["credentials"] and shown["credentials"]["name"] == "Main key"
    off = api.ok("put", f"/integrationdestinations/webhooks/{created['id']}/active", active=False)
    assert (off["active"], off["version"]) == (False, 1)
    on = api.ok("put", f"/integrationdestinations/webhooks/{created['id']}/active")
    assert (on["active"], on["version"]) == (True, 1)


def test_an_inactive_webhook_or_a_disabled_configuration_gets_no_delivery(api, monkeypatch):
    sent = []
    monkeypatch.setattr(api.backend.deliveries, "local_answer", lambda url, headers, body: sent.append(url) or 200)
    config = api.wire("https://hooks.example.com/m3ter")
    api.ok("put", f"/integrationdestinations/webhooks/{config['destinationId']}/active", active=False)
    api.fire("one")
    api.ok("put", f"/integrationdestinations/webhooks/{config['destinationId']}/active", active=True)
    assert api.client.post(f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable").status_code == 200
    api.fire("two")
    api.ok("post", f"/integrationconfigs/{config['id']}/enable")
    api.fire("three")
    api.attempts()
    assert sent == ["https://hooks.example.com/m3ter"]


def test_a_notification_rule_is_active_and_fires_only_on_its_calculation_unless_told(api):
    rule = api.ok("post", "/notifications/configurations", {
        "name": "n", "code": "n", "description": "d", "eventName": "configuration.compoundaggregation.created"})
    assert (rule["active"], rule["alwaysFireEvent"], rule["description"]) == (True, False, "d")
    message = api.refused(400, "post", "/notifications/configurations", {
        "name": "m", "code": "m", "description": "d", "eventName": "configuration.nothing.created"})
    assert message == "eventName: 'configuration.nothing.created' is not an event type (see GET /events/types)"
    off = api.ok("post", "/notifications/configurations", {
        "name": "o", "code": "o", "description": "d", "eventName": "configuration.compoundaggregation.updated",
        "active": False})
    assert [r["id"] for r in api.ok("get", "/notifications/configurations", active=False)["data"]] == [off["id"]]
    assert [r["id"] for r in api.ok("get", "/notifications/configurations",
                                    eventName="configuration.compoundaggregation.created")["data"]] == [rule["id"]]


def test_an_integration_configuration_must_link_existing_entities_and_is_enabled_when_made(api):
    rule, hook = api.rule(), api.webhook("https://hooks.example.com/m3ter")
    base = {"entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"]}
    assert api.refused(400, "post", "/integrationconfigs", {**base, "destinationId": "nope"}) == (
        "destinationId: no webhook destination with id 'nope'")
    assert api.refused(400, "post", "/integrationconfigs", {**base, "entityId": "nope"}) == (
        "entityId: no notification with id 'nope'")
    config = api.ok("post", "/integrationconfigs", base)
    assert (config["enabled"], config["authorized"], config["triggerType"]) == (True, True, "EVENT")
    assert api.client.post(f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable").status_code == 200
    version = api.run(config)["version"]
    updated = api.ok("put", f"/integrationconfigs/{config['id']}", {**base, "version": version})
    assert updated["enabled"] is False  # an update keeps what m3ter (or the admin API) switched off


def test_a_configuration_without_deliveries_shows_a_waiting_run_and_a_disabled_one_says_so(api):
    rule, hook = api.rule(), api.webhook("https://hooks.example.com/m3ter")
    config = api.link(rule, hook)
    run = api.run(config)
    assert run == {"id": config["id"], "version": 1, "entityType": "Notification", "entityId": rule["id"],
                   "destination": "Webhook", "destinationId": hook["id"], "status": "WAITING",
                   "dtCreated": "2026-03-01T00:00:00.000Z", "dtLastModified": "2026-03-01T00:00:00.000Z",
                   "createdBy": CLIENT, "lastModifiedBy": CLIENT}
    api.backend.deliveries.local_answer = lambda url, headers, body: 200
    try:
        api.fire()
        api.attempts()
    finally:
        api.backend.deliveries.local_answer = None
    assert api.run(config)["status"] == "COMPLETE"
    assert api.client.post(f"/_mock/organizations/{ORG}/integrationconfigs/{config['id']}/disable").status_code == 200
    assert api.run(config)["status"] == "DISABLED"  # whatever its last delivery did


def test_the_configuration_of_an_entity_is_found_by_type_any_case_and_every_filter(api):
    rule, other = api.rule(), api.rule(code="other")
    hook = api.webhook("https://hooks.example.com/m3ter")
    first, second = api.link(rule, hook), api.link(other, hook)
    path = "/integrationconfigs/entity/notification"
    assert api.ok("get", path)["id"] == first["id"]
    assert api.ok("get", "/integrationconfigs/entity/NOTIFICATION", entityId=other["id"])["id"] == second["id"]
    found = api.ok("get", path, destination="WEBHOOK", destinationId=hook["id"], entityId=other["id"])
    assert found["id"] == second["id"]
    for query in ({"entityId": "nope"}, {"destination": "Email"}, {"destinationId": "nope"}):
        assert api.refused(404, "get", path, **query) == (
            "No integration configuration for entityType 'notification' matches")
    assert api.refused(404, "get", "/integrationconfigs/entity/Account") == (
        "No integration configuration for entityType 'Account' matches")


# -- export destinations and schedules ----------------------------------------------------------------

def test_an_export_destination_is_told_s3_by_its_role_and_named_after_its_bucket(api):
    s3 = api.ok("post", "/dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    assert (s3["destinationType"], s3["name"], s3["partitionOrder"]) == ("S3", "acme-exports", "TIME_FIRST")
    gcs = api.ok("post", "/dataexports/destinations", {
        "bucketName": "acme_exports", "projectNumber": "1", "poolId": "p", "providerId": "q", "name": "Mine",
        "partitionOrder": "TYPE_FIRST", "serviceAccountEmail": "export@acme.iam.gserviceaccount.com"})
    assert gcs["serviceAccountEmail"] == "export@acme.iam.gserviceaccount.com"
    assert (gcs["destinationType"], gcs["name"], gcs["partitionOrder"]) == ("GCS", "Mine", "TYPE_FIRST")
    assert "iamRoleArn" not in gcs and (gcs["projectNumber"], gcs["poolId"], gcs["providerId"]) == ("1", "p", "q")


def test_a_destination_in_use_by_a_schedule_cannot_be_deleted(api):
    destination = api.ok("post", "/dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE})
    schedule = api.ok("post", "/dataexports/schedules", {**OPERATIONAL, "name": "s", "code": "s",
                                                         "destinationIds": [destination["id"]]})
    assert api.refused(409, "delete", f"/dataexports/destinations/{destination['id']}") == (
        f"ExportDestination {destination['id']!r} is used by export schedule {schedule['id']!r}; "
        f"remove it from the schedule first")
    api.ok("delete", f"/dataexports/schedules/{schedule['id']}")
    api.ok("delete", f"/dataexports/destinations/{destination['id']}")


def test_a_schedule_without_a_type_is_ad_hoc_in_csv_and_never_runs(api):
    schedule = api.ok("post", "/dataexports/schedules", {**OPERATIONAL, "name": "s", "code": "s"})
    assert (schedule["scheduleType"], schedule["exportFileFormat"]) == ("AD_HOC", "CSV")
    assert "cronExpression" not in schedule
    assert api.refused(400, "post", "/dataexports/schedules", {**OPERATIONAL, "name": "t", "code": "t",
                                                               "destinationIds": ["nope"]}) == (
        "destinationIds: no export destination with id 'nope'")
    api.advance(40 * 24 * 3600)
    api.backend.run_due()
    assert api.ok("get", "/dataexports/jobs")["data"] == []


# -- export jobs ---------------------------------------------------------------------------------

def test_an_export_job_shows_its_run_and_the_admin_view_its_files(api):
    api.fire()
    job_id = api.ok("post", "/dataexports/adhoc", {**OPERATIONAL, "exportFileFormat": "JSONL"})["jobId"]
    api.backend.run_due()
    job = api.ok("get", f"/dataexports/jobs/{job_id}")
    assert job == {"id": job_id, "version": 1, "sourceType": "OPERATIONAL", "status": "SUCCEEDED",
                   "dateCreated": "2026-03-01T00:00:00.000Z", "startedAt": "2026-03-01T00:00:00.000Z"}
    details = api.client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{job_id}").json()
    [file] = details.pop("files")
    assert file["name"] == f"{job_id}_compoundaggregation.jsonl" and file["bytes"] > 0
    assert details == {**job, "objects": []}
    response = api.client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/nope")
    assert (response.status_code, response.json()["message"]) == (404, "No export job with id 'nope'")


def test_a_download_url_is_given_up_to_24_hours_after_the_job_and_only_when_it_succeeded(api):
    job_id = api.ok("post", "/dataexports/adhoc", OPERATIONAL)["jobId"]
    api.backend.run_due()
    api.advance(24 * 3600)
    issued = api.ok("get", f"/dataexports/jobs/{job_id}/getdownloadurl")
    assert issued["expirationTime"] == "2026-03-02T00:15:00.000Z"
    api.advance(1)
    assert api.refused(400, "get", f"/dataexports/jobs/{job_id}/getdownloadurl") == (
        f"jobId: job {job_id!r} ran more than 24 hours ago; download URLs are only given for recent jobs")
    response = api.client.post(f"/_mock/organizations/{ORG}/dataexports/faults", json={"message": "no bucket"})
    assert (response.status_code, response.json()) == (200, {"pendingFaults": 1})
    failed = api.ok("post", "/dataexports/adhoc", OPERATIONAL)["jobId"]
    api.backend.run_due()
    assert api.refused(400, "get", f"/dataexports/jobs/{failed}/getdownloadurl") == (
        f"jobId: job {failed!r} is FAILED; it has no file to download")


def test_a_fault_for_a_schedule_leaves_ad_hoc_jobs_alone_and_counts_what_is_pending(api):
    schedule = api.ok("post", "/dataexports/schedules", {
        **OPERATIONAL, "scheduleType": "DAY", "period": 1, "offset": 2, "name": "daily", "code": "daily"})
    response = api.client.post(f"/_mock/organizations/{ORG}/dataexports/faults",
                               json={"scheduleId": schedule["id"], "count": 2})
    assert response.json() == {"pendingFaults": 2}
    adhoc = api.ok("post", "/dataexports/adhoc", OPERATIONAL)["jobId"]
    api.backend.run_due()
    assert api.ok("get", f"/dataexports/jobs/{adhoc}")["status"] == "SUCCEEDED"
    api.advance(3 * 3600)
    api.backend.run_due()
    [scheduled] = api.ok("get", "/dataexports/jobs", scheduleId=schedule["id"])["data"]
    assert (scheduled["status"], job_error(api, scheduled["id"])) == ("FAILED", "fault injected through the admin API")


@pytest.mark.parametrize("name", ["dateCreatedStart", "dateCreatedEnd"])
def test_a_job_list_date_that_is_no_date_time_is_a_400_naming_it(api, name):
    # The API's validator refuses it first; the backend's own interface says it too.
    with pytest.raises(MockError) as refused:
        api.backend.exports.list_jobs(Caller(ORG, CLIENT), {name: "yesterday"}, None, None)
    assert (refused.value.status, refused.value.message) == (
        400, f"{name}: 'yesterday' is not a date-time like 2026-01-01T00:00:00Z")


def test_a_job_list_takes_dates_with_either_zone_letter_and_any_offset(api):
    """RFC 3339 lets "Z" be written "z"; the window includes its start and leaves out its end."""
    schedule = api.ok("post", "/dataexports/schedules", {
        **OPERATIONAL, "scheduleType": "HOUR", "period": 1, "name": "hourly", "code": "hourly"})
    api.advance(4 * 3600)
    api.backend.run_due()
    for start, end in [("2026-03-01T01:00:00z", "2026-03-01T03:00:00z"),
                       ("2026-03-01T02:00:00+01:00", "2026-03-01T04:00:00+01:00")]:
        found = api.ok("get", "/dataexports/jobs", scheduleId=schedule["id"], dateCreatedStart=start,
                       dateCreatedEnd=end)["data"]
        assert [j["dateCreated"] for j in found] == ["2026-03-01T01:00:00.000Z", "2026-03-01T02:00:00.000Z"]


# -- Events --------------------------------------------------------------------------------------

def test_events_filter_by_account_and_an_unknown_event_is_a_404(api):
    account = api.ok("post", "/accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
    api.ok("post", "/accounts", {"name": "Other", "code": "other", "emailAddress": "o@example.com"})
    made = api.ok("get", "/events", resourceId=account["id"])["data"]
    assert [e["eventName"] for e in made] == ["configuration.account.created"]
    assert api.refused(404, "get", "/events/nope") == "No Event with id 'nope'"
    assert api.refused(400, "get", "/events", ids=made[0]["id"], eventName="x", resourceId="y") == (
        "ids: cannot be combined with other filters (also given: eventName, resourceId)")
    assert api.refused(400, "get", "/events", ids=made[0]["id"], accountId="x") == (
        "ids: cannot be combined with other filters (also given: accountId)")
    assert [e["id"] for e in api.ok("get", "/events", includeActioned=False)["data"]][-1] == made[0]["id"]
    event = api.ok("get", f"/events/{made[0]['id']}")
    assert event["m3terEvent"]["eventData"] == {"newDto": {**account, "orgId": ORG}}  # no oldDto on a create


def test_a_notification_keeps_its_triggers_account_and_old_data_and_inactive_rules_stay_silent(api):
    name = "configuration.commitment.updated"
    fired = api.rule(name, code="fired")
    quiet = api.ok("post", "/notifications/configurations", {
        "name": "quiet", "code": "quiet", "description": "d", "eventName": name, "alwaysFireEvent": True,
        "active": False})
    never = api.ok("post", "/notifications/configurations", {
        "name": "never", "code": "never", "description": "d", "eventName": name,
        "calculation": "new.amountSpent > new.amount"})
    plain = api.ok("post", "/notifications/configurations", {  # no calculation: every Event of its type
        "name": "plain", "code": "plain", "description": "d", "eventName": name})
    forced = api.ok("post", "/notifications/configurations", {  # always: whatever its calculation says
        "name": "forced", "code": "forced", "description": "d", "eventName": name, "alwaysFireEvent": True,
        "calculation": "new.amountSpent > new.amount"})
    response = api.client.post("/_mock/events", json={
        "orgId": ORG, "eventName": name, "accountId": "acc-1",
        "newDto": {"id": "c1", "amount": 1000, "amountSpent": 950}, "oldDto": {"id": "c1", "amount": 1000}})
    assert response.status_code == 200, response.text
    trigger = response.json()
    listed = api.ok("get", "/events", accountId="acc-1")["data"]
    assert [e["id"] for e in listed][3:] == [trigger["id"]]
    assert {e["m3terEvent"]["notification"]["id"] for e in listed[:3]} == {fired["id"], plain["id"], forced["id"]}
    notification = listed[0]
    assert notification["m3terEvent"]["eventData"] == {
        "newDto": {"id": "c1", "amount": 1000, "amountSpent": 950}, "oldDto": {"id": "c1", "amount": 1000}}
    for rule in (quiet, never):
        assert api.ok("get", "/events", notificationId=rule["id"])["data"] == []
    assert api.ok("get", "/events", accountId="acc-2")["data"] == []


# -- evaluating a calculation on an Event -------------------------------------------------------------

def test_evaluating_on_an_event_says_what_the_calculation_came_to_when_it_is_not_true(api):
    response = api.client.post("/_mock/events", json={
        "orgId": ORG, "eventName": "configuration.commitment.updated",
        "newDto": {"id": "c1", "amount": 1000}, "oldDto": {"id": "c1", "amount": 900}})
    event_id = response.json()["id"]

    def evaluate(calculation, **against):
        return api.ok("post", "/notifications/evaluate", {"calculation": calculation, **against})

    for calculation, shown in [("new.amountSpent", "null"), ("new.amount < old.amount", "false"),
                               ("new.amount", "1000.0"), ("new.id", "'c1'")]:
        assert evaluate(calculation, eventId=event_id) == {
            "success": False, "errorMessage": f"calculation: evaluates to {shown} on Event {event_id}, not true"}
    assert evaluate("new.amount > old.amount", eventId=event_id) == {"success": True}
    # eventName wins over eventId: checked against the type only, never run
    assert evaluate("new.amount < old.amount", eventId=event_id,
                    eventName="configuration.commitment.updated") == {"success": True}
    with pytest.raises(MockError) as refused:  # the API's validator says it first; Python callers hear it too
        notifying.evaluate(api.backend, Caller(ORG, CLIENT), "true", None, None)
    assert (refused.value.status, refused.value.message) == (
        400, "eventName or eventId: give one to evaluate the calculation against")


# -- exports without an export directory ---------------------------------------------------------------

def test_without_an_export_dir_a_run_records_its_objects_and_writes_nothing(api):
    destination = api.ok("post", "/dataexports/destinations", {"bucketName": "acme-exports", "iamRoleArn": ROLE,
                                                                "prefix": "billing"})
    job_id = api.ok("post", "/dataexports/adhoc", {**OPERATIONAL, "destinationIds": [destination["id"]]})["jobId"]
    api.backend.run_due()
    details = api.client.get(f"/_mock/organizations/{ORG}/dataexports/jobs/{job_id}").json()
    assert details["status"] == "SUCCEEDED"
    assert details["objects"] == [{"destinationId": destination["id"], "bucket": "acme-exports",
                                   "key": export_key(job_id, "billing/")}]


# -- the lane worker's bookkeeping -------------------------------------------------------------------

def test_a_lane_worker_needs_at_least_one_lane():
    with pytest.raises(ValueError) as refused:
        LaneWorker(Clock(frozen_at=START), "none", lambda item: None, lane_of=lambda item: item, max_lanes=0)
    assert str(refused.value) == "max_lanes must be at least 1"


def wait_dispatched(worker) -> None:
    """Until the dispatcher has moved every due item into its lane (a wait, not an assertion)."""
    deadline = time.monotonic() + 30
    while worker.next_due_time() is not None and time.monotonic() < deadline:
        time.sleep(0.001)


def test_discarding_takes_items_waiting_in_their_lanes_and_keeps_the_rest():
    clock = Clock(frozen_at=START)
    gate, entered, ran = threading.Event(), threading.Semaphore(0), []

    def handle(item):
        if item == "a1":
            entered.release()
            assert gate.wait(30)
        ran.append(item)

    worker = LaneWorker(clock, "discard", handle, lane_of=lambda item: item[0], max_lanes=1)
    try:
        worker.schedule("a1", START)
        assert entered.acquire(timeout=30)
        for item in ("a2", "a3", "b1"):
            worker.schedule(item, START)
        wait_dispatched(worker)
        worker.schedule("c1", START + timedelta(seconds=1))  # not due yet
        assert sorted(worker.discard(lambda item: item in ("a2", "b1", "c1"))) == ["a2", "b1", "c1"]
        gate.set()
        assert worker.wait_idle()
        clock.set(START + timedelta(seconds=2))
        assert worker.wait_idle()
    finally:
        gate.set()
        worker.stop()
    assert ran == ["a1", "a3"]


def test_work_scheduled_for_before_a_clear_is_not_run():
    clock = Clock(frozen_at=START)
    ran = []
    worker = LaneWorker(clock, "epochs", ran.append, lane_of=lambda item: item, max_lanes=2)
    try:
        before = worker.epoch
        worker.clear()
        worker.schedule("stale", START, epoch=before)
        worker.schedule("current", START, epoch=worker.epoch)
        worker.schedule("unbound", START)
        assert worker.wait_idle()
    finally:
        worker.stop()
    assert sorted(ran) == ["current", "unbound"]


# -- the request journal -------------------------------------------------------------------------

def test_a_request_body_that_arrives_in_pieces_is_counted_whole_and_kept_up_to_8_kib(live_app, live_url):
    import httpx

    live_app.backend.reset()
    with httpx.Client(base_url=live_url) as http:
        assert http.delete("/_mock/journal").status_code == 200
        token = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                          auth=("test-client", "test-secret")).json()["access_token"]
        body = json.dumps({"name": "x" * 300_000, "code": "big", "rounding": "UP", "quantityPerUnit": 1,
                           "unit": "GB", "calculation": "1"}).encode()
        http.post(f"/organizations/{ORG}/compoundaggregations", content=body,
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        entries = http.get("/_mock/journal", params={"orgId": ORG}).json()["data"]
    [entry] = [e for e in entries if e["method"] == "POST"]
    assert (entry["request"]["bodyBytes"], entry["request"]["bodyTruncated"]) == (len(body), True)
    assert round(entry["durationMs"], 3) == entry["durationMs"]  # milliseconds to the microsecond


@pytest.fixture(scope="module")
def one_entry_app():
    return create_app(make_settings(retain_journal=1))


def test_a_journal_of_one_keeps_the_latest_request(one_entry_app):
    one_entry_app.backend.reset()
    client = one_entry_app.test_client()
    auth = bearer_for(client)
    for path in ("/products", "/meters"):
        assert client.get(f"/organizations/{ORG}{path}", headers=auth).status_code == 200
    entries = client.get("/_mock/journal").json()["data"]
    assert [(e["method"], e["path"]) for e in entries] == [("GET", f"/organizations/{ORG}/meters")]
    assert round(entries[0]["durationMs"], 3) == entries[0]["durationMs"]


# -- export schedules after a restore ------------------------------------------------------------

def test_a_restored_schedule_fires_once_at_its_next_time(api):
    schedule = api.ok("post", "/dataexports/schedules", {
        **OPERATIONAL, "scheduleType": "DAY", "period": 1, "offset": 2, "name": "daily", "code": "daily"})
    taken = api.client.post("/_mock/snapshots", json={"name": "outbound-schedules", "orgId": ORG})
    assert taken.status_code == 201, taken.text
    assert api.client.post("/_mock/snapshots/outbound-schedules/restore").status_code == 200
    api.advance(3 * 3600)
    api.backend.run_due()
    jobs = api.ok("get", "/dataexports/jobs", scheduleId=schedule["id"])["data"]
    assert [j["dateCreated"] for j in jobs] == ["2026-03-01T02:00:00.000Z"]


# -- the delivery deadline ------------------------------------------------------------------------

def test_a_backend_built_without_a_deadline_follows_the_settings_one():
    from mockserver.backend.core import Backend
    from mockserver.settings import Settings

    backend = Backend(clock=Clock(frozen_at=START), settings=Settings(delivery_timeout_seconds=2.5))
    assert backend.deliveries.timeout_seconds == 2.5
    backend.settings.delivery_timeout_seconds = 4.0  # settings can change while serving
    assert backend.deliveries.timeout_seconds == 4.0
    given = Backend(clock=Clock(frozen_at=START), settings=Settings(delivery_timeout_seconds=2.5),
                    delivery_timeout_seconds=7.0)
    assert given.deliveries.timeout_seconds == 7.0


# -- a name with several addresses ------------------------------------------------------------------

def test_a_name_with_addresses_outside_the_allow_list_connects_only_to_the_allowed_one(api, monkeypatch):
    with receiving() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        monkeypatch.setattr(api.backend.settings, "webhook_allow", ("127.0.0.1",))
        addresses = [(socket.AF_INET, ("127.0.0.2", port)), (socket.AF_INET, ("127.0.0.1", port))]
        monkeypatch.setattr(api.backend.deliveries, "resolve", lambda host, at: addresses if at == port else [])
        api.wire(f"http://multi.example.com:{port}/hook")
        api.fire()
        assert [a["outcome"] for a in api.attempts()] == ["delivered"]
        monkeypatch.setattr(api.backend.settings, "webhook_allow", ("10.0.0.0/8",))
        api.fire("second")
        second = api.attempts()[-1]
    assert (second["outcome"], second["error"]) == (
        "failed", "refused by the webhook policy: multi.example.com (127.0.0.2) is not in the webhook allow list")
    assert [r.headers["Host"] for r in receiver.requests] == [f"multi.example.com:{port}"]


def test_a_download_url_whose_job_is_gone_is_a_403_saying_so(api):
    job_id = api.ok("post", "/dataexports/adhoc", OPERATIONAL)["jobId"]
    api.backend.run_due()
    url = api.ok("get", f"/dataexports/jobs/{job_id}/getdownloadurl")["url"]
    path = "/" + url.split("/", 3)[3]
    assert api.client.get(path).status_code == 200
    assert api.client.post("/_mock/reset", params={"orgId": ORG}).status_code == 200
    response = api.client.get(path)
    assert (response.status_code, response.json()["message"]) == (
        403, "the export job of this download URL no longer exists")


# -- fault rules ---------------------------------------------------------------------------------

def test_a_body_rule_for_another_organization_leaves_this_ones_body_unread(client, auth):
    """A fault that answers without reading the body closes the connection (the unread body
    would be taken for the next request); a body rule that could not fire here reads nothing."""
    def rule(**body):
        response = client.post("/_mock/faults", json=body)
        assert response.status_code == 200, response.text

    rule(operationId="PostProduct", orgId="org-someone-else", action="status", status=409, bodyField="code",
         bodyEquals="taken")
    rule(operationId="PostProduct", orgId=ORG, action="status", status=409, message="no more products")
    faulted = client.post(f"/organizations/{ORG}/products", json={"name": "A", "code": "a"}, headers=auth)
    assert (faulted.status_code, faulted.headers.get("Connection")) == (409, "close")
    response = client.get("/_mock/faults/nope")
    assert (response.status_code, response.json()["message"]) == (404, "no fault rule with id 'nope'")


def test_a_mock_on_every_address_refuses_deliveries_to_its_port_on_any_local_address_only(api, monkeypatch):
    monkeypatch.setattr(api.backend, "own_addresses", {("0.0.0.0", 47001)})
    monkeypatch.setattr(api.backend.settings, "webhook_allow", ("127.0.0.1",))
    resolved = {"local.example.com": "127.0.0.1", "remote.example.com": "192.0.2.1"}
    monkeypatch.setattr(api.backend.deliveries, "resolve",
                        lambda host, port: [(socket.AF_INET, (resolved[host], port))])
    for name in resolved:
        api.wire(f"http://{name}:47001/hook") if name == "local.example.com" else api.link(
            api.rule(code="r2"), api.webhook(f"http://{name}:47001/hook"))
    api.fire()
    errors = sorted(a["error"] for a in api.attempts())
    assert errors == [
        "refused by the webhook policy: local.example.com:47001 is the mock's own address; deliveries may not "
        "call the mock",
        "refused by the webhook policy: remote.example.com (192.0.2.1) is not in the webhook allow list"]


def test_an_integration_configuration_keeps_its_name_data_and_credentials_reference(api):
    rule, hook = api.rule(), api.webhook("https://hooks.example.com/m3ter")
    config = api.ok("post", "/integrationconfigs", {
        "entityType": "Notification", "entityId": rule["id"], "destination": "Webhook", "destinationId": hook["id"],
        "name": "Link", "configData": {"format": "json"}, "integrationCredentialsId": "cred-1"})
    assert (config["name"], config["configData"], config["integrationCredentialsId"]) == (
        "Link", {"format": "json"}, "cred-1")
    listed = api.ok("get", "/integrationconfigs", destinationId=hook["id"])["data"]
    assert [c["id"] for c in listed] == [config["id"]]
    assert api.ok("get", "/integrationconfigs", destinationId="other")["data"] == []


def test_a_delivery_waiting_to_be_retried_keeps_its_place_in_the_destinations_queue(api, monkeypatch):
    monkeypatch.setattr(api.backend.deliveries, "max_waiting", 1)
    with receiving(statuses=[500]) as receiver:
        api.wire(receiver.url)
        api.fire("first")  # answered 500: waits one second for its retry
        api.attempts()
        api.fire("second")  # the first still waits: no room
        api.advance(1)
        api.attempts()
        api.fire("third")  # the first was delivered: room again
        attempts = api.attempts()
    assert [(a["attempt"], a["outcome"], a["error"]) for a in attempts] == [
        (1, "retrying", "HTTP 500"), (0, "failed", "dropped: 1 deliveries to this destination are already waiting"),
        (2, "delivered", None), (1, "delivered", None)]
    assert [json.loads(r.body)["m3terEvent"]["eventData"]["newDto"]["code"] for r in receiver.requests] == [
        "first", "first", "third"]


def test_a_destination_that_caught_up_takes_exactly_its_limit_again(api, monkeypatch):
    deliveries = api.backend.deliveries
    monkeypatch.setattr(deliveries, "max_waiting", 1)
    entered, gate = threading.Semaphore(0), threading.Semaphore(0)

    def answer(url, headers, body):
        if json.loads(body)["m3terEvent"]["eventData"]["newDto"]["code"] == "second":
            entered.release()
            assert gate.acquire(timeout=30)
        return 200

    monkeypatch.setattr(deliveries, "local_answer", answer)
    api.wire("https://hooks.example.com/m3ter")
    api.fire("first")
    api.attempts()  # delivered: nothing waits any more
    api.fire("second")
    assert entered.acquire(timeout=30)  # on the wire: one waits
    api.fire("third")  # no room
    gate.release()
    attempts = api.attempts()
    assert [(a["outcome"], a["error"]) for a in attempts] == [
        ("delivered", None), ("failed", "dropped: 1 deliveries to this destination are already waiting"),
        ("delivered", None)]


def test_a_destination_counts_each_delivery_that_finishes_once(api, monkeypatch):
    deliveries = api.backend.deliveries
    monkeypatch.setattr(deliveries, "max_waiting", 2)
    entered = {code: threading.Semaphore(0) for code in ("a", "b")}
    gates = {code: threading.Semaphore(0) for code in ("a", "b")}

    def answer(url, headers, body):
        code = json.loads(body)["m3terEvent"]["eventData"]["newDto"]["code"]
        if code in gates:
            entered[code].release()
            assert gates[code].acquire(timeout=30)
        return 200

    monkeypatch.setattr(deliveries, "local_answer", answer)
    api.wire("https://hooks.example.com/m3ter")
    api.fire("a")
    assert entered["a"].acquire(timeout=30)
    api.fire("b")  # two wait: a on the wire, b behind it
    gates["a"].release()
    assert entered["b"].acquire(timeout=30)  # a finished: one waits
    api.fire("c")  # two again
    api.fire("d")  # no room
    gates["b"].release()
    attempts = api.attempts()
    assert sorted((a["outcome"], a["error"]) for a in attempts) == [
        ("delivered", None)] * 3 + [("failed", "dropped: 2 deliveries to this destination are already waiting")]


def test_a_deleted_entitys_event_carries_only_what_it_was_and_names_it(api):
    account = api.ok("post", "/accounts", {"name": "Acme", "code": "acme", "emailAddress": "a@example.com"})
    api.advance(60)
    api.ok("delete", f"/accounts/{account['id']}")
    deleted, created = api.ok("get", "/events", resourceId=account["id"])["data"]
    assert (deleted["eventName"], created["eventName"]) == ("configuration.account.deleted",
                                                            "configuration.account.created")
    assert deleted["eventTime"] == "2026-03-01T00:01:00.000Z"
    assert deleted["m3terEvent"]["eventData"] == {"oldDto": {**account, "orgId": ORG}}
